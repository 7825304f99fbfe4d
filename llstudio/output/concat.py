"""Films encoded in segments → one film, without re-encoding: ffmpeg's concat demuxer with stream copy (``join``),
or, for PNG sequences, the segments' frames renumbered into one directory (``join_sequences``).

Every segment must come from the same encoder settings (``FilmWriter`` with the same size, rate, format, crf and
preset) and start on a keyframe, which a segment encoded on its own always does. The packets are copied as they
are: the joined film decodes to exactly the frames its segments decode to, in order, with timestamps continued
from one segment to the next.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from ..errors import MissingDependency, RenderError
from ..files import atomic_write, temp_path
from .encode import ffmpeg_exe, publish_directory

# The containers whose segments the concat demuxer joins by stream copy, and the muxer of each. A GIF has one
# palette for the whole film and a PNG sequence is files, not a stream: neither is joined here.
JOINABLE = {"mp4": "mp4", "webm": "webm", "prores": "mov"}


def demuxer_names(listing: str) -> frozenset[str]:
    """The demuxers in the text of ``ffmpeg -demuxers`` (lines ' D   concat   Virtual concatenation script')."""
    names = set()
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("D", "DE") and parts[1] != "=":
            names.update(parts[1].split(","))
    return frozenset(names)


@functools.lru_cache(maxsize=None)
def available_demuxers() -> frozenset[str]:
    """The demuxers of the ffmpeg binary the FilmWriter uses (imageio-ffmpeg's, or IMAGEIO_FFMPEG_EXE)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-demuxers"], capture_output=True, text=True, check=False)
    return demuxer_names(proc.stdout)


def require_concat() -> None:
    """Fail before any work when ffmpeg cannot join segments (a build without the concat demuxer)."""
    if "concat" not in available_demuxers():
        raise MissingDependency(f"the ffmpeg at {ffmpeg_exe()} has no concat demuxer, which --split needs to join "
                                "segments; install a full ffmpeg build and point IMAGEIO_FFMPEG_EXE at it")


def _quote(path: Path) -> str:
    """A path as a concat-list ``file`` directive: single-quoted, with ffmpeg's escape for a quote inside."""
    return "file '" + str(Path(path).resolve()).replace("'", "'\\''") + "'"


def concat_list(segments: Sequence[Path]) -> str:
    """The concat demuxer's input file naming ``segments`` in order (absolute paths: ``-safe 0``)."""
    return "".join(_quote(s) + "\n" for s in segments)


def join_command(list_file: str | Path, target: str | Path, fmt: str) -> list[str]:
    """The ffmpeg command that copies the streams of the segments ``list_file`` names into ``target``."""
    if fmt not in JOINABLE:
        raise RenderError(f"cannot join {fmt} segments: only {', '.join(JOINABLE)} can be joined")
    # +faststart as the FilmWriter's own mp4s: the index first, so a browser plays while it downloads.
    faststart = ["-movflags", "+faststart"] if fmt == "mp4" else []
    return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
            "-i", str(list_file), "-map", "0:v", "-c", "copy", *faststart, "-f", JOINABLE[fmt], str(target)]


def join(segments: Sequence[Path], target: str | Path, fmt: str) -> Path:
    """Join ``segments`` (files of format ``fmt``, in order) into ``target``, which appears only when complete
    (temporary name beside it, then a rename); the segments are left for the caller to remove."""
    if not segments:
        raise RenderError("no segments to join")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    list_file = temp_path(target, "concat", ".txt")
    try:
        list_file.write_text(concat_list(segments))

        def run(tmp: str) -> None:
            proc = subprocess.run(join_command(list_file, tmp, fmt), capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RenderError(f"ffmpeg could not join {len(segments)} segments into {target}: "
                                  f"{proc.stderr.strip()[-2000:] or 'no message'} (exit status {proc.returncode})")

        atomic_write(target, run)
    finally:
        list_file.unlink(missing_ok=True)
    return target


def join_sequences(segments: Sequence[Path], target: str | Path) -> Path:
    """Join PNG sequences (directories of frame_00000.png …, in order) into the sequence ``target``, numbered on
    from 0 across the segments. The frames are moved, not copied; ``target`` is replaced whole, never mixed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target, "join")
    try:
        tmp.mkdir()
        n = 0
        for seg in segments:
            for frame in sorted(Path(seg).glob("frame_*.png")):
                os.replace(frame, tmp / f"frame_{n:05d}.png")
                n += 1
        publish_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
