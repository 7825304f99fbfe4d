"""Captured keyframes → one surface per video frame (interpolation, holds, scaling). Pure numpy.

Time runs: ``hold_start`` seconds on the first captured step, ``seconds_per_step`` between consecutive captured
steps, ``hold_end`` seconds on the last one. At exactly the time of a captured step, the frame shows that step's
captured values unchanged, whatever the interpolation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .scene import ScalingSpec, TimelineSpec


def scale_loss(loss: np.ndarray, spec: ScalingSpec) -> np.ndarray:
    """Clip then (optionally) log10 the loss. Non-finite values must already have been replaced."""
    v = np.asarray(loss, dtype=np.float64)
    if spec.clip is not None:
        v = np.minimum(v, spec.clip)
    if spec.log:
        v = np.log10(np.maximum(v, 1e-12))
    return v


def fill_nonfinite(loss: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN/inf (a diverged run) with the largest finite value; returns the array and how many were bad."""
    bad = ~np.isfinite(loss)
    n = int(bad.sum())
    if n == 0:
        return loss, 0
    finite = loss[~bad]
    fill = finite.max() if finite.size else 1.0
    return np.where(bad, fill, loss), n


def _hold_last_finite(path) -> np.ndarray:
    """(K, 2) path with non-finite points (a diverged run) replaced by the last finite one (or the centre)."""
    out = np.asarray(path, dtype=np.float64).copy()
    last = np.zeros(2)
    for k in range(len(out)):
        if np.all(np.isfinite(out[k])):
            last = out[k]
        else:
            out[k] = last
    return out


def ease(s: np.ndarray | float, kind: str) -> np.ndarray | float:
    """Easing of a fraction s in [0, 1]: 'smoothstep' has zero slope at both ends."""
    if kind == "smoothstep":
        return s * s * (3.0 - 2.0 * s)
    return s


def film_length(n_captured: int, spec: TimelineSpec, fps: int) -> tuple[float, int]:
    """(duration in seconds, number of frames) of a film of ``n_captured`` captured steps."""
    duration = (spec.hold_start + (n_captured - 1) * spec.seconds_per_step
                + max(n_captured - 2, 0) * spec.hold_each + spec.hold_end)
    return duration, max(1, int(round(duration * fps)))


@dataclass(frozen=True)
class FrameState:
    """What one video frame shows: ``values`` (nx, ny) scaled loss; the (fractional) step; the raw loss at the
    current weights; the value range heights and colours are normalised to; where the current weights sit on the
    plane (``marker``, (alpha, beta)) and the path that led there (``trail``, (M, 2), ending at the marker)."""

    index: int
    values: np.ndarray
    step: float
    center_loss: float
    vmin: float
    vmax: float
    marker: tuple = (0.0, 0.0)
    trail: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    arrow: Optional[tuple] = None  # ((alpha, beta) start, (alpha, beta) end) of the held step's update
    colors: Optional[np.ndarray] = None  # (nx, ny) in [0, 1] (NaN: unknown), colours the surface instead of values


class Timeline:
    """Maps video frames to interpolated landscapes.

    ``steps`` (K,) captured step numbers; ``loss`` (K, nx, ny) raw loss; ``center_loss`` (K,); ``path`` (K, 2)
    the (alpha, beta) of each captured step's weights on the plane (default: all at the centre); ``updates``
    (K, 2) the update from each captured step to the next, in the same coordinates (shown while a step is held);
    ``colors`` (K, nx, ny) an optional colour value per point in [0, 1] (e.g. the convexity ratio), interpolated
    through time like the loss.
    """

    def __init__(self, steps: np.ndarray, loss: np.ndarray, center_loss: np.ndarray,
                 timeline: TimelineSpec, scaling: ScalingSpec, fps: int, path: np.ndarray | None = None,
                 updates: np.ndarray | None = None, colors: np.ndarray | None = None):
        self.steps = np.asarray(steps, dtype=np.float64)
        filled, nbad = fill_nonfinite(np.asarray(loss, dtype=np.float64))
        if nbad:
            warnings.warn(f"{nbad} landscape values are NaN or infinite (the run diverged there); "
                          "they are shown at the highest finite loss", RuntimeWarning, stacklevel=2)
        self.values = scale_loss(filled, scaling)
        self.center_loss = np.asarray(center_loss, dtype=np.float64)
        self.path = np.zeros((len(self.steps), 2)) if path is None else _hold_last_finite(path)
        self.updates = None if updates is None else np.nan_to_num(np.asarray(updates, dtype=np.float64), nan=0.0,
                                                                    posinf=0.0, neginf=0.0)
        self.spec, self.scaling, self.fps = timeline, scaling, fps
        k = len(self.steps)
        self.duration, self.n_frames = film_length(k, timeline, fps)
        self.vmin, self.vmax = float(self.values.min()), float(self.values.max())
        self._pchip = self._path_pchip = None
        if timeline.interpolation == "cubic" and k >= 3:
            from scipy.interpolate import PchipInterpolator

            self._pchip = PchipInterpolator(np.arange(k), self.values, axis=0)
            self._path_pchip = PchipInterpolator(np.arange(k), self.path, axis=0)
        self.colors = None if colors is None else np.asarray(colors, dtype=np.float64)
        self._colors_pchip = None
        # PCHIP refuses NaN (an unknown colour, e.g. curvature of diverged weights): those films blend linearly,
        # which keeps NaN exactly where a neighbouring captured step has it.
        if self.colors is not None and self._pchip is not None and np.all(np.isfinite(self.colors)):
            self._colors_pchip = PchipInterpolator(np.arange(k), self.colors, axis=0)

    def position(self, frame: int) -> float:
        """Fractional index into the captured steps shown at ``frame`` (0 … K-1)."""
        # In frames rather than seconds, and snapped: a frame that falls on a captured step must show exactly it.
        # After the start hold, each period is a transition (seconds_per_step) then a hold (hold_each).
        x = frame - self.spec.hold_start * self.fps
        move = self.spec.seconds_per_step * self.fps
        period = move + self.spec.hold_each * self.fps
        if x <= 0:
            return 0.0
        k = np.floor(x / period + 1e-9)
        r = x - k * period
        u = k + min(r / move, 1.0)
        if abs(u - round(u)) < 1e-9:
            u = float(round(u))
        return float(np.clip(u, 0.0, len(self.steps) - 1))

    def frame_of_step(self, k: int) -> int:
        """A video frame that shows captured step index ``k`` exactly: the arrival at it (for step 0, the end of the
        start hold); rounded when that falls between frames."""
        s = self.spec
        return int(round((s.hold_start + k * s.seconds_per_step + max(k - 1, 0) * s.hold_each) * self.fps))

    def _interpolate(self, u: float, data: np.ndarray, pchip) -> np.ndarray:
        """``data`` (K, ...) at fractional captured index ``u``; exactly ``data[k]`` at whole ``u``."""
        k = int(np.floor(u))
        s = u - k
        if s == 0.0 or k >= len(self.steps) - 1:
            return data[min(k, len(self.steps) - 1)]
        if pchip is not None:
            return pchip(u)
        s = ease(s, "smoothstep" if self.spec.interpolation == "smoothstep" else "linear")
        return (1.0 - s) * data[k] + s * data[k + 1]

    def values_at(self, u: float) -> np.ndarray:
        """Scaled landscape (nx, ny) at fractional captured index ``u``."""
        return self._interpolate(u, self.values, self._pchip)

    def marker_at(self, u: float) -> np.ndarray:
        """(alpha, beta) of the weights at fractional captured index ``u``, on the same curve as the surface."""
        return self._interpolate(u, self.path, self._path_pchip)

    def trail_at(self, u: float, per_step: int = 6) -> np.ndarray:
        """The path from the first captured step to ``u``, sampled ``per_step`` times per captured step: (M, 2)."""
        ts = np.arange(0.0, u, 1.0 / per_step)
        return np.array([self.marker_at(t) for t in ts] + [self.marker_at(u)])

    def frame(self, index: int) -> FrameState:
        u = self.position(index)
        vals = self.values_at(u)
        idx = np.arange(len(self.steps))
        step = float(np.interp(u, idx, self.steps))
        center = float(np.interp(u, idx, self.center_loss))
        if self.scaling.range == "frame":
            vmin, vmax = float(vals.min()), float(vals.max())
        else:
            vmin, vmax = self.vmin, self.vmax
        moving = bool(np.any(self.path != 0.0))
        marker = tuple(float(v) for v in self.marker_at(u))
        trail = self.trail_at(u) if moving else np.zeros((0, 2))
        arrow = None
        k = int(u)
        if self.updates is not None and self.spec.hold_each > 0 and u == k and k < len(self.steps) - 1:
            arrow = (marker, tuple(float(m + d) for m, d in zip(marker, self.updates[k])))
        colors = None if self.colors is None else self._interpolate(u, self.colors, self._colors_pchip)
        return FrameState(index, vals, step, center, vmin, vmax, marker, trail, arrow, colors)
