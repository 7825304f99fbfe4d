"""The update arrow: while a step is held, the step's update drawn as an arrow over the surface."""

from __future__ import annotations

import numpy as np

from ..config.scene import LookSpec
from ..film.timeline import FrameState
from .backend import add_on_top, empty_polydata, pyvista
from .display import DisplaySquare
from .markers import GHOST_OPACITY
from .trail import clip_segment


class ArrowLayer:
    """An arrow from the frame's ``state.arrow`` start to its end (times ``look.arrow_scale``), in
    ``look.arrow_color``; its thickness is in display units, so short updates stay visible as arrows. With a
    ``top`` layer (backend.top_layer), an arrow behind a fold of the surface shows through as a faint ghost."""

    def __init__(self, plotter, square: DisplaySquare, look: LookSpec, top=None):
        self.square, self.scale = square, look.arrow_scale
        self.mesh = empty_polydata()
        self.actor = plotter.add_mesh(self.mesh, color=look.arrow_color, smooth_shading=True, name="arrow",
                                      reset_camera=False)
        # The same mesh: the ghost moves with the arrow at no cost.
        self.ghost = (add_on_top(plotter, top, self.mesh, color=look.arrow_color, opacity=GHOST_OPACITY,
                                 name="arrow_ghost") if top is not None else None)

    def update(self, state: FrameState, surface) -> None:
        """The frame's arrow over the surface (``surface``: display (x, y) → height), or nothing."""
        arrow = self._arrow(state, surface)
        self.mesh.copy_from(arrow if arrow is not None else empty_polydata())

    def _arrow(self, state: FrameState, surface):
        if state.arrow is None:
            return None
        sq = self.square
        start, end = sq.xy(np.asarray(state.arrow, dtype=np.float64), state.scale)
        end = start + self.scale * (end - start)
        # An update that starts outside the (zoomed) square is not shown; one that leaves it ends at its edge.
        if not sq.inside(start)[0]:
            return None
        t1 = clip_segment(start, end, sq.half)[1]
        if t1 < 1.0:
            end = start + t1 * (end - start)
        lift = 0.02 * sq.extent
        p0 = np.array([*start, surface([start])[0] + lift])
        p1 = np.array([*end, surface([end])[0] + lift])
        length = float(np.linalg.norm(p1 - p0))
        if length < 1e-9:
            return None
        return pyvista().Arrow(start=p0, direction=p1 - p0, scale=length, tip_length=min(0.35, 0.08 / length),
                               tip_radius=min(0.15, 0.025 / length), shaft_radius=min(0.05, 0.009 / length))
