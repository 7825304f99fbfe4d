"""Render and encode speed: frames/s end to end, where the time goes, anti-aliasing quality, and the matplotlib peer.

    python benchmarks/render.py                      # 854x480, 1920x1080 and 3840x2160: the default look, AA off
    python benchmarks/render.py --sizes 1080 --frames 12 --aa auto,fxaa,msaa,ssaa,none --presets veryfast

For each size and anti-aliasing setting, in the same run:

- ``render``: ``SurfaceRenderer.render`` alone (array updates, contours, the OpenGL draw, reading the pixels back,
  the 2D overlays), and within it ``read``, the pixel read-back (glReadPixels through GetPixelData of the whole
  window, twice the output's width and height with SSAA, plus the vertical flip; not SSAA's averaging) timed on
  its own after the same draws;
- ``encode``: ``FilmWriter`` alone on frames rendered beforehand (RGB → YUV in ffmpeg's swscale, then x264), for
  each x264 preset asked for;
- ``serial``: render then write each frame in the same thread, ``queue_frames=0`` (what a plain pipe write does:
  the renderer waits while ffmpeg drains the pipe);
- ``overlap``: the film as ``llstudio render`` makes it, the writer thread and bounded queue feeding ffmpeg while
  the next frame renders;
- ``... wait``: of that, the time the rendering thread spent waiting on the encoder (inside ``write`` and for
  ffmpeg to finish after the last frame), per frame;
- ``PSNR``: of the frames against a reference of the same frames (same camera, same state) rendered at 4x4
  supersampling (a window four times the output's width and height, line widths scaled to match, each 4x4 block
  averaged), in dB over the whole frame: how close each anti-aliasing setting comes to a nearly alias-free
  picture. Only where the reference window fits (``--psnr-max``).

and, once per size, ``matplotlib``: the field's usual way, the peer to beat. ``plot_surface`` of the same
landscape (the same grid, every row and column drawn), contour lines on it (``contour`` in 3D), the training
path and the marker, the title and a step/loss line, viewed from the same camera (azimuth and elevation of
each frame's pose), drawn by the Agg backend at the same size and written through the same ``FilmWriter`` (the
same x264 preset): its ``render`` is ``fig.canvas.draw`` plus the RGB copy. ``x mpl``: llstudio's frames/s end
to end (overlap) over matplotlib's (overlap), in the same run. matplotlib is in the ``bench`` extra
(``pip install -e .[bench]``).

Times are wall-clock on a machine that may be shared: compare numbers from the same run (ratios), not across runs.
The synthetic capture is a ``--grid`` x ``--grid`` landscape (default 81x81) over 6 captured steps (a bowl with
ripples that drift), the default scene's look, camera and timeline.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

try:  # the peer: in the 'bench' extra (pyvista pulls it in today, but nothing promises that)
    import matplotlib
except ImportError:
    raise SystemExit("benchmarks/render.py compares with matplotlib, which is not installed: "
                     "pip install -e '.[bench]'") from None

from llstudio.output.encode import FilmWriter
from llstudio.film.film import Film
from llstudio.pipeline import Capture, OutputSettings, make_film
from llstudio.config.scene import scene_from_dict

SIZES = {"480": (854, 480), "1080": (1920, 1080), "2160": (3840, 2160)}
# Supersampling of the PSNR reference, per axis.
REFERENCE_SS = 4


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


def psnr(frames: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """PSNR in dB of ``frames`` against ``reference`` (the mean squared error over all of them)."""
    mse = np.mean([np.mean((f.astype(np.float64) - r) ** 2) for f, r in zip(frames, reference)])
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def reference_frames(width: int, height: int, fps: int, grid: int, idx: list[int]) -> list[np.ndarray]:
    """Frames ``idx`` rendered at REFERENCE_SS x REFERENCE_SS supersampling (the PSNR reference)."""
    from llstudio.renderer.films import surface_renderer

    film = make_film(synthetic_capture("none", "veryfast", grid), OutputSettings(width, height, fps))
    with surface_renderer(film, supersample=REFERENCE_SS) as r:
        return [film.frame(r, i) for i in idx]


def psnr_frames(film: Film, n: int) -> list[int]:
    """The frames PSNR is measured on: two, a third and two thirds into the film."""
    return [int(film.n_frames * k / 3) for k in (1, 2)][:n]


def end_to_end(render_frame, idx: list[int], out: Path, name: str, width: int, height: int, fps: int, crf: int,
               preset: str, res: dict) -> None:
    """``serial`` and ``overlap`` (and their waits) of ``render_frame(i)`` for the frames ``idx`` into ``res``."""
    n = len(idx)
    for mode, q in (("serial", 0), ("overlap", None)):
        waited = 0.0
        t = time.perf_counter()
        with FilmWriter(out / f"{name}-{mode}.mp4", width, height, fps, crf, preset, queue_frames=q) as w:
            for i in idx:
                frame = render_frame(i)
                t_w = time.perf_counter()
                w.write(frame)
                waited += time.perf_counter() - t_w
            t_close = time.perf_counter()
        res[mode] = (time.perf_counter() - t) / n
        # What the renderer waited for: inside write(), and for ffmpeg to finish after the last frame.
        res[f"{mode} wait"] = (waited + time.perf_counter() - t_close) / n


def bench_size(width: int, height: int, fps: int, aa: str, n: int, presets: list[str], out: Path, grid: int,
               reference: list[np.ndarray] | None) -> dict:
    cap = synthetic_capture(aa, presets[0], grid)
    film = make_film(cap, OutputSettings(width, height, fps))
    idx = frame_indices(film, n)
    res: dict = {}
    with film.renderer() as r:
        film.frame(r, 0)  # warm-up: shader compilation, first allocation
        t = time.perf_counter()
        frames = [film.frame(r, i) for i in idx]
        res["render"] = (time.perf_counter() - t) / n
        if reference is not None:
            res["PSNR"] = psnr([film.frame(r, i) for i in psnr_frames(film, len(reference))], reference)
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
        end_to_end(lambda i: film.frame(r, i), idx, out, "llstudio", width, height, fps, cap.scene.output.crf,
                   presets[0], res)
    return res


class MatplotlibPeer:
    """The same film drawn the usual way: matplotlib's ``plot_surface`` with contour lines, path, marker and text,
    on the Agg canvas at ``width`` x ``height``; ``frame(state, pose)`` → (height, width, 3) uint8."""

    def __init__(self, film: Film, width: int, height: int):
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        look = film.capture.scene.look
        self.look, self.title = look, film.capture.scene.title or "benchmark"
        self.dpi = 100
        self.fig = plt.figure(figsize=(width / self.dpi, height / self.dpi), dpi=self.dpi, facecolor=look.background)
        # Drawn in the order added (surface, then contours and path over it), as a surface with lines on it is
        # usually drawn: matplotlib's depth sort of whole collections would put the lines behind the surface.
        self.ax = self.fig.add_axes((0, 0, 1, 1), projection="3d", facecolor=look.background, computed_zorder=False)
        a, b = film.capture.alphas, film.capture.betas
        self.A, self.B = np.meshgrid(a, b, indexing="ij")
        self.width, self.height = width, height

    def frame(self, state, pose) -> np.ndarray:
        ax, look = self.ax, self.look
        ax.cla()
        ax.set_axis_off()
        ax.set_box_aspect((1.0, 1.0, 0.5), zoom=1.5)  # the scene's z_scale: height half the grid's width
        z = (state.values - state.vmin) / max(state.vmax - state.vmin, 1e-12)
        n = z.shape[0]
        ax.plot_surface(self.A, self.B, z, cmap=look.colormap, rcount=n, ccount=z.shape[1], linewidth=0)
        levels = np.linspace(0.0, 1.0, look.contours + 2)[1:-1]
        ax.contour(self.A, self.B, z, levels=levels, colors=look.contour_color, linewidths=1.0, alpha=0.6)
        m = state.marker
        if len(state.trail):
            ax.plot(state.trail[:, 0], state.trail[:, 1], np.full(len(state.trail), float(z.min())),
                    color=look.trail_color, linewidth=2)
        i, j = (int(np.argmin(np.abs(ax_ - v))) for ax_, v in ((self.A[:, 0], m[0]), (self.B[0], m[1])))
        ax.scatter([m[0]], [m[1]], [float(z[i, j])], color=look.marker_color, s=80)
        position, focal, _ = (np.asarray(p, dtype=float) for p in pose)
        d = position - focal
        ax.view_init(elev=float(np.degrees(np.arcsin(d[2] / np.linalg.norm(d)))),
                     azim=float(np.degrees(np.arctan2(d[1], d[0]))))
        self.fig.texts.clear()
        self.fig.text(0.02, 0.96, self.title, color=look.text_color, fontsize=0.03 * self.height * 72 / self.dpi,
                      va="top")
        self.fig.text(0.02, 0.03, f"step {state.step:,.0f}    loss {state.center_loss:.4g}", color=look.text_color,
                      fontsize=0.022 * self.height * 72 / self.dpi)
        self.fig.canvas.draw()
        return np.ascontiguousarray(np.asarray(self.fig.canvas.buffer_rgba())[..., :3])

    def close(self) -> None:
        import matplotlib.pyplot as plt

        plt.close(self.fig)


def bench_matplotlib(width: int, height: int, fps: int, n: int, presets: list[str], out: Path, grid: int) -> dict:
    cap = synthetic_capture("none", presets[0], grid)
    film = make_film(cap, OutputSettings(width, height, fps))
    idx = frame_indices(film, n)
    peer = MatplotlibPeer(film, width, height)
    res: dict = {}
    try:
        peer.frame(*film.view(0))  # warm-up: fonts, first allocation
        t = time.perf_counter()
        frames = [peer.frame(*film.view(i)) for i in idx]
        res["render"] = (time.perf_counter() - t) / n
        for preset in presets:
            t = time.perf_counter()
            with FilmWriter(out / "encode.mp4", width, height, fps, cap.scene.output.crf, preset) as w:
                for f in frames:
                    w.write(f)
            res[f"encode {preset}"] = (time.perf_counter() - t) / n
        end_to_end(lambda i: peer.frame(*film.view(i)), idx, out, "matplotlib", width, height, fps,
                   cap.scene.output.crf, presets[0], res)
    finally:
        peer.close()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="480,1080,2160", help="comma-separated, from " + ", ".join(SIZES))
    ap.add_argument("--frames", type=int, default=16, help="frames per measurement (4K uses a third, at least 4)")
    ap.add_argument("--grid", type=int, default=81, help="points per side of the synthetic landscape")
    ap.add_argument("--aa", default="auto,none", help="anti-aliasing settings to compare (auto: the default look, "
                    "MSAA below 1080 lines, SSAA from 1080; also fxaa, msaa, ssaa)")
    ap.add_argument("--presets", default="veryfast",
                    help="x264 presets for the encode-only column, comma-separated; the first one is used end to end "
                    "(veryfast: the scenes' default)")
    ap.add_argument("--psnr-max", type=int, default=1080,
                    help="measure PSNR against the 4x4-supersampled reference up to this many lines (0: never)")
    ap.add_argument("--no-matplotlib", action="store_true", help="leave out the matplotlib peer")
    args = ap.parse_args()
    presets = args.presets.split(",")
    from llstudio.renderer.plotter import render_window_info

    gl = render_window_info()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {gl['window']}, "
          f"{gl.get('OpenGL renderer string', '?')}; {args.grid}x{args.grid} landscape")
    print(f"# ms per frame (frames/s); end to end uses x264 preset '{presets[0]}'; PSNR in dB against "
          f"{REFERENCE_SS}x{REFERENCE_SS} supersampling; x mpl: overlap frames/s over matplotlib's")
    cols = ["render", "read", *[f"encode {p}" for p in presets], "serial", "serial wait", "overlap",
            "overlap wait"]
    print(f"{'size':>10} {'aa':>10} " + " ".join(f"{c:>18}" for c in cols) + f" {'PSNR':>6} {'x mpl':>6}")

    def cell(res: dict, c: str) -> str:
        return f"{1e3 * res[c]:8.1f} ({1 / res[c]:5.1f})" if c in res else "-"

    with tempfile.TemporaryDirectory() as tmp:
        for s in args.sizes.split(","):
            w, h = SIZES[s]
            n = args.frames if s != "2160" else max(4, args.frames // 3)
            mpl = None
            if not args.no_matplotlib:
                mpl = bench_matplotlib(w, h, 30, n, presets, Path(tmp), args.grid)
                print(f"{w}x{h:<5} {'matplotlib':>10} " + " ".join(f"{cell(mpl, c):>18}" for c in cols)
                      + f" {'-':>6} {1.0:6.2f}", flush=True)
            reference = None
            if 0 < h <= args.psnr_max:
                film = make_film(synthetic_capture("none", presets[0], args.grid), OutputSettings(w, h, 30))
                reference = reference_frames(w, h, 30, args.grid, psnr_frames(film, 2))
            for aa in args.aa.split(","):
                res = bench_size(w, h, 30, aa, n, presets, Path(tmp), args.grid, reference)
                ratio = f"{mpl['overlap'] / res['overlap']:6.2f}" if mpl else f"{'-':>6}"
                q = f"{res['PSNR']:6.2f}" if "PSNR" in res else f"{'-':>6}"
                print(f"{w}x{h:<5} {aa:>10} " + " ".join(f"{cell(res, c):>18}" for c in cols) + f" {q} {ratio}",
                      flush=True)


if __name__ == "__main__":
    main()
