"""The training path draped over the surface, cut where it leaves the (zoomed) square."""

from __future__ import annotations

import numpy as np

from ..config.scene import LookSpec
from ..film.timeline import FrameState
from .backend import add_on_top, empty_polydata, pyvista
from .display import DisplaySquare


def clip_segment(p, q, half: float):
    """Liang-Barsky: the parameters (t0, t1), 0 <= t0 <= t1 <= 1, of the part of the segment p → q (display x, y)
    inside the square [-half, half]², or None when it misses the square."""
    p, d = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64) - np.asarray(p, dtype=np.float64)
    t0, t1 = 0.0, 1.0
    for k in (0, 1):
        for pk, qk in ((-d[k], p[k] + half), (d[k], half - p[k])):
            if pk == 0.0:
                if qk < 0.0:  # parallel to this side and outside it
                    return None
            elif pk < 0.0:
                t0 = max(t0, qk / pk)
            else:
                t1 = min(t1, qk / pk)
    return (t0, t1) if t0 <= t1 else None


def clip_polyline(xy: np.ndarray, half: float, values: np.ndarray | None = None) -> list[tuple]:
    """The pieces of the polyline ``xy`` (M, 2) inside the square [-half, half]², cut where it crosses the edge: a
    list of (points (m, 2), values (m,) or None), each of at least two points; ``values`` (M,) are interpolated
    along the cut segments. A zoom film's trail leaves the square as the view closes in."""
    xy = np.asarray(xy, dtype=np.float64)
    pieces, pts, vals = [], [], []

    def at(a, i, t):  # a[i] → a[i + 1] at t, the ends exactly
        return a[i] if t == 0.0 else a[i + 1] if t == 1.0 else a[i] + t * (a[i + 1] - a[i])
    open_end = False  # whether the current piece ends at the start of the next segment

    def close():
        if len(pts) >= 2:
            pieces.append((np.array(pts), None if values is None else np.array(vals)))
        pts.clear()
        vals.clear()

    for i in range(len(xy) - 1):
        t = clip_segment(xy[i], xy[i + 1], half)
        if t is None:
            close()
            open_end = False
            continue
        t0, t1 = t
        if not (open_end and t0 == 0.0):
            close()
            pts.append(at(xy, i, t0))
            if values is not None:
                vals.append(at(values, i, t0))
        pts.append(at(xy, i, t1))
        if values is not None:
            vals.append(at(values, i, t1))
        open_end = t1 == 1.0
    close()
    return pieces


def dashes(pieces: list[tuple], period: float) -> list[tuple]:
    """The dashes of polylines ``pieces`` ((points (m, 2), values (m,) or None), ...), ``period`` long (dash and
    gap alike, in display units along the path), each dash a piece of its own; the pattern runs on across the
    pieces' vertices, which are kept, so a dash follows the path's bends."""
    out = []
    half = 0.5 * period
    for pts, vals in pieces:
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])
        if s[-1] <= 0:
            continue
        cuts = np.arange(0.0, s[-1], half)
        at = np.union1d(s, cuts)  # the vertices and every dash boundary, by arc length
        xy = np.column_stack([np.interp(at, s, pts[:, 0]), np.interp(at, s, pts[:, 1])])
        v = None if vals is None else np.interp(at, s, vals)
        dash = np.floor((at[:-1] + at[1:]) / 2 / half).astype(int) % 2 == 0  # whether segment k is drawn
        edges = np.flatnonzero(np.diff(np.concatenate([[0], dash.astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):  # segments a … b-1: points a … b
            out.append((xy[a:b + 1], None if v is None else v[a:b + 1]))
    return out


def draped_path(square: DisplaySquare, ab: np.ndarray, scale: float, surface, values: np.ndarray | None = None,
                dash: float | None = None):
    """A path (M, 2) in (alpha, beta) as line segments draped over the surface (``surface``: display (x, y) →
    height), lifted a little so the surface does not swallow it, cut where it leaves the square; with ``values``
    (M,) a point array 'loss' of them; with ``dash``, dashed with that period (display units). None when nothing
    of it is inside."""
    pieces = clip_polyline(square.xy(ab, scale), square.half, values)
    if dash:
        pieces = dashes(pieces, dash)
    if not pieces:
        return None
    xy = np.concatenate([p for p, _ in pieces])
    cells, start = [], 0
    for p, _ in pieces:  # segments, as pyvista's lines_from_points makes them
        cells += [c for j in range(start, start + len(p) - 1) for c in (2, j, j + 1)]
        start += len(p)
    line = pyvista().PolyData(np.column_stack([xy, surface(xy) + 0.006 * square.extent]), lines=np.array(cells))
    if values is not None:
        line["loss"] = np.concatenate([v for _, v in pieces])
    return line


# Where a path runs behind a fold of the surface, its ghost shows through: dashed, faint, drawn over everything.
GHOST_OPACITY = 0.5
GHOST_DASH = 0.05  # display units (the square's side is 2)


def trail_width(height: int, ss: int) -> float:
    """Line width of a solid training path, in window pixels, for an output ``height`` pixels high."""
    return max(2.0, height / 360) * ss


class TrailLayer:
    """The primary run's path up to the frame: in ``look.trail_color``, or coloured by the loss along it
    (``look.trail_coloring = 'loss'``, with ``look.trail_colormap``); with a ``top`` layer (backend.top_layer), a
    dashed ghost of it that shows where the surface hides the path."""

    def __init__(self, plotter, square: DisplaySquare, look: LookSpec, height: int, ss: int, top=None):
        self.square, self.by_loss = square, look.trail_coloring == "loss"
        self.line = self._empty()
        self.ghost = self._empty() if top is not None else None
        if self.by_loss:
            kw = dict(scalars="loss", cmap=look.trail_colormap, clim=(0.0, 1.0), show_scalar_bar=False)
            width = max(3.0, height / 270) * ss
            self.actor = plotter.add_mesh(self.line, line_width=width, name="trail", reset_camera=False,
                                          lighting=False, **kw)
        else:
            kw = dict(color=look.trail_color)
            width = trail_width(height, ss)
            self.actor = plotter.add_mesh(self.line, line_width=width, name="trail", reset_camera=False, **kw)
        self.ghost_actor = None
        if top is not None:
            self.ghost_actor = add_on_top(plotter, top, self.ghost, line_width=0.75 * width, opacity=GHOST_OPACITY,
                                          name="trail_ghost", **kw)

    def _empty(self):
        empty = empty_polydata()
        if self.by_loss:
            empty["loss"] = np.zeros(1)
        return empty

    def set_color(self, color: str) -> None:
        """Draw a solid path in ``color`` from now on (a path coloured by loss keeps its colormap)."""
        if not self.by_loss:
            self.actor.prop.color = color
            if self.ghost_actor is not None:
                self.ghost_actor.prop.color = color

    def update(self, state: FrameState, surface) -> None:
        """The path of ``state.trail`` over the surface (``surface``: display (x, y) → height)."""
        line = ghost = None
        if len(state.trail) >= 2:
            tv = None
            if self.by_loss:
                tv = state.trail_values if state.trail_values is not None else np.full(len(state.trail), state.vmax)
                span = state.vmax - state.vmin
                tv = np.clip((tv - state.vmin) / span if span > 0 else 0.0 * tv, 0.0, 1.0)
            line = draped_path(self.square, state.trail, state.scale, surface, tv)
            if self.ghost is not None:
                ghost = draped_path(self.square, state.trail, state.scale, surface, tv, GHOST_DASH)
        self.line.copy_from(line if line is not None else self._empty())
        if self.ghost is not None:
            self.ghost.copy_from(ghost if ghost is not None else self._empty())
