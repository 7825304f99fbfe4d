"""A split render rests on this: a frame depends on its index alone, not on the frames drawn before it by the same
renderer (trails, several runs, critical points, a following camera, overlays), so a segment that starts
mid-film draws exactly what a whole render draws there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_scene
from llstudio.film.film import output_settings
from llstudio.pipeline import capture_scene, make_film


@pytest.mark.render
def test_a_film_drawn_from_mid_film_draws_the_same_frames(tmp_path):
    scene = make_scene(tmp_path / "x.toml",
                       training={"runs": [{"name": "a"}, {"name": "b", "batch_size": 8, "lr": 0.3}]},
                       camera={"follow": 0.5},
                       look={"critical_points": True, "loss_inset": True, "trail": True, "arrows": True})
    film = make_film(capture_scene(scene, device=torch.device("cpu")), output_settings(scene, "l"))
    n = film.n_frames
    with film.renderer() as r:
        whole = [film.frame(r, i) for i in range(n)]
    start = n // 2
    with film.renderer() as r:  # a segment's fresh renderer, its first frame mid-film
        part = [film.frame(r, i) for i in range(start, n)]
    assert n > 4 and all(np.array_equal(a, b) for a, b in zip(whole[start:], part))
