"""Further training runs on the same plane: a marker and a path for each, in its own colour."""

from __future__ import annotations

from ..config.scene import LookSpec
from ..film.timeline import FrameState
from .backend import add_on_top, empty_polydata
from .display import DisplaySquare
from .markers import add_marker, place_marker
from .overlay import run_color
from .trail import GHOST_DASH, GHOST_OPACITY, draped_path, trail_width


class RunsLayer:
    """Marker and path of runs 1 … ``n_runs - 1`` (run 0, the primary one, is the ordinary marker and trail), as
    the look has them (``look.marker``, ``look.trail``), with their ghosts on a ``top`` layer; ``height``: the
    output's; ``ss``: window pixels per output pixel."""

    def __init__(self, plotter, square: DisplaySquare, look: LookSpec, n_runs: int, height: int, ss: int,
                 top=None):
        self.square = square
        self.actors = []
        width = trail_width(height, ss)
        for i in range(1, n_runs):
            color = run_color(look, i)
            marker = add_marker(plotter, 0.018 * square.extent, 20, color, f"run{i}_marker", top) \
                if look.marker else None
            trail, ghost = empty_polydata(), empty_polydata()
            trail_actor = None
            if look.trail:
                trail_actor = plotter.add_mesh(trail, color=color, line_width=width, name=f"run{i}_trail",
                                               reset_camera=False, lighting=False)
                if top is not None:
                    add_on_top(plotter, top, ghost, color=color, line_width=0.75 * width, opacity=GHOST_OPACITY,
                               name=f"run{i}_trail_ghost")
            self.actors.append((marker, trail, trail_actor, ghost if top is not None else None))

    def update(self, state: FrameState, surface) -> None:
        """Each further run's marker and path up to the frame, over the surface (display (x, y) → height)."""
        for (name, marker_ab, trail_ab), (marker, trail, trail_actor, ghost) in zip(state.runs[1:], self.actors):
            if marker is not None:
                place_marker(self.square, marker, marker_ab, state.scale, surface)
            if trail_actor is not None:
                line = draped_path(self.square, trail_ab, state.scale, surface) if len(trail_ab) >= 2 else None
                trail.copy_from(line if line is not None else empty_polydata())
                if ghost is not None:
                    dashed = draped_path(self.square, trail_ab, state.scale, surface, dash=GHOST_DASH) \
                        if len(trail_ab) >= 2 else None
                    ghost.copy_from(dashed if dashed is not None else empty_polydata())
