"""The grid's coordinates: its axes, an 'auto' range fitted to the path, the zoom of each captured step, the
coarser curvature grid (pure functions of the scene and numbers)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..config.scene import Scene


def auto_range(values: np.ndarray, margin: float = 0.25) -> list[float]:
    """[min, max] covering ``values`` and 0 (the centre) with ``margin`` of the span on each side."""
    lo, hi = min(float(np.min(values)), 0.0), max(float(np.max(values)), 0.0)
    span = hi - lo if hi > lo else 1.0
    return [lo - margin * span, hi + margin * span]


def axes(scene: Scene, path: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """The grid's alpha (nx,) and beta (ny,) coordinates; an 'auto' range is fitted to ``path`` (K, 2)."""
    nx, ny = scene.grid.shape
    if scene.grid.range == "auto":
        if path is None:
            raise ValueError("an 'auto' grid range needs the projected path")
        finite = path[np.all(np.isfinite(path), axis=1)]
        finite = finite if len(finite) else np.zeros((1, 2))
        xr, yr = auto_range(finite[:, 0]), auto_range(finite[:, 1])
    else:
        xr = scene.grid.range
        yr = scene.grid.y_range or scene.grid.range
    if scene.grid.dimensions == 1:
        # The 1D contract: one beta, zero, so loss is (steps, nx, 1) and every point lies on the line of d1.
        return np.linspace(xr[0], xr[1], nx), np.array([0.0])
    return np.linspace(xr[0], xr[1], nx), np.linspace(yr[0], yr[1], ny)


def zoom_scales(steps, zoom: float) -> np.ndarray:
    """(steps,) factor each captured step's grid axes are multiplied by (``grid.zoom``): 1 at the first step,
    ``zoom`` at the last, geometric in between by step number. Exactly 1 everywhere without zoom (or with a
    single captured step)."""
    steps = np.asarray(steps, dtype=np.float64)
    if zoom == 1.0 or len(steps) < 2 or steps[-1] == steps[0]:
        return np.ones(len(steps))
    scales = float(zoom) ** ((steps - steps[0]) / (steps[-1] - steps[0]))
    scales[0], scales[-1] = 1.0, float(zoom)  # exact at both ends, whatever the rounding of the power
    return scales


def curvature_axes(scene: Scene, alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The curvature grid's (cx,) and (cy,) coordinates: the loss grid's range at the curvature resolution."""
    cx, cy = scene.capture.curvature.shape
    return np.linspace(alphas[0], alphas[-1], cx), np.linspace(betas[0], betas[-1], cy)
