"""What the pipeline checks before any work: the film's length from the scene alone (for --frames and --frame),
and a scene refused with its data or model leaves the store untouched."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import make_scene
from llstudio.errors import SceneError, UsageError
from llstudio.film.film import output_settings, scene_frames
from llstudio.pipeline import capture_scene, check_render, make_film, still_index
from llstudio.store.store import CaptureStore


@pytest.mark.parametrize("timeline", [{}, {"speed": [{"at": 0.0, "speed": 1.0}, {"at": 1.0, "speed": 3.0}]},
                                      {"hold_each": 0.3, "title_card": {"text": "t", "seconds": 1.5}}])
@pytest.mark.parametrize("quality", ["l", "m"])
def test_the_films_length_is_known_from_the_scene(tiny_capture, timeline, quality):
    scene = make_scene(timeline=timeline)  # the captured scene, with another timeline
    settings = output_settings(scene, quality)
    film = make_film(dataclasses.replace(tiny_capture, scene=scene), settings)
    assert scene_frames(scene, settings.fps) == film.n_frames


def test_frames_and_still_index_are_checked_against_it(tmp_path):
    scene = make_scene(tmp_path / "tiny.toml")
    n = scene_frames(scene, output_settings(scene, "l").fps)
    assert check_render(scene, tmp_path / "f.mp4", None, f"0:{n}", "l") == "mp4"
    with pytest.raises(UsageError, match=f"selects no frame: the film has {n} frames"):
        check_render(scene, tmp_path / "f.mp4", None, f"{n}:{n + 5}", "l")
    assert still_index(scene, -1, "l") == n - 1
    with pytest.raises(UsageError, match=f"--frame {n}: the film has {n} frames"):
        still_index(scene, n, "l")
    assert list(tmp_path.iterdir()) == []


def test_a_scene_refused_with_its_model_leaves_the_store_untouched(tmp_path):
    store = CaptureStore(tmp_path / "cache")
    scene = make_scene(tmp_path / "f.toml", model={"kind": "custom", "factory": "no_such_module_here:make"})
    with pytest.raises(SceneError, match="model.factory"):
        capture_scene(scene, device=torch.device("cpu"), store=store)
    scene = make_scene(tmp_path / "w.toml", directions={"kind": "weights", "weights": ["no.such", "net.0.weight"]})
    with pytest.raises(SceneError, match=r"directions\.weights\[0\]"):
        capture_scene(scene, device=torch.device("cpu"), store=store)
    assert not (tmp_path / "cache").exists()


def test_a_panel_refused_with_its_model_stops_the_capture_before_any_panel_is_stored(tmp_path):
    store = CaptureStore(tmp_path / "cache")
    scene = make_scene(tmp_path / "p.toml", panels=[{"title": "fine"}, {
        "title": "broken", "directions": {"kind": "weights", "weights": ["no.such", "net.0.weight"]}}])
    with pytest.raises(SceneError, match=r"directions\.weights\[0\]"):
        capture_scene(scene, device=torch.device("cpu"), store=store)
    assert not (tmp_path / "cache").exists()
