"""Contour lines of the surface, recomputed every frame at evenly spaced levels of its normalised values."""

from __future__ import annotations

import numpy as np

from ..config.scene import LookSpec
from .backend import empty_polydata


class ContourLayer:
    """``look.contours`` lines at levels evenly spaced inside (0, 1) of the surface grid's 'values', lifted a
    hair above it; ``extent``: the display square's side; ``ss``: window pixels per output pixel."""

    def __init__(self, plotter, look: LookSpec, extent: float, ss: int):
        self.extent = extent
        self.levels = np.linspace(0.0, 1.0, look.contours + 2)[1:-1]
        # A point without cells draws nothing but lets the actor exist before the first frame's lines.
        self.lines = empty_polydata()
        self.actor = plotter.add_mesh(self.lines, color=look.contour_color, line_width=1.2 * ss,
                                      opacity=0.55, name="contours", reset_camera=False)

    def update(self, grid) -> None:
        """The lines of the surface ``grid`` (a pyvista dataset with point array 'values') as it is now."""
        lines = grid.contour(isosurfaces=self.levels, scalars="values")
        # Lift the lines a hair above the surface so they do not flicker in and out of it.
        if lines.n_points:
            lines.points[:, 2] += 0.002 * self.extent
        self.lines.copy_from(lines)
