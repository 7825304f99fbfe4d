"""Frames → a film file (mp4, webm, gif, prores) or a PNG sequence, through an ffmpeg process.

ffmpeg runs in its own process and is fed raw frames through a pipe by a writer thread that takes them from a
bounded queue: ``write`` only hands a frame over, so the renderer goes on with the next frame while ffmpeg
converts and encodes this one (a plain pipe write would block the renderer for as long as ffmpeg is busy, because
a pipe holds 64 KiB and a 1080p frame is 6 MiB). The film is written to a temporary name beside the destination
and renamed when ffmpeg has finished cleanly; on any error or interruption ffmpeg is stopped, the temporary file
(or directory, for a PNG sequence) is removed and an existing film is left as it was.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import LLStudioError, MissingDependency, RenderError
from ..files import _umask, disk_full, publish, sweep_temp_files, temp_path
from ..config.presets import FORMATS, format_problem

# GIF: frame delays are whole hundredths of a second and every frame is a full palette image, so keep films small.
GIF_MAX_FPS = 25
GIF_MAX_WIDTH = 640

# How many bytes of frames may wait for ffmpeg: enough to ride out x264's uneven pace (it encodes several frames
# at once with lookahead), small enough for 4K (25 MiB a frame).
QUEUE_BYTES = 96 * 2**20
# A job's share of the CPU threads (set by a --jobs batch, see jobs.slots): the encoder uses no more than that.
THREADS_VARIABLE = "LLSTUDIO_THREADS"


def encoder_threads(threads: Optional[int] = None) -> Optional[int]:
    """``threads``, else $LLSTUDIO_THREADS, else None (ffmpeg's own choice: one thread per core)."""
    if threads is None:
        env = os.environ.get(THREADS_VARIABLE, "").strip()
        threads = int(env) if env.isdigit() else None
    return threads if threads and threads > 0 else None

# Frames between H.264 keyframes when the writer is not told the film's length: a minute (longer than a gallery
# film, so one interval spans it).
KEYINT_SECONDS = 60.0

# VP9's speed knob for each x264 preset name (libvpx 'good' deadline: cpu-used 0 slowest/best … 5 fastest).
VP9_CPU_USED = {"ultrafast": 5, "superfast": 5, "veryfast": 4, "faster": 4, "fast": 3, "medium": 2, "slow": 1,
                "slower": 0, "veryslow": 0}

# Tag every YUV stream as BT.709 and convert with that matrix (swscale defaults to BT.601, which players showing
# the HD tags render with shifted hues).
_BT709_TAGS = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
_BT709_SCALE = ("scale=out_color_matrix=bt709:out_range=tv,"
                # ffmpeg takes the stream's tags from the frames: mark them, or primaries and transfer stay unknown.
                "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv")


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


def require_format(fmt: str, alpha: bool = False) -> None:
    """Check, before any rendering, that ``fmt`` is known, can carry ``alpha`` and that ffmpeg has its encoder."""
    problem = format_problem(fmt, alpha)
    if problem:
        raise RenderError(problem)
    require_encoder(FORMATS[fmt].encoder)


def gif_step(fps: int) -> int:
    """Keep every n-th frame in a GIF so that its rate is at most GIF_MAX_FPS (whole steps: even pacing)."""
    return max(1, math.ceil(fps / GIF_MAX_FPS))


def output_size(fmt: str, width: int, height: int) -> tuple[int, int]:
    """Size of the encoded frames: the rendered size, except GIFs wider than GIF_MAX_WIDTH (scaled, even height)."""
    if fmt == "gif" and width > GIF_MAX_WIDTH:
        h = round(height * GIF_MAX_WIDTH / width / 2) * 2
        return GIF_MAX_WIDTH, h
    return width, height


def output_frames(fmt: str, n_frames: int, fps: int) -> tuple[int, float]:
    """(frames in the file, its frame rate) for ``n_frames`` rendered at ``fps``."""
    if fmt == "gif":
        k = gif_step(fps)
        return math.ceil(n_frames / k), fps / k
    return n_frames, fps


def keyframe_interval(keyint: Optional[int], fps: float) -> int:
    """Frames between H.264 keyframes: ``keyint`` (the film's frame count: one interval for the whole film), else
    KEYINT_SECONDS of frames."""
    return max(1, int(keyint) if keyint else int(round(KEYINT_SECONDS * fps)))


def repeat_runs(repeats) -> list[tuple[int, int]]:
    """(first, last) frame of every run of True in ``repeats`` (F,) bool: frames that repeat the one before."""
    flags = np.concatenate([[False], np.asarray(repeats, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(flags.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def x264_zones(runs: list[tuple[int, int]]) -> str:
    """x264's ``zones`` for frames that repeat their predecessor exactly: quantiser 51 there, so that x264 codes no
    residual and every block is skipped. The frames then decode to exact copies of the first frame of the hold
    (at the film's quality, x264 keeps refining a repeated picture, and a still hold visibly shimmers)."""
    return "/".join(f"{a},{b},q=51" for a, b in runs)


def _output_args(fmt: str, crf: int, preset: str, alpha: bool, width: int, height: int,
                 keyint: int = 1, zones: str = "") -> list[str]:
    """ffmpeg's output options for one format (everything after the raw-video input); ``keyint``: frames between
    H.264 keyframes; ``zones``: x264 zones (see :func:`x264_zones`)."""
    if fmt == "mp4":
        return ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                # One keyframe interval and no scene-cut detection: x264's defaults (keyint 250, scenecut 40) put
                # a keyframe at frame 250 or wherever the picture changes fast, and the different quantisation of
                # that frame makes a still hold visibly 'breathe'.
                "-g", str(keyint), "-keyint_min", str(keyint), "-sc_threshold", "0",
                # Tag BT.709 in the H.264 bitstream itself: the container flags alone leave primaries and transfer
                # 'unknown' in some players, which then render it washed out.
                # A held frame coded as a B-frame would be predicted partly from the moving frame after the hold
                # and, with no residual in the zone, decode as a blend: no B-frames in a film with holds.
                "-x264-params", "colorprim=bt709:transfer=bt709:colormatrix=bt709:scenecut=0"
                + (f":bframes=0:zones={zones}" if zones else ""),
                "-color_range", "tv",
                *_BT709_TAGS, "-vf", _BT709_SCALE, "-movflags", "+faststart", "-f", "mp4"]
    if fmt == "webm":
        # -b:v 0 makes -crf a constant-quality target (with a bitrate, libvpx treats it as a cap only).
        return ["-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0", "-pix_fmt", "yuv420p", "-deadline", "good",
                "-cpu-used", str(VP9_CPU_USED[preset]), "-row-mt", "1", "-color_range", "tv", *_BT709_TAGS,
                "-vf", _BT709_SCALE, "-f", "webm"]
    if fmt == "gif":
        w, h = output_size(fmt, width, height)
        scale = f"scale={w}:{h}:flags=lanczos," if (w, h) != (width, height) else ""
        # One palette for the whole film (stats over every frame: no palette flicker), in one filtergraph.
        graph = (f"{scale}split[a][b];[a]palettegen=stats_mode=full[p];"
                 "[b][p]paletteuse=dither=sierra2_4a:diff_mode=rectangle")
        return ["-filter_complex", graph, "-loop", "0", "-f", "gif"]
    if fmt == "png":
        return ["-c:v", "png", "-pix_fmt", "rgba" if alpha else "rgb24", "-start_number", "0", "-f", "image2"]
    if fmt == "prores":
        # Profile 4444 (prores_ks' 'profile 4'): 10-bit 4:4:4, plus a 16-bit alpha channel when transparent.
        return ["-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le" if alpha else "yuv444p10le",
                *(["-alpha_bits", "16"] if alpha else []), "-vendor", "apl0", *_BT709_TAGS,
                "-vf", _BT709_SCALE.replace(":out_range=tv", "").replace(":range=tv", ""), "-f", "mov"]
    raise RenderError(format_problem(fmt))


def publish_directory(tmp: str | Path, path: str | Path) -> None:
    """Rename the finished directory ``tmp`` (a PNG sequence) to ``path``, replacing the sequence there.

    A directory cannot replace a non-empty one in a single rename: the old sequence is moved aside first, so that
    a reader sees the old frames or the new ones, never a mixture."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RenderError(f"{path} exists and is not a directory: a PNG sequence is a directory of frames")
    os.chmod(tmp, 0o777 & ~_umask())
    old = None
    if path.exists():
        old = tempfile.mkdtemp(prefix="." + path.name + ".", suffix=".old", dir=path.parent)
        os.replace(path, old)  # onto an empty directory: allowed
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class FilmWriter:
    """``with FilmWriter(path, w, h, fps, format="mp4") as f: f.write(frame)``: frames in, one film out.

    Frames are (height, width, 3) uint8 RGB, or (height, width, 4) RGBA with straight (not premultiplied) alpha
    when ``alpha`` is set (png and prores only). ``write`` keeps a reference to the frame until ffmpeg has it: do
    not modify a frame after writing it. Formats (see ``presets.FORMATS``): mp4 (H.264, yuv420p, BT.709, CRF,
    ``+faststart``), webm (VP9, CRF), gif (palette, capped at GIF_MAX_WIDTH and GIF_MAX_FPS), png (a directory
    of frame_00000.png ...) and prores (ProRes 4444 .mov). ``queue_frames`` = 0 writes synchronously in the
    caller's thread (for benchmarks); the default is as many frames as fit in QUEUE_BYTES, at least 2. ``threads``
    caps the encoder's threads (default: $LLSTUDIO_THREADS, a --jobs batch's share, else ffmpeg's choice).
    ``keyint``: the number of frames the film will have, so that an MP4 has one keyframe interval (and no scene-cut
    keyframes) over the whole film; default KEYINT_SECONDS of frames. ``repeats`` (bool per frame): frames that are
    exact copies of the one before (a still hold), encoded so that they decode to exact copies (mp4); ``write``
    refuses a frame declared a repeat that is not one.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: int, crf: int = 18,
                 preset: str = "veryfast", format: str = "mp4", alpha: bool = False,
                 queue_frames: Optional[int] = None, threads: Optional[int] = None, keyint: Optional[int] = None,
                 repeats=None):
        problem = format_problem(format, alpha)
        if problem:
            raise RenderError(problem)
        if format in ("mp4", "webm") and (width % 2 or height % 2):
            raise RenderError(f"{format} with yuv420p needs an even width and height, got {width}x{height}")
        self.path = Path(path)
        self.width, self.height, self.fps, self.crf, self.preset = int(width), int(height), fps, crf, preset
        self.format, self.alpha = format, alpha
        self.threads = encoder_threads(threads)
        self.keyint = keyframe_interval(keyint, fps)
        # Frames declared to repeat their predecessor exactly (mp4 only: coded as skips, see x264_zones).
        self.repeats = np.asarray(repeats if repeats is not None and format == "mp4" else [], dtype=bool)
        self._previous: Optional[np.ndarray] = None
        self.channels = 4 if alpha else 3
        self.step = gif_step(fps) if format == "gif" else 1
        frame_bytes = self.width * self.height * self.channels
        self.queue_frames = max(2, QUEUE_BYTES // frame_bytes) if queue_frames is None else int(queue_frames)
        self.frames = 0  # frames given to write()
        self.encoded = 0  # frames sent to ffmpeg (fewer for a GIF at a high frame rate)
        self._tmp: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None
        self._stderr = None
        self._queue: Optional[queue.Queue] = None
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    @property
    def out_fps(self) -> float:
        """Frame rate of the file (lower than ``fps`` for a GIF at a high frame rate)."""
        return self.fps / self.step

    # -------------------------------------------------------------------------------------------- set-up

    def __enter__(self):
        require_format(self.format, self.alpha)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Films that killed renders left beside this one (their owner, host~pid, has exited) go first.
        sweep_temp_files(self.path.parent)
        self._tmp = str(self._temp_name())
        try:
            self._start()
        except BaseException:
            # __exit__ will not run when __enter__ fails: stop ffmpeg and remove the temporary output here.
            self._abort()
            raise
        return self

    def _temp_name(self) -> Path:
        """Create the temporary film (a folder for a PNG sequence) beside the destination, named like the cache's
        temporary files (``.NAME.host~pid.TAG.part.SUFFIX``) so that a sweep can tell when its owner is gone."""
        while True:
            tmp = temp_path(self.path, secrets.token_hex(4))  # a random tag: several writers in one process
            try:
                if self.format == "png":
                    os.mkdir(tmp, 0o700)
                else:
                    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                return tmp
            except FileExistsError:
                continue

    def _command(self) -> list[str]:
        target = os.path.join(self._tmp, "frame_%05d.png") if self.format == "png" else self._tmp
        return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "rgba" if self.alpha else "rgb24",
                "-s", f"{self.width}x{self.height}", "-framerate", f"{self.out_fps:g}", "-i", "pipe:0",
                "-an", *_output_args(self.format, self.crf, self.preset, self.alpha, self.width, self.height,
                                      self.keyint, x264_zones(repeat_runs(self.repeats))),
                *(["-threads", str(self.threads)] if self.threads else []), target]

    def _start(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty ffmpeg can never block on it
        # process_group=0: a Ctrl-C in the terminal goes to llstudio only, which stops ffmpeg itself; otherwise
        # ffmpeg would finish the file on its own SIGINT, racing our clean-up.
        group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
        self._proc = subprocess.Popen(self._command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._stderr, bufsize=0, **group)
        if self.queue_frames > 0:
            self._queue = queue.Queue(maxsize=self.queue_frames)
            self._thread = threading.Thread(target=self._pump, name="llstudio-encoder", daemon=True)
            self._thread.start()

    # -------------------------------------------------------------------------------------------- frames

    def _send(self, frame: np.ndarray) -> None:
        """Write one frame to ffmpeg's stdin, whole (os.write may write part of it when a signal arrives)."""
        view = memoryview(frame).cast("B")
        fd = self._proc.stdin.fileno()
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def _pump(self) -> None:
        """Writer thread: frames from the queue to ffmpeg until the None sentinel. After an error it goes on
        draining the queue, so that the renderer never blocks on a full queue; ``write`` reports the error."""
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            if self._error is not None:
                continue
            try:
                self._send(frame)
            except BaseException as exc:  # ffmpeg died: broken pipe
                self._error = exc

    def write(self, frame: np.ndarray) -> None:
        """Queue one (height, width, 3|4) uint8 frame; blocks only while the queue is full."""
        if frame.shape != (self.height, self.width, self.channels) or frame.dtype != np.uint8:
            raise RenderError(f"frame of shape {frame.shape} {frame.dtype}, expected "
                              f"({self.height}, {self.width}, {self.channels}) uint8")
        if self._error is not None:
            raise self._failed("stopped")
        if self.frames < len(self.repeats) and self.repeats[self.frames] and not np.array_equal(frame, self._previous):
            raise RenderError(f"frame {self.frames} was declared a repeat of the one before but differs from it")
        if len(self.repeats):
            self._previous = frame
        keep = self.frames % self.step == 0
        self.frames += 1
        if not keep:
            return
        frame = np.ascontiguousarray(frame)
        if self._queue is None:
            try:
                self._send(frame)
            except OSError:
                raise self._failed("stopped") from None
        else:
            self._queue.put(frame)
        self.encoded += 1

    def _failed(self, how: str) -> LLStudioError:
        """ffmpeg's failure as an error: a full disk says so (and how much is free), anything else what ffmpeg said."""
        says = self._ffmpeg_says()
        if os.strerror(errno.ENOSPC) in says:
            return disk_full(self.path)
        return RenderError(f"ffmpeg {how} while writing {self.path}: {says}")

    def _ffmpeg_says(self) -> str:
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.wait(5)  # let it finish writing its complaint
            except subprocess.TimeoutExpired:
                pass
        text = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace").strip()
        code = self._proc.returncode if self._proc is not None else None
        return (text[-2000:] or "no message") + (f" (exit status {code})" if code not in (None, 0) else "")

    # -------------------------------------------------------------------------------------------- finish

    def _finish(self) -> None:
        """Drain the queue, let ffmpeg finish the file, and check that it did."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._proc.stdin.close()
        code = self._proc.wait()
        if self._error is not None or code != 0:
            raise self._failed("failed")
        if self.frames == 0:
            raise RenderError("no frames were rendered")

    def _abort(self) -> None:
        """Stop everything without waiting for a film, and remove the temporary output."""
        try:
            if self._proc is not None:
                if self._proc.poll() is None:
                    self._proc.kill()  # a blocked write in the writer thread now fails with a broken pipe
                self._proc.wait()
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
            if self._proc is not None:
                self._proc.stdin.close()
        finally:
            self._remove_tmp()
            if self._stderr is not None:
                self._stderr.close()

    def _remove_tmp(self) -> None:
        if self._tmp is None:
            return
        if os.path.isdir(self._tmp):
            shutil.rmtree(self._tmp, ignore_errors=True)
        elif os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def _publish(self) -> None:
        if self.format != "png":
            publish(self._tmp, self.path)
            return
        publish_directory(self._tmp, self.path)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._abort()
            return False
        try:
            self._finish()
            self._publish()
        except BaseException:
            self._abort()
            raise
        self._remove_tmp()
        if self._stderr is not None:
            self._stderr.close()
        return False
