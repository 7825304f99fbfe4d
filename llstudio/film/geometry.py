"""Display geometry: where the grid sits in the 3-D view, shared by the camera (film) and the renderer."""

from __future__ import annotations

import numpy as np

# The grid is shown as a square of this side centred on the origin, whatever its range: the camera's distances
# and the surface's heights are in these units.
DISPLAY_EXTENT = 2.0


def to_display(v, axis_values: np.ndarray, extent: float, scale=1.0):
    """Grid coordinate (alpha or beta) → display coordinate, [-extent/2, extent/2] over ``axis_values`` times
    ``scale`` (a zoom film's current zoom, a number or one per value of ``v``); outside that range for a point
    outside the grid. A one-point axis (a 1D capture's beta) maps to 0."""
    ax = np.asarray(axis_values, dtype=np.float64)
    span = ax[-1] - ax[0]
    if span == 0:
        return np.zeros_like(np.asarray(v, dtype=np.float64))
    return (np.asarray(v, dtype=np.float64) / scale - ax[0]) / span * extent - extent / 2
