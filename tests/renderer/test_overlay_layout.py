"""The overlay layout: for every scene in scenes/ at the smallest and the largest preset, no box overlaps another,
the surface's free rectangle or the frame's edge. Pure: fonts are measured, nothing is rendered."""

from __future__ import annotations

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


def test_a_card_shrinks_to_the_frame():
    parts = card_layout("a very long card title for a small frame", "and its subtitle", 200, 120)
    assert parts["title"][0].x0 >= 0 and parts["title"][0].x1 <= 200
    assert parts["subtitle"][0].y0 >= parts["title"][0].y1


def test_a_panel_too_small_for_its_overlays_leaves_the_whole_panel():
    """No rectangle clear of the boxes (ten panels at a tiny size): the panel inside its margin, never a rectangle
    of no width (which gave the camera fit a division by zero and a NaN camera)."""
    free = free_rectangle(40, 30, [Box(0, 0, 40, 30)], 2.0)
    assert (free.x0, free.y0, free.x1, free.y1) == (2.0, 2.0, 38.0, 28.0)
