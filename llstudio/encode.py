"""RGB frames → a film file, through an ffmpeg process (imageio-ffmpeg).

ffmpeg runs in its own process, so encoding overlaps rendering: the pipe to it is the bounded queue. The film is
written to a temporary name beside the destination and renamed when ffmpeg has finished cleanly; on any error or
interruption the temporary file is removed and an existing film is left as it was.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .errors import MissingDependency, RenderError
from .files import publish


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover
        raise MissingDependency("imageio-ffmpeg is not installed: pip install imageio-ffmpeg") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise MissingDependency(f"no ffmpeg executable found ({exc}); pip install --force-reinstall imageio-ffmpeg "
                                "or set IMAGEIO_FFMPEG_EXE to an ffmpeg binary") from None


@functools.lru_cache(maxsize=None)
def available_encoders() -> frozenset[str]:
    """Names of the video encoders the ffmpeg binary offers."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True,
                         check=False).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] == "V":
            names.add(parts[1])
    return frozenset(names)


def require_encoder(name: str) -> None:
    """Fail early and clearly: a missing encoder otherwise surfaces only as a broken pipe mid-film."""
    if name not in available_encoders():
        raise MissingDependency(f"the ffmpeg at {ffmpeg_exe()} has no '{name}' encoder; install an ffmpeg build "
                                "with it and point IMAGEIO_FFMPEG_EXE at it")


class FilmWriter:
    """H.264 MP4 writer: ``with FilmWriter(path, w, h, fps) as f: f.write(frame)``.

    yuv420p with bt709 tags (plays everywhere), CRF quality, ``+faststart`` so the film starts playing before it
    has fully downloaded (talk slides, web pages).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: int, crf: int = 18,
                 preset: str = "medium"):
        if width % 2 or height % 2:
            raise RenderError(f"H.264 with yuv420p needs an even width and height, got {width}x{height}")
        self.path = Path(path)
        self.width, self.height, self.fps, self.crf, self.preset = width, height, fps, crf, preset
        self.frames = 0
        self._gen = None
        self._tmp = None

    def __enter__(self):
        import imageio_ffmpeg

        require_encoder("libx264")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix="." + self.path.stem + ".", suffix=".part.mp4", dir=self.path.parent)
        os.close(fd)
        try:
            self._start(imageio_ffmpeg)
        except BaseException:
            # __exit__ will not run when __enter__ fails: remove the temporary film here.
            os.unlink(self._tmp)
            raise
        return self

    def _start(self, imageio_ffmpeg) -> None:
        self._gen = imageio_ffmpeg.write_frames(
            self._tmp, (self.width, self.height), fps=self.fps, codec="libx264", pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p", quality=None, macro_block_size=1, ffmpeg_log_level="error",
            output_params=["-crf", str(self.crf), "-preset", self.preset, "-movflags", "+faststart",
                           # Tag the stream as BT.709 in the bitstream itself (the container-level flags alone
                           # leave primaries and transfer 'unknown', which some players render washed out).
                           "-x264-params", "colorprim=bt709:transfer=bt709:colormatrix=bt709",
                           "-color_range", "tv",
                           # ... and convert with the matrix the tags announce (swscale defaults to BT.601).
                           "-vf", "scale=out_color_matrix=bt709:out_range=tv", "-f", "mp4"],
        )
        self._gen.send(None)  # start ffmpeg

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise RenderError(f"frame of shape {frame.shape} {frame.dtype}, expected "
                              f"({self.height}, {self.width}, 3) uint8")
        self._gen.send(np.ascontiguousarray(frame))
        self.frames += 1

    def __exit__(self, exc_type, exc, tb):
        ok = exc_type is None
        try:
            if self._gen is not None:
                try:
                    self._gen.close()
                except Exception as err:  # ffmpeg failed while finishing the file
                    if ok:
                        raise RenderError(f"ffmpeg failed while writing {self.path}: {err}") from None
            if ok and self.frames == 0:
                raise RenderError("no frames were rendered")
            if ok:
                publish(self._tmp, self.path)
        finally:
            if self._tmp and os.path.exists(self._tmp):
                os.unlink(self._tmp)
        return False
