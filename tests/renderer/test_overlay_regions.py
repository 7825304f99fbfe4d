"""The frame's 2D overlays drawn on their regions only give the same pixels as drawn on the whole frame. Pure
Pillow and numpy: the frame is noise, nothing is rendered."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from llstudio.config.scene import LookSpec
from llstudio.film.timeline import FrameState
from llstudio.renderer.layout import look_overlays, panel_layout
from llstudio.renderer.overlay import FrameOverlays

CURVE = (np.arange(100.0), 2.0 * np.exp(-np.arange(100.0) / 30) + 0.1)


def state(k: int, values_range=(-1.3, 0.4)) -> FrameState:
    lo, hi = values_range
    return FrameState(k, np.zeros((3, 3)), 10.0 * k, 0.5 / (k + 1), lo - 0.1 * k, hi + 0.2 * k, epoch=0.1 * k,
                      curve=CURVE)


def overlays(look: LookSpec, width: int, height: int, one_d: bool = False, runs=()) -> FrameOverlays:
    spec = look_overlays(look, "a title long enough to be cut at the smallest sizes", one_d, runs=runs)
    return FrameOverlays(look, spec, panel_layout(spec, width, height), True, look.background)


@pytest.mark.parametrize("size", [(160, 90), (320, 180), (854, 480)])
@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("look, one_d, runs", [
    (dict(), False, ()),
    (dict(legend=True, loss_inset=True), False, ("sgd", "adam", "a run with a long name")),
    (dict(legend=True, color_by="convexity", loss_inset=True, inset_corner="bottom_left"), False, ()),
    (dict(loss_inset=True), True, ()),
])
def test_overlays_on_their_regions_are_pixel_identical_to_the_whole_frame(size, channels, look, one_d, runs):
    w, h = size
    ov = overlays(LookSpec(**look), w, h, one_d, runs)
    rng = np.random.default_rng(0)
    x_of = (lambda a: (np.asarray(a) + 1.0) / 2.0 * w) if one_d else None
    for k in range(3):  # the canvas is reused from frame to frame: what a frame drew must not leak into the next
        st = state(k)
        if ov.text is not None:
            ov.text.update(st)
        frame = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        whole = ov.draw(frame.copy(), st, x_of, (-1.0, 1.0), whole=True)
        fast = ov.draw(frame.copy(), st, x_of, (-1.0, 1.0))
        assert fast.shape == frame.shape and fast.dtype == np.uint8
        assert (whole != frame).any()  # something was drawn
        np.testing.assert_array_equal(fast, whole)


def test_regions_cover_every_box_within_the_frame():
    look = LookSpec(legend=True, loss_inset=True)
    ov = overlays(look, 854, 480)
    regions = ov.regions(854, 480)
    assert len(regions) == len(ov.layout.boxes)
    for x0, y0, x1, y1 in regions:
        assert 0 <= x0 < x1 <= 854 and 0 <= y0 < y1 <= 480
    for b in ov.layout.boxes.values():
        assert any(x0 <= b.x0 and b.x1 <= x1 and y0 <= b.y0 and b.y1 <= y1 for x0, y0, x1, y1 in regions)
    # Without overlays the frame is given back untouched.
    bare = FrameOverlays(look, dataclasses.replace(ov.spec, title="", legend=None), panel_layout(
        look_overlays(LookSpec(overlay=False)), 854, 480), True, look.background)
    frame = np.zeros((480, 854, 3), np.uint8)
    assert bare.draw(frame, state(0)) is frame
