"""Render and encode speed: frames/s end to end, and where the time goes, on a synthetic capture (no training).

    python benchmarks/render.py                      # 854x480, 1920x1080 and 3840x2160, default look and AA off
    python benchmarks/render.py --sizes 1080 --frames 40 --presets veryfast,medium,ultrafast

For each size and anti-aliasing setting, in the same run:

- ``render``: ``SurfaceRenderer.render`` alone (array updates, contours, the OpenGL draw, reading the pixels back),
  and within it ``read``, the pixel read-back (glReadPixels through GetPixelData of the whole window, twice the
  output's width and height with SSAA, plus the vertical flip; not SSAA's averaging) timed on
  its own after the same draws;
- ``encode``: ``FilmWriter`` alone on frames rendered beforehand (RGB → YUV in ffmpeg's swscale, then x264), for
  each x264 preset asked for;
- ``serial``: render then write each frame in the same thread, ``queue_frames=0`` (what a plain pipe write does:
  the renderer waits while ffmpeg drains the pipe);
- ``overlap``: the film as ``llstudio render`` makes it, the writer thread and bounded queue feeding ffmpeg while
  the next frame renders;
- ``... wait``: of that, the time the rendering thread spent waiting on the encoder (inside ``write`` and for
  ffmpeg to finish after the last frame), per frame.

Times are wall-clock on a machine that may be shared: compare numbers from the same run (ratios), not across runs.
The synthetic capture is a 41x41 landscape over 6 captured steps (a bowl with ripples that drift), the default
scene's look, camera and timeline.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from llstudio.output.encode import FilmWriter
from llstudio.film.film import Film
from llstudio.pipeline import Capture, OutputSettings, make_film
from llstudio.config.scene import scene_from_dict

SIZES = {"480": (854, 480), "1080": (1920, 1080), "2160": (3840, 2160)}


def synthetic_capture(anti_aliasing: str, preset: str, n: int = 41, steps: int = 6) -> Capture:
    """A Capture with made-up numbers: what the renderer sees from a real one, without training."""
    scene = scene_from_dict({"look": {"anti_aliasing": anti_aliasing}, "output": {"encoder_preset": preset},
                             "training": {"steps": (steps - 1) * 10}, "capture": {"every": 10}},
                            source="benchmark.toml")
    alphas = betas = np.linspace(-1.0, 1.0, n)
    a, b = np.meshgrid(alphas, betas, indexing="ij")
    loss = np.stack([0.2 + (1.5 - 0.2 * k) * (a**2 + 0.6 * b**2) + 0.15 * np.sin(4 * a + k) * np.cos(3 * b - k)
                     for k in range(steps)])
    loss = np.exp(loss)  # positive, as a loss is (the scene's log scaling applies)
    return Capture(scene=scene, key="synthetic", path=Path("."), alphas=alphas, betas=betas,
                   steps=np.arange(steps) * 10, loss=loss, center_loss=loss[:, n // 2, n // 2],
                   train_loss=loss[:, n // 2, n // 2], centers=[], directions=(), plane_path=np.zeros((steps, 2)),
                   updates=np.zeros((steps, 2)), scales=np.ones(steps), runs=[], center_buffers=[])


def frame_indices(film: Film, n: int) -> list[int]:
    """``n`` frames spread over the film (the camera moves, the surface changes)."""
    return [int(i) for i in np.linspace(0, film.n_frames - 1, n)]


def bench_size(width: int, height: int, fps: int, aa: str, n: int, presets: list[str], out: Path) -> dict:
    cap = synthetic_capture(aa, presets[0])
    film = make_film(cap, OutputSettings(width, height, fps))
    idx = frame_indices(film, n)
    res: dict = {}
    with film.renderer() as r:
        film.frame(r, 0)  # warm-up: shader compilation, first allocation
        t = time.perf_counter()
        frames = [film.frame(r, i) for i in idx]
        res["render"] = (time.perf_counter() - t) / n
        # The read-back alone: the same draw is already in the framebuffer; re-read it n times.
        from vtkmodules.vtkCommonCore import vtkUnsignedCharArray
        from vtkmodules.util.numpy_support import vtk_to_numpy

        buf, win = vtkUnsignedCharArray(), r.plotter.ren_win
        t = time.perf_counter()
        for _ in range(n):
            win.GetPixelData(0, 0, r.win_w - 1, r.win_h - 1, 0, buf, 0)
            np.ascontiguousarray(vtk_to_numpy(buf).reshape(r.win_h, r.win_w, 3)[::-1])
        res["read"] = (time.perf_counter() - t) / n

        for preset in presets:
            t = time.perf_counter()
            with FilmWriter(out / "encode.mp4", width, height, fps, cap.scene.output.crf, preset) as w:
                for f in frames:
                    w.write(f)
            res[f"encode {preset}"] = (time.perf_counter() - t) / n

        for mode, q in (("serial", 0), ("overlap", None)):
            waited = 0.0
            t = time.perf_counter()
            with FilmWriter(out / f"{mode}.mp4", width, height, fps, cap.scene.output.crf, presets[0],
                            queue_frames=q) as w:
                for i in idx:
                    frame = film.frame(r, i)
                    t_w = time.perf_counter()
                    w.write(frame)
                    waited += time.perf_counter() - t_w
                t_close = time.perf_counter()
            res[mode] = (time.perf_counter() - t) / n
            # What the renderer waited for: inside write(), and for ffmpeg to finish after the last frame.
            res[f"{mode} wait"] = (waited + time.perf_counter() - t_close) / n
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="480,1080,2160", help="comma-separated, from " + ", ".join(SIZES))
    ap.add_argument("--frames", type=int, default=24, help="frames per measurement (4K uses a third, at least 4)")
    ap.add_argument("--aa", default="auto,none", help="anti-aliasing settings to compare (auto: the default look, "
                    "MSAA below 1080 lines, SSAA from 1080)")
    ap.add_argument("--presets", default="veryfast,medium,ultrafast",
                    help="x264 presets for the encode-only column; the first one is used end to end "
                    "(veryfast: the scenes' default)")
    args = ap.parse_args()
    presets = args.presets.split(",")
    from llstudio.renderer.plotter import render_window_info

    gl = render_window_info()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {gl['window']}, "
          f"{gl.get('OpenGL renderer string', '?')}")
    print(f"# ms per frame (frames/s); end to end uses x264 preset '{presets[0]}'")
    cols = ["render", "read", *[f"encode {p}" for p in presets], "serial", "serial wait", "overlap",
            "overlap wait"]
    print(f"{'size':>10} {'aa':>5} " + " ".join(f"{c:>18}" for c in cols) + "   overlap/serial")
    with tempfile.TemporaryDirectory() as tmp:
        for s in args.sizes.split(","):
            w, h = SIZES[s]
            n = args.frames if s != "2160" else max(4, args.frames // 3)
            for aa in args.aa.split(","):
                res = bench_size(w, h, 30, aa, n, presets, Path(tmp))
                cells = [f"{1e3 * res[c]:8.1f} ({1 / res[c]:5.1f})" for c in cols]
                print(f"{w}x{h:<5} {aa:>5} " + " ".join(f"{c:>18}" for c in cells)
                      + f"   {res['serial'] / res['overlap']:.2f}x faster", flush=True)


if __name__ == "__main__":
    main()
