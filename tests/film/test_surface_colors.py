"""The surface's convexity colours: the capture's convexity ratio on the loss grid, look.convexity_range mapped
onto [0, 1] and clipped there."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from llstudio.config.scene import LookSpec
from llstudio.film.film import surface_colors
from llstudio.landscape.curvature import resample


def fake_capture(look: LookSpec, ratio, ca, a):
    """What surface_colors reads of a Capture: its look, whether it has curvature maps, the ratio on the grid."""
    on_grid = None if ratio is None else resample(ratio, ca, ca, a, a)
    return SimpleNamespace(scene=SimpleNamespace(look=look), curvature=None if ratio is None else object(),
                           convexity_on_grid=lambda: on_grid)


def test_surface_colors_map_the_convexity_range_onto_the_loss_grid():
    ca = np.linspace(-1.0, 1.0, 3)
    a = np.linspace(-1.0, 1.0, 5)
    ratio = np.array([[[0.0, 0.5, 1.0], [0.25, 0.5, 0.75], [2.0, 0.5, -1.0]]])
    look = LookSpec(color_by="convexity", convexity_range=[0.0, 0.5])
    colors = surface_colors(fake_capture(look, ratio, ca, a))
    assert colors.shape == (1, 5, 5)
    # The curvature grid's points are every other loss-grid point: there the colour is exact, then clipped.
    np.testing.assert_allclose(colors[0, ::2, ::2], np.clip(ratio[0] / 0.5, 0.0, 1.0))
    np.testing.assert_allclose(resample(ratio, ca, ca, a, a)[0, 1, 0], 0.125)
    assert surface_colors(fake_capture(LookSpec(), ratio, ca, a)) is None  # coloured by loss
    assert surface_colors(fake_capture(look, None, ca, a)) is None  # no curvature maps
