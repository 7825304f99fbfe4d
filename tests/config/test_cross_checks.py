"""Cross-section checks: every problem at once, each at its key path, reported like the sections' own problems."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from conftest import tiny_dict
from llstudio.config.checks import cross_check_problems
from llstudio.config.presets import FORMATS, format_problem, writes
from llstudio.config.problems import loc_to_path, path_to_loc
from llstudio.config.scene import Scene, scene_from_dict
from llstudio.errors import SceneError

# Three cross-check problems in three sections (grid, look, model); each section is valid on its own.
THREE = dict(grid={"dimensions": 1, "resolution": 11, "y_range": [-1.0, 1.0]},
             look={"color_by": "convexity"},
             model={"kind": "mlp", "width": 8})
THREE_PATHS = ["grid.y_range", "look.color_by", "model.width"]


def problems_of(data: dict, source: str = "bad.toml") -> list[tuple[str, str]]:
    with pytest.raises(SceneError) as info:
        scene_from_dict(data, source=source)
    return info.value.problems


def test_three_cross_check_problems_are_reported_at_once_with_their_paths():
    problems = dict(problems_of(tiny_dict(**THREE)))
    assert sorted(problems) == THREE_PATHS
    assert problems["grid.y_range"] == "a 1D grid (grid.dimensions = 1) has no beta axis; remove y_range"
    assert problems["look.color_by"] == "'convexity' needs curvature maps: add a [capture.curvature] table"
    assert problems["model.width"].startswith("applies to model.kind 'cnn', 'resnet' or 'vgg' only")


def test_cross_check_problems_read_like_field_problems():
    # The same 'file: key.path: message' lines as a field's problem, under one count.
    with pytest.raises(SceneError) as info:
        scene_from_dict(tiny_dict(**THREE), source="three.toml")
    text = str(info.value)
    assert text.startswith("three.toml: 3 problems in the scene file")
    for path in THREE_PATHS:
        assert f"three.toml: {path}: " in text


def test_problems_come_in_the_order_of_the_checks():
    # grid before look (capture checks) before model, as the checks run.
    assert [p for p, _ in problems_of(tiny_dict(**THREE))] == THREE_PATHS


def test_field_problems_hide_cross_check_problems():
    # pydantic runs the scene's model validator (the cross-checks) only once every section is valid: a field
    # problem is reported alone; the cross-check problems appear once the fields are fixed.
    data = tiny_dict(**THREE)
    data["training"]["lr"] = -1.0
    assert [p for p, _ in problems_of(data)] == ["training.lr"]
    data["training"]["lr"] = 0.1
    assert [p for p, _ in problems_of(data)] == THREE_PATHS


def test_a_panel_reports_all_its_cross_check_problems_under_its_prefix():
    panels = [{}, {"grid": {"range": "auto"}, "look": {"color_by": "convexity"}}]
    problems = dict(problems_of(tiny_dict(panels=panels)))
    assert sorted(problems) == ["panels[1].grid.range", "panels[1].look.color_by"]
    assert "'auto' fits the grid" in problems["panels[1].grid.range"]


def test_model_validate_raises_one_validation_error_at_the_key_paths():
    # Outside scene_from_dict, the problems are pydantic value errors located at their keys.
    with pytest.raises(ValidationError) as info:
        Scene.model_validate(tiny_dict(**THREE))
    errors = info.value.errors()
    assert [e["loc"] for e in errors] == [("grid", "y_range"), ("look", "color_by"), ("model", "width")]
    assert all(e["type"] == "value_error" for e in errors)


def test_fxaa_with_a_transparent_background_is_refused_at_the_anti_aliasing_key():
    data = tiny_dict(look={"anti_aliasing": "fxaa", "background": "transparent"}, output={"format": "png"})
    assert problems_of(data) == [("look.anti_aliasing", "'fxaa' filters the finished picture and drops its alpha "
                                  "channel, which a transparent background needs: use 'ssaa', 'msaa' or 'none' "
                                  "(or 'auto')")]
    # With a background colour, or another mode with transparency, the scene is valid.
    scene_from_dict(tiny_dict(look={"anti_aliasing": "fxaa"}))
    scene_from_dict(tiny_dict(look={"anti_aliasing": "msaa", "background": "transparent"}, output={"format": "png"}))


def test_a_valid_scene_has_no_cross_check_problems():
    assert cross_check_problems(scene_from_dict(tiny_dict())) == []


@pytest.mark.parametrize("path", ["grid.y_range", "directions.weights[1]", "camera.keyframes[2].azimuth",
                                  "panels[0].look.color_by"])
def test_key_paths_and_locations_round_trip(path):
    assert loc_to_path(path_to_loc(path)) == path
    assert path_to_loc("directions.weights[1]") == ("directions", "weights", 1)


# ------------------------------------------------------------------------------------------------ formats


def test_format_problem_accepts_what_fits():
    for fmt, f in FORMATS.items():
        assert format_problem(fmt) is None
        assert format_problem(fmt, path="film" + f.suffix) is None
    assert format_problem("png", alpha=True) is None and format_problem("prores", alpha=True) is None


def test_format_problem_names_the_rule_broken():
    assert format_problem("avi") == "unknown output format 'avi': choose one of mp4, webm, gif, png, prores"
    assert format_problem("mp4", alpha=True) == ("a transparent background needs an output format with alpha "
                                                 "(png or prores), not 'mp4'")
    assert format_problem("webm", path="out.mp4") == ("output 'out.mp4' does not fit format 'webm', which writes "
                                                      "a '.webm' file")
    assert "directory of PNG frames" in format_problem("png", path="out.mp4")
    assert writes("gif") == "a '.gif' file"
