"""Cost of anti-aliasing and of the overlays: frames/s of the renderer alone, every mode in the same run.

    python benchmarks/anti_aliasing.py                  # 1920x1080, 41x41 surface, 30 frames per case
    python benchmarks/anti_aliasing.py --size 854x480 --frames 20

A synthetic landscape (a drifting bowl with ripples) is rendered with a slowly orbiting camera through
``SurfaceRenderer`` with anti_aliasing none / msaa / ssaa, and with the legend and loss inset on. Encoding is not
included. Report ratios, not absolute numbers: they are what stays true on a busy machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from llstudio.renderer.plotter import SurfaceRenderer, render_window_info
from llstudio.config.scene import LookSpec
from llstudio.film.timeline import FrameState


def frames(n: int, grid: int):
    a = np.linspace(-1, 1, grid)
    A, B = np.meshgrid(a, a, indexing="ij")
    curve = (np.arange(500.0), 2.0 * np.exp(-np.arange(500.0) / 120) + 0.1)
    for i in range(n):
        t = i / max(n - 1, 1)
        v = np.log10(1 + 4 * (A - 0.4 * t) ** 2 + 3 * B**2 + 0.3 * np.sin(6 * A + t) ** 2)
        yield FrameState(i, v, 500 * t, 1.0, float(v.min()), float(v.max()), marker=(0.4 * t, 0.0), curve=curve)


def pose(i: int, n: int):
    az = np.radians(-60 + 40 * i / max(n - 1, 1))
    return ((5.2 * np.cos(az), 5.2 * np.sin(az), 3.0), (0.0, 0.0, 0.5), (0.0, 0.0, 1.0))


def run(look: LookSpec, width: int, height: int, n: int, grid: int) -> float:
    a = np.linspace(-1, 1, grid)
    with SurfaceRenderer(a, a, look, width, height, 0.5, title="benchmark", log_values=True) as r:
        states = list(frames(n + 2, grid))
        r.render(states[0], pose(0, n))  # warm-up: shader compilation, first allocations
        t0 = time.perf_counter()
        for i, st in enumerate(states[1:n + 1]):
            r.render(st, pose(i, n))
        return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--grid", type=int, default=41)
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    print(f"render window: {render_window_info()}")
    cases = [("none", dict(anti_aliasing="none")), ("msaa", dict(anti_aliasing="msaa")),
             ("ssaa", dict(anti_aliasing="ssaa")),
             ("none + legend + inset", dict(anti_aliasing="none", legend=True, loss_inset=True))]
    base = None
    print(f"{'mode':26s} {'frames/s':>9s} {'time vs none':>13s}")
    for name, kw in cases:
        fps = run(LookSpec(**kw), w, h, args.frames, args.grid)
        base = base or fps
        print(f"{name:26s} {fps:9.2f} {base / fps:12.2f}x")


if __name__ == "__main__":
    main()
