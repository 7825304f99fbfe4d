"""The renderer's pure helpers, without a render window: labels and the surface's convexity colours."""

from __future__ import annotations

import numpy as np

from llstudio.config.scene import LookSpec
from llstudio.renderer.surface import resample, surface_colors
from llstudio.renderer.text import format_loss


def test_format_loss_digits_and_divergence():
    assert format_loss(0.123456) == "0.123" and format_loss(0.123456, 4) == "0.1235"
    assert format_loss(float("nan")) == "diverged" and format_loss(float("inf"), 4) == "diverged"


def test_surface_colors_map_the_convexity_range_onto_the_loss_grid():
    ca = cb = np.linspace(-1.0, 1.0, 3)
    a = b = np.linspace(-1.0, 1.0, 5)
    ratio = np.array([[[0.0, 0.5, 1.0], [0.25, 0.5, 0.75], [2.0, 0.5, -1.0]]])
    look = LookSpec(color_by="convexity", convexity_range=[0.0, 0.5])
    colors = surface_colors(look, ratio, ca, cb, a, b)
    assert colors.shape == (1, 5, 5)
    # The curvature grid's points are every other loss-grid point: there the colour is exact, then clipped.
    np.testing.assert_allclose(colors[0, ::2, ::2], np.clip(ratio[0] / 0.5, 0.0, 1.0))
    np.testing.assert_allclose(resample(ratio, ca, cb, a, b)[0, 1, 0], 0.125)
    assert surface_colors(LookSpec(), ratio, ca, cb, a, b) is None  # coloured by loss
    assert surface_colors(look, None, None, None, a, b) is None  # no curvature maps
