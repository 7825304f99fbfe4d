"""One film across several processes (``llstudio render SCENE --split K``): the frames cut into K ranges, each
range rendered and encoded by a process of its own (``python -m llstudio.jobs.segment``), the segments joined
without re-encoding (``output.concat``), the sidecar written once, here.

The capture is computed once, by the caller, before the split: every segment process loads it from the store (a
cache hit, checked by its key). A frame depends on its index alone (the timeline and camera path are functions of
time; the renderer keeps no state from frame to frame), so a segment draws exactly the frames a whole render draws.

What is guaranteed of the joined film, against the same film rendered whole (measured in
tests/e2e/test_cli_split.py and tests/output/test_concat.py):

- always: the same number of frames, the same timestamps and frame rate, the same sidecar;
- exactly the same decoded frames for formats whose frames are encoded on their own or losslessly: ``png``,
  ``prores`` (intra-only) and ``mp4`` with ``output.crf = 0`` (lossless H.264);
- not bit for bit for lossy ``mp4`` and ``webm``: x264's constant-rate-factor control and its lookahead carry
  state from frame to frame, which a segment starts afresh (measured: x264 with a fixed GOP, scenecut off and a
  constant QP encodes segments on GOP boundaries identically, but films are encoded with a CRF, and the fixed
  GOP would cost every film its compression). The frames differ by encoder noise: the lowest PSNR of a frame,
  split against whole, in RGB, was 45.4 dB for mp4 at crf 18 (veryfast; a 93-frame film at -q l and a 303-frame
  one at -q m) and 42.8 dB for webm at crf 30, while either film is about 37 dB from the rendered frames.

A GIF (one palette for the whole film) cannot be split; a film too short for K segments of at least
``MIN_SEGMENT_FRAMES`` frames is split into fewer (it says so), one segment being a plain render in this process.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import RenderError, UsageError
from ..files import temp_path
from ..output.concat import JOINABLE, join, join_sequences, require_concat
from ..progress import Progress
from .slots import cpu_count, plan_slots

# Formats whose segments can be joined without re-encoding (a PNG sequence: its frames renumbered).
SPLITTABLE = ("mp4", "webm", "prores", "png")

# A segment costs a process start (torch, VTK, the scene's data and capture loaded) of a few seconds: below this
# many frames a segment would spend more time starting than rendering.
MIN_SEGMENT_FRAMES = 24

# How long a segment process has to clean up after Ctrl-C before it is killed.
STOP_WAIT_S = 15.0


def parse_split(text: str) -> int:
    """The value of ``--split``: a whole number of segments, at least 1."""
    try:
        k = int(text)
    except ValueError:
        raise UsageError(f"--split {text!r}: expected a whole number of segments, e.g. --split 2") from None
    if k < 1:
        raise UsageError(f"--split {k}: needs at least 1 segment (1 renders the film whole)")
    return k


def check_split(k: int, scenes: int, fmt: Optional[str] = None) -> None:
    """Refuse, before any work, a split that cannot be made: several scenes, a format (when given) that cannot be
    joined, or an ffmpeg without the concat demuxer (exit 3)."""
    if k <= 1:
        return
    if scenes != 1:
        raise UsageError(f"--split {k} splits one film: give one scene, not {scenes} (--jobs renders several)")
    if fmt is not None and fmt not in SPLITTABLE:
        raise UsageError(f"--split: a {fmt} film cannot be split (a GIF has one palette for the whole film); "
                         f"formats that can: {', '.join(SPLITTABLE)}")
    if fmt in JOINABLE:
        require_concat()


def plan_segments(frames: range, k: int, min_frames: int = MIN_SEGMENT_FRAMES) -> list[range]:
    """``frames`` (consecutive) cut into at most ``k`` consecutive ranges of nearly equal length, each at least
    ``min_frames`` long (fewer ranges when there are not enough frames; always at least one)."""
    if frames.step != 1:
        raise ValueError(f"frames must be consecutive, got {frames}")
    n = max(1, min(k, len(frames) // max(1, min_frames)))
    bounds = [frames.start + len(frames) * i // n for i in range(n + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


@dataclass(frozen=True)
class Segment:
    """One range of frames, the file (or directory) its process writes, and that process's command and
    environment (its share of the machine)."""

    index: int
    frames: range
    path: Path
    command: list[str]
    env: dict[str, str]

    def describe(self) -> str:
        return f"segment {self.index + 1} (frames {self.frames.start}:{self.frames.stop})"


def segment_command(scene_file: str, frames: range, path: Path, output: Path, fmt: str, quality: Optional[str],
                    device: Optional[str], capture_key: str) -> list[str]:
    """The command of the process that renders ``frames`` of the film ``output`` into the segment ``path``."""
    cmd = [sys.executable, "-m", "llstudio.jobs.segment", str(scene_file), "--frames", f"{frames.start}:{frames.stop}",
           "--segment", str(path), "-o", str(output), "--format", fmt, "--capture-key", capture_key]
    return cmd + (["-q", quality] if quality else []) + (["--device", device] if device else [])


def _stop(procs: list[subprocess.Popen]) -> None:
    """Ask every live segment process to stop as Ctrl-C would (it removes its partial file), then kill it."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_WAIT_S
    for p in live:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _last_line(err) -> str:
    err.seek(0)
    lines = [ln.strip() for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def run_segments(segments: list[Segment], progress: Progress) -> None:
    """Run every segment's process at once and wait for all of them. The first to fail stops the others and
    raises a RenderError naming it and its last line of error; so does an interruption (KeyboardInterrupt)."""
    procs: list[subprocess.Popen] = []
    errs = [tempfile.TemporaryFile() for _ in segments]
    try:
        for seg, err in zip(segments, errs):
            procs.append(subprocess.Popen(seg.command, env={**os.environ, **seg.env}, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=err))
        pending = dict(enumerate(procs))
        with progress.stage("segments", len(segments), "segments") as advance:
            while pending:
                for i, proc in list(pending.items()):
                    code = proc.poll()
                    if code is None:
                        continue
                    del pending[i]
                    if code != 0:
                        raise RenderError(f"{segments[i].describe()} failed with exit status {code}: "
                                          f"{_last_line(errs[i])}")
                    advance(1)
                time.sleep(0.05)
    except BaseException:
        _stop(procs)
        raise
    finally:
        for err in errs:
            err.close()


def remove_parts(segments: list[Segment]) -> None:
    """Remove the segments' files and whatever temporary file a killed segment's writer left beside them."""
    for seg in segments:
        # The FilmWriter's temporary name: '.' + the segment's name + '.host~pid.TAG.part...' (once: its stem)
        stems = {seg.path.stem, seg.path.name}
        leftovers = [seg.path] + [Path(p) for s in stems
                                  for p in glob.glob(os.path.join(glob.escape(str(seg.path.parent)),
                                                                  glob.escape("." + s + ".") + "*"))]
        for p in leftovers:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def render_split(capture, k: int, scene_file: Optional[str] = None, output: Optional[Path] = None,
                 quality: Optional[str] = None, frames: Optional[str] = None, format: Optional[str] = None,
                 device: Optional[str] = None, progress: Optional[Progress] = None) -> Path:
    """Render the film of ``capture`` (already captured: its store entry is complete) in up to ``k`` segment
    processes and join them; returns the film's path, which appears only when complete, as a whole render's,
    with the same sidecar. ``scene_file``: the scene the segments load (default: the capture's scene's source);
    ``device``: the capture's device (``cpu``, ``cuda``; the capture key depends on its type)."""
    # The render stage loads VTK: imported here, so that the command line checks --split without it.
    from ..pipeline import plan_render, render_film, write_sidecar

    progress = progress or Progress("none")
    plan = plan_render(capture, output, quality, frames, format)
    check_split(k, 1, plan.fmt)
    ranges = plan_segments(plan.selected, k)
    if len(ranges) < k:
        progress.log(f"split: {len(plan.selected)} frames make {len(ranges)} segment(s) of at least "
                     f"{MIN_SEGMENT_FRAMES} frames, not {k}")
    if len(ranges) == 1:
        return render_film(capture, output, quality, frames, progress, format)
    scene_file = scene_file or capture.scene.source
    if not Path(scene_file).is_file():
        raise UsageError(f"--split: the segment processes load the scene from its file, and {scene_file} is none")
    slots = plan_slots(len(ranges), cpu_count(), [], {})
    segments = [Segment(i, r, temp_path(plan.output, f"seg{i:03d}"),
                        segment_command(scene_file, r, temp_path(plan.output, f"seg{i:03d}"), plan.output, plan.fmt,
                                        quality, device, capture.key), slot.env())
                for i, (r, slot) in enumerate(zip(ranges, slots))]
    progress.log(f"split: frames {plan.selected.start}:{plan.selected.stop} in {len(segments)} segments, "
                 f"{slots[0].describe()} each")
    try:
        run_segments(segments, progress)
        paths = [s.path for s in segments]
        if plan.fmt == "png":
            join_sequences(paths, plan.output)
        else:
            join(paths, plan.output, plan.fmt)
    finally:
        remove_parts(segments)
    write_sidecar(capture, plan)
    return plan.output
