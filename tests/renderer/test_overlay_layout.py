"""The overlay layout: for every scene in scenes/ at the smallest and the largest preset, no box overlaps another,
the surface's free rectangle or the frame's edge. Pure: fonts are measured, nothing is rendered (the legend's
drawing test draws with Pillow alone)."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from conftest import SCENES_DIR
from llstudio.config.presets import QUALITIES
from llstudio.config.scene import load_scene
from llstudio.renderer.layout import (Box, OverlaySpec, card_layout, free_rectangle, panel_layout, quality_layouts,
                                      text_size)

SCENES = sorted(SCENES_DIR.glob("*.toml"))


@pytest.mark.parametrize("quality", ["l", "k"])
@pytest.mark.parametrize("path", SCENES, ids=[p.stem for p in SCENES])
def test_no_overlay_overlaps_another_the_surface_or_the_edge(path, quality):
    scene = load_scene(path)
    frame_h = QUALITIES[quality].height
    for layout in quality_layouts(scene, quality):
        panel = Box(0, 0, layout.width, layout.height)
        boxes = layout.boxes
        for name, box in boxes.items():
            assert box.w > 0 and box.h > 0, name
            assert box.grown(1).within(panel), (name, box, panel)  # off the edge, not touching it
            assert not box.overlaps(layout.free), (name, box, layout.free)
        for (a, p), (b, q) in itertools.combinations(boxes.items(), 2):
            assert not p.overlaps(q), (a, p, b, q)
        assert layout.free.within(panel)
        # The surface keeps most of its panel.
        assert layout.free.w >= 0.55 * layout.width and layout.free.h >= 0.55 * layout.height, layout.free
        if layout.legend is not None:
            assert layout.legend.size >= 0.025 * frame_h
            # Ticks stand apart from their labels.
            assert layout.legend.gap >= 3
    for card in (scene.timeline.title_card, scene.timeline.end_card):
        if card is not None:
            q = QUALITIES[quality]
            parts = card_layout(card.text, card.subtitle, q.width, q.height)
            for box, _ in parts.values():
                assert box.grown(1).within(Box(0, 0, q.width, q.height))
            if "subtitle" in parts:
                assert not parts["title"][0].overlaps(parts["subtitle"][0])


def test_the_free_rectangle_avoids_boxes_and_prefers_the_surfaces_shape():
    boxes = [Box(0, 0, 100, 10), Box(90, 20, 100, 60)]  # a title band and a legend column
    free = free_rectangle(100, 100, boxes, 2.0, aspect=1.0)
    assert (free.x0, free.y0, free.x1, free.y1) == (2.0, 12.0, 88.0, 98.0)
    # A wide picture fits best across the whole width, under the legend.
    wide = free_rectangle(100, 100, boxes, 2.0, aspect=4.0)
    assert (wide.x0, wide.y0, wide.x1, wide.y1) == (2.0, 62.0, 98.0, 98.0)


def test_a_crowded_panel_still_keeps_its_boxes_apart():
    spec = OverlaySpec(title="a long title that will not fit a narrow panel at all", legend="loss",
                       inset="top_right", runs=("first", "second", "third"), axis=True,
                       endpoints=((0.0, "init"), (1.0, "final")))
    layout = panel_layout(spec, 300, 240, 480)
    # No room for the legend's labels between the inset and the key: left out rather than drawn over them.
    assert set(layout.boxes) == {"title", "info", "inset", "key", "axis"} and layout.legend is None
    roomy = panel_layout(spec, 300, 400, 480)
    assert set(roomy.boxes) == {"title", "info", "legend", "inset", "key", "axis"}
    for lay in (layout, roomy):
        for (a, p), (b, q) in itertools.combinations(lay.boxes.items(), 2):
            assert not p.overlaps(q), (a, b)
    # The title shrinks to the panel's width.
    assert text_size(spec.title, layout.title_size)[0] <= layout.boxes["title"].w < 300
    assert layout.title_size < round(0.034 * 480)


def test_a_tall_panel_lays_its_legend_along_the_bottom_and_gives_the_surface_its_width():
    """One panel of two side by side (426x480 of 854x480): a legend column would take a fifth of its width from a
    surface seen at an angle (wider than tall); along the bottom, beside or over the info line, it leaves the
    surface the whole width. A wide single panel keeps the column, which costs its surface nothing."""
    spec = OverlaySpec(title="surface", legend="loss", legend_labels=("0.0135", "2.33"))
    tall = panel_layout(spec, 426, 480, 480)
    assert tall.legend is not None and tall.legend.horizontal
    assert tall.free.x1 - tall.free.x0 > 0.9 * 426
    lg, box, info = tall.legend, tall.boxes["legend"], tall.boxes["info"]
    assert box.y1 <= info.y0 or box.x0 >= info.x1  # over the info line, or beside it
    assert lg.bar.w > lg.bar.h and box.x1 <= 426 - tall.margin and lg.caption.x1 <= lg.bar.x0
    wide = panel_layout(spec, 854, 480, 480)
    assert wide.legend is not None and not wide.legend.horizontal
    # With a run key or an inset the legend stays in the right-hand column they share.
    assert not panel_layout(dataclasses.replace(spec, runs=("a", "b")), 426, 480, 480).legend.horizontal


def test_a_horizontal_legend_runs_from_low_on_the_left_to_high_on_the_right():
    import matplotlib
    import numpy as np
    from PIL import Image

    from llstudio.renderer.overlay import Legend

    spec = OverlaySpec(title="surface", legend="loss", legend_labels=("0.0135", "2.33"))
    layout = panel_layout(spec, 426, 480, 480)
    img = Image.new("RGB", (426, 480))
    Legend(layout, "viridis", "loss", "#ffffff").draw(img, lambda frac: f"{frac:.2f}")
    px = np.asarray(img).astype(int)
    bar = layout.legend.bar
    row = px[int((bar.y0 + bar.y1) / 2)]
    cmap = matplotlib.colormaps["viridis"]
    for frac, x in ((0.0, bar.x0 + 1), (1.0, bar.x1 - 2)):
        np.testing.assert_allclose(row[int(x)], np.array(cmap(frac)[:3]) * 255, atol=6)
    # Labels under the bar, white text: something drawn between the bar and the box's bottom, nothing above it
    # but the caption (left of the bar).
    box = layout.boxes["legend"]
    under = px[int(bar.y1) + 2:int(box.y1), int(bar.x0):int(bar.x1)]
    assert (under.max(axis=2) > 200).any()
    assert not px[:int(box.y0) - 1].any() and not px[:, int(box.x1) + 1:].any()


def test_a_card_shrinks_to_the_frame():
    parts = card_layout("a very long card title for a small frame", "and its subtitle", 200, 120)
    assert parts["title"][0].x0 >= 0 and parts["title"][0].x1 <= 200
    assert parts["subtitle"][0].y0 >= parts["title"][0].y1


def test_a_panel_too_small_for_its_overlays_leaves_the_whole_panel():
    """No rectangle clear of the boxes (ten panels at a tiny size): the panel inside its margin, never a rectangle
    of no width (which gave the camera fit a division by zero and a NaN camera)."""
    free = free_rectangle(40, 30, [Box(0, 0, 40, 30)], 2.0)
    assert (free.x0, free.y0, free.x1, free.y1) == (2.0, 2.0, 38.0, 28.0)
