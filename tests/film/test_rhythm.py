"""The earthquake rhythm: hold each captured step (with its update arrow), then move to the next."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_scene
from llstudio.config.scene import ScalingSpec, TimelineSpec
from llstudio.film.timeline import Keyframes, Timeline, film_length

K = 5
STEPS = np.arange(K) * 10
LOSS = np.stack([np.full((3, 3), 1.0 + k) for k in range(K)])
PATH = np.cumsum(np.ones((K, 2)), axis=0) - 1
UPDATES = np.vstack([np.diff(PATH, axis=0), np.zeros((1, 2))])


def timeline(**kw):
    spec = TimelineSpec(**{"seconds_per_step": 0.5, "hold_each": 0.3, "hold_start": 0.2, "hold_end": 0.4,
                           "interpolation": "linear", **kw})
    return Timeline(Keyframes(STEPS, LOSS, np.arange(K, dtype=float), path=PATH, updates=UPDATES), spec, ScalingSpec(log=False), 10)


def test_film_length_counts_the_holds_between_steps():
    spec = TimelineSpec(seconds_per_step=0.5, hold_each=0.3, hold_start=0.2, hold_end=0.4)
    duration, n = film_length(K, spec, 10)
    assert duration == pytest.approx(0.2 + 4 * 0.5 + 3 * 0.3 + 0.4)
    assert n == 35


def test_each_step_is_held_with_its_update_arrow_then_left():
    tl = timeline()
    for k in range(1, K - 1):
        arrive = tl.frame_of_step(k)
        held = list(range(arrive, arrive + 3))  # 0.3 s at 10 fps
        for f in held:
            state = tl.frame(f)
            assert tl.position(f) == k
            np.testing.assert_array_equal(state.values, LOSS[k])
            assert state.arrow is not None
            np.testing.assert_allclose(state.arrow[0], PATH[k])
            np.testing.assert_allclose(state.arrow[1], PATH[k] + UPDATES[k])
        # then the transition: between k and k+1, no arrow
        moving = tl.frame(held[-1] + 2)
        assert k < tl.position(held[-1] + 2) < k + 1 and moving.arrow is None
    # the last step has no update to show
    assert tl.frame(tl.n_frames - 1).arrow is None


def test_no_hold_means_no_arrow_and_the_old_timing():
    tl = timeline(hold_each=0.0)
    assert all(tl.frame(f).arrow is None for f in range(tl.n_frames))
    assert tl.frame_of_step(2) == round((0.2 + 2 * 0.5) * 10)


def test_captured_updates_are_the_moves_between_steps(tmp_path):
    from llstudio.pipeline import capture_scene

    scene = make_scene(tmp_path / "u.toml", directions={"kind": "weights", "weights": ["2.weight[3,5]", "2.weight[7,2]"],
                                                         "frame": "fixed"},
                       grid={"resolution": 3}, timeline={"hold_each": 0.2})
    cap = capture_scene(scene, device=torch.device("cpu"))
    np.testing.assert_allclose(cap.updates[:-1], np.diff(cap.plane_path, axis=0), atol=1e-6)
    np.testing.assert_array_equal(cap.updates[-1], [0.0, 0.0])


@pytest.mark.render
def test_held_frame_draws_the_arrow(tmp_path):
    from llstudio.pipeline import make_film, OutputSettings

    look = {"arrow_color": "#00ff00", "colormap": "gray", "contours": 0, "overlay": False, "marker": False,
            "trail": False, "arrow_scale": 8.0}
    scene = make_scene(tmp_path / "a.toml", directions={"kind": "weights", "weights": ["2.weight[3,5]", "2.weight[7,2]"],
                                                         "frame": "fixed"},
                       grid={"resolution": 9, "range": "auto"}, timeline={"hold_each": 0.4}, look=look)
    from llstudio.pipeline import capture_scene

    cap = capture_scene(scene, device=torch.device("cpu"))
    film = make_film(cap, OutputSettings(320, 240, 15))

    def green(img):
        return int(np.sum((img[..., 1] > 150) & (img[..., 0] < 90) & (img[..., 2] < 90)))

    held = film.timeline.frame_of_step(1) + 1
    moving = film.timeline.frame_of_step(2) - 2
    assert film.timeline.frame(held).arrow is not None and film.timeline.frame(moving).arrow is None
    with film.renderer() as r:
        assert green(film.frame(r, held)) > 5
        assert green(film.frame(r, moving)) == 0
