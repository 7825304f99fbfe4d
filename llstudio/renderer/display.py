"""The square the grid is drawn on: (alpha, beta) → display (x, y), what lies inside it, heights on the surface."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from ..film.geometry import DISPLAY_EXTENT, to_display


class DisplaySquare:
    """The grid axes ``alphas`` (nx,), ``betas`` (ny,) shown as a square of side ``DISPLAY_EXTENT`` centred on the
    origin whatever their ranges, like a plot whose two axes are scaled independently (a PCA plane can be a hundred
    times longer than it is wide). ``x``, ``y``: the grid's display coordinates; a 1D capture (one beta) has y = 0.
    """

    def __init__(self, alphas: np.ndarray, betas: np.ndarray):
        self.alphas, self.betas = np.asarray(alphas, float), np.asarray(betas, float)
        self.one_d = len(self.betas) == 1
        self.extent = DISPLAY_EXTENT
        # Half the square's side, with room for rounding: a path point on the grid's edge is inside.
        self.half = 0.5 * self.extent * (1.0 + 1e-9)
        self.x = self.coords(self.alphas, 0)
        self.y = self.coords(self.betas, 1)

    def coords(self, v, axis: int, scale: float = 1.0):
        """Grid coordinate (alpha or beta) → display coordinate, in [-extent/2, extent/2] on the grid of a frame
        whose zoom is ``scale``."""
        return to_display(v, self.alphas if axis == 0 else self.betas, self.extent, scale)

    def xy(self, ab: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """(M, 2) (alpha, beta) → (M, 2) display (x, y) at zoom ``scale``."""
        ab = np.asarray(ab, dtype=np.float64).reshape(-1, 2)
        return np.column_stack([self.coords(ab[:, 0], 0, scale), self.coords(ab[:, 1], 1, scale)])

    def inside(self, xy: np.ndarray) -> np.ndarray:
        """(M,) whether display points (M, 2) lie on the square the surface fills."""
        return np.all(np.abs(np.asarray(xy, dtype=np.float64).reshape(-1, 2)) <= self.half, axis=1)

    def height_function(self, z: np.ndarray):
        """Display (x, y) points → height of the surface ``z`` (nx, ny) (or of the 1D curve) there."""
        if self.one_d:
            zline = z[:, 0]
            return lambda xy: np.interp(np.asarray(xy, dtype=float).reshape(-1, 2)[:, 0], self.x, zline)
        return RegularGridInterpolator((self.x, self.y), z, bounds_error=False, fill_value=None)
