"""The renderer's pure helpers, without a render window: labels, dashes, contour levels, legible colours."""

from __future__ import annotations

import numpy as np

from llstudio.renderer.contours import contour_levels
from llstudio.renderer.overlay import axis_ticks, convexity_label
from llstudio.renderer.surface import legible_colormap
from llstudio.renderer.text import format_loss
from llstudio.renderer.trail import dashes


def test_format_loss_digits_and_divergence():
    assert format_loss(0.123456) == "0.123" and format_loss(0.123456, 4) == "0.1235"
    assert format_loss(float("nan")) == "diverged" and format_loss(float("inf"), 4) == "diverged"


def test_dashes_split_a_path_into_equal_dashes_that_follow_its_bends():
    # An L-shaped path 1.0 long, its corner at 0.5: dashes of 0.2 every 0.4, the second one round the corner.
    pts = np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5]])
    out = dashes([(pts, np.array([0.0, 0.5, 1.0]))], 0.4)
    assert len(out) == 3
    for xy, v in out:
        assert abs(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1)) - 0.2) < 1e-12
        assert len(v) == len(xy)
    np.testing.assert_allclose(out[1][0], [[0.4, 0.0], [0.5, 0.0], [0.5, 0.1]])
    np.testing.assert_allclose(out[1][1], [0.4, 0.5, 0.6])  # values follow the arc length


def test_contour_levels_and_axis_ticks():
    np.testing.assert_allclose(contour_levels(3), [0.25, 0.5, 0.75])
    ticks = dict((label, a) for a, label in axis_ticks(-0.5, 1.5, ((0.0, "init"), (1.0, "final"))))
    assert ticks["init"] == 0.0 and ticks["final"] == 1.0 and "0" not in ticks and "1" not in ticks
    label = convexity_label(0.0, 0.3)
    assert label(0.0) == "0 convex" and label(1.0) == "0.3+ non-convex" and label(0.5) == "0.15"


def test_a_legible_colormap_drops_the_end_that_vanishes_into_the_background():
    def lum(c):
        c = np.asarray(c[:3])
        c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return c @ [0.2126, 0.7152, 0.0722]
    dark = lum(np.array([11, 14, 24]) / 255)
    cut = legible_colormap("magma", "#0b0e18")
    assert (lum(cut(0.0)) + 0.05) / (dark + 0.05) >= 2.0
    assert legible_colormap("magma", "transparent").name == "magma"


def test_a_card_backdrop_continues_the_panel_backgrounds_across_the_dividers():
    from llstudio.renderer.films import backdrop

    left, right = np.full((4, 4, 3), 10, np.uint8), np.full((4, 4, 3), 200, np.uint8)
    img = backdrop([left, right], 2, (12, 6), 2)  # a 2-pixel divider and a 1-pixel border all round
    assert img.shape == (6, 12, 3)
    # Every pixel takes the colour of the nearest panel: no divider or border colour (0) is left.
    assert set(np.unique(img)) == {10, 200}
    np.testing.assert_array_equal(img[:, :6], 10)
    np.testing.assert_array_equal(img[:, 6:], 200)
