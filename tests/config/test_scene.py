"""Scene validation: every problem at once, each with its key path and a helpful message."""

from __future__ import annotations

import json

import pytest

from conftest import SCENES_DIR, tiny_dict
from llstudio.errors import SceneError
from llstudio.config.scene import Scene, json_schema, load_scene, scene_from_dict


def problems_of(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(SceneError) as info:
        scene_from_dict(data, source="bad.toml")
    assert info.value.path == "bad.toml"
    return info.value.problems


def problem_at(data: dict, path: str) -> str:
    """The message of the problem reported at key ``path`` (fails if there is none)."""
    probs = problems_of(data)
    msgs = [msg for loc, msg in probs if loc == path]
    assert msgs, f"no problem at {path!r} in {probs}"
    return msgs[0]


# ------------------------------------------------------------------------------------------------ valid scenes


def test_empty_dict_gives_documented_defaults():
    scene = scene_from_dict({})
    assert isinstance(scene, Scene)
    assert scene.grid.shape == (41, 41)
    assert scene.training.steps == 300 and scene.capture.every == 10
    assert scene.name == "<scene>"  # no file stem to take


def test_default_dict_round_trips_through_validation():
    dump = scene_from_dict({}).resolved_dump()
    again = scene_from_dict(dump)
    assert again.resolved_dump() == dump
    assert "source" not in dump


def test_tiny_scene_validates():
    scene = scene_from_dict(tiny_dict(), source="/x/tiny.toml")
    assert scene.name == "tiny"
    assert scene.source == "/x/tiny.toml"
    assert scene.grid.shape == (5, 5)


def test_repo_has_scenes():
    assert sorted(SCENES_DIR.glob("*.toml")), f"no scene files in {SCENES_DIR}"


@pytest.mark.parametrize("path", sorted(SCENES_DIR.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_scene_validates(path):
    scene = load_scene(path)
    assert scene.source == str(path)
    assert scene.name == path.stem
    steps = scene.captured_steps()
    assert steps[0] == 0 and steps[-1] == scene.training.steps


def test_integers_are_accepted_where_floats_belong():
    # TOML users write `lr = 1` and `at = 0`; strictness is about strings, not int → float.
    scene = scene_from_dict({"training": {"lr": 1}, "grid": {"range": [-2, 2]},
                             "camera": {"keyframes": [{"at": 0, "azimuth": 10}]}})
    assert scene.training.lr == 1.0 and isinstance(scene.training.lr, float)
    assert scene.grid.range == [-2.0, 2.0]


def test_non_square_resolution_gives_shape():
    assert scene_from_dict({"grid": {"resolution": [7, 5]}}).grid.shape == (7, 5)


def test_scene_is_frozen():
    scene = scene_from_dict({})
    with pytest.raises(Exception):
        scene.training.steps = 5  # type: ignore[misc]


# ------------------------------------------------------------------------------------------------ captured steps


def test_captured_steps_include_first_and_last():
    scene = scene_from_dict({"training": {"steps": 25}, "capture": {"every": 10}})
    assert scene.captured_steps() == [0, 10, 20, 25]


def test_captured_steps_when_every_divides_steps():
    scene = scene_from_dict({"training": {"steps": 12}, "capture": {"every": 4}})
    assert scene.captured_steps() == [0, 4, 8, 12]


def test_explicit_capture_steps_are_used_verbatim():
    scene = scene_from_dict({"training": {"steps": 50}, "capture": {"steps": [0, 3, 50]}})
    assert scene.captured_steps() == [0, 3, 50]


def test_capture_steps_after_training_end_is_an_error():
    probs = problems_of({"training": {"steps": 12}, "capture": {"steps": [0, 20]}})
    assert len(probs) == 1
    # Cross-section checks report their key path like any other problem.
    assert probs[0][0] == "capture.steps" and "20" in probs[0][1] and "12" in probs[0][1]


def test_capture_steps_must_increase():
    msg = problem_at({"capture": {"steps": [4, 2]}}, "capture.steps")
    assert "increasing" in msg


# ------------------------------------------------------------------------------------------------ bad input


def test_malformed_toml_mentions_the_line(tmp_path):
    p = tmp_path / "broken.toml"
    p.write_text('version = 1\n[grid]\nresolution = = 5\n')
    with pytest.raises(SceneError) as info:
        load_scene(p)
    err = info.value
    assert err.path == str(p)
    assert len(err.problems) == 1
    loc, msg = err.problems[0]
    assert "TOML" in msg
    assert "line 3" in msg
    assert str(p) in str(err)


def test_missing_file_is_a_scene_error(tmp_path):
    with pytest.raises(SceneError) as info:
        load_scene(tmp_path / "nope.toml")
    assert "no such file" in info.value.problems[0][1]
    assert info.value.exit_code == 2


def test_unknown_key_suggests_the_right_one():
    msg = problem_at({"grid": {"resolutin": 5}}, "grid.resolutin")
    assert "unknown key 'resolutin'" in msg
    assert "did you mean 'resolution'" in msg
    assert "y_range" in msg  # lists what is allowed in that section


def test_unknown_key_in_a_keyframe_lists_keyframe_fields():
    msg = problem_at({"camera": {"keyframes": [{"at": 0.0, "azimut": 10.0}]}}, "camera.keyframes[0].azimut")
    assert "did you mean 'azimuth'" in msg
    assert "elevation" in msg


def test_unknown_top_level_section():
    msg = problem_at({"grdi": {"resolution": 5}}, "grdi")
    assert "did you mean 'grid'" in msg


def test_nested_list_path_for_wrong_type():
    data = {"camera": {"keyframes": [{"at": 0.0, "azimuth": 0.0}, {"at": 1.0, "azimuth": "left"}]}}
    probs = problems_of(data)
    assert [loc for loc, _ in probs] == ["camera.keyframes[1].azimuth"]
    assert "number" in probs[0][1] and "'left'" in probs[0][1]


def test_list_element_path():
    msg = problem_at({"model": {"hidden": [8, -3]}}, "model.hidden[1]")
    assert "greater than 0" in msg


def test_string_where_int_belongs_is_strict():
    msg = problem_at({"training": {"steps": "300"}}, "training.steps")
    assert "integer" in msg and "'300'" in msg


def test_string_where_bool_belongs_is_strict():
    msg = problem_at({"look": {"marker": "yes"}}, "look.marker")
    assert "bool" in msg


def test_string_resolution_is_rejected():
    probs = problems_of({"grid": {"resolution": "5"}})
    assert any(loc == "grid.resolution" for loc, _ in probs)


def test_string_resolution_reports_one_clean_key_path():
    probs = problems_of({"grid": {"resolution": "5"}})
    assert [loc for loc, _ in probs] == ["grid.resolution"], probs


def test_negative_learning_rate_is_out_of_range():
    msg = problem_at({"training": {"lr": -1}}, "training.lr")
    assert "greater than 0" in msg and "-1" in msg


@pytest.mark.parametrize("res", [1, [5], [5, 1], 5000])
def test_resolution_out_of_range(res):
    msg = problem_at({"grid": {"resolution": res}}, "grid.resolution")
    assert "2 to 4097" in msg


@pytest.mark.parametrize("still, says", [(-0.1, "greater than or equal to 0"), (1.5, "less than or equal to 1"),
                                         ("end", "number")])
def test_output_still_is_a_fraction_of_the_story(still, says):
    assert says in problem_at({"output": {"still": still}}, "output.still")


def test_output_still_accepts_both_ends_and_defaults_to_unset():
    assert scene_from_dict({}).output.still is None
    assert [scene_from_dict({"output": {"still": v}}).output.still for v in (0, 0.5, 1)] == [0.0, 0.5, 1.0]


def test_range_must_be_increasing():
    msg = problem_at({"grid": {"range": [1.0, -1.0]}}, "grid.range")
    assert "min < max" in msg


def test_non_increasing_camera_keyframes():
    data = {"camera": {"keyframes": [{"at": 0.5, "azimuth": 0.0}, {"at": 0.5, "azimuth": 10.0}]}}
    msg = problem_at(data, "camera.keyframes")
    assert "increasing" in msg and "'at'" in msg


def test_keyframe_at_outside_film():
    msg = problem_at({"camera": {"keyframes": [{"at": 1.5, "azimuth": 0.0}]}}, "camera.keyframes[0].at")
    assert "less than or equal to 1" in msg


def test_bad_colormap_with_suggestion():
    msg = problem_at({"look": {"colormap": "viridus"}}, "look.colormap")
    assert "unknown colormap 'viridus'" in msg
    assert "'viridis'" in msg


@pytest.mark.parametrize("colour", ["notacolour", "#12345", "#gggggg"])
def test_bad_colour(colour):
    msg = problem_at({"look": {"background": colour}}, "look.background")
    assert "not a colour" in msg and repr(colour) in msg


def test_section_that_is_not_a_table():
    msg = problem_at({"training": 5}, "training")
    assert "table" in msg


def test_several_problems_are_reported_at_once():
    data = {
        "grid": {"resolutin": 5, "range": [1.0, 0.0]},
        "training": {"lr": -1, "steps": "300"},
        "look": {"colormap": "viridus", "background": "#12345"},
        "camera": {"keyframes": [{"at": 0.0, "azimuth": 0.0}, {"at": 1.0, "azimuth": "left"}]},
    }
    with pytest.raises(SceneError) as info:
        scene_from_dict(data, source="many.toml")
    err = info.value
    locs = sorted(loc for loc, _ in err.problems)
    assert locs == sorted(["grid.resolutin", "grid.range", "training.lr", "training.steps", "look.colormap",
                           "look.background", "camera.keyframes[1].azimuth"])
    assert str(err).startswith("many.toml: 7 problems in the scene file")
    # One line per problem, each naming the file and the key path.
    for loc in locs:
        assert f"many.toml: {loc}: " in str(err)


def test_scene_error_from_file_names_the_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[grid]\nresolutin = 5\n")
    with pytest.raises(SceneError) as info:
        load_scene(p)
    assert info.value.path == str(p)
    assert info.value.problems[0][0] == "grid.resolutin"


# ------------------------------------------------------------------------------------------------ schema


def test_json_schema_is_valid_json_with_descriptions():
    schema = json.loads(json_schema())
    assert schema["type"] == "object"
    assert "source" not in schema["properties"]
    for section in ("data", "model", "training", "directions", "grid", "capture", "camera", "look", "output"):
        assert section in schema["properties"], section
    defs = schema["$defs"]
    grid = defs["GridSpec"]["properties"]
    assert "Points per axis" in grid["resolution"]["description"]
    assert defs["TrainingSpec"]["properties"]["lr"]["description"] == "Learning rate."
    assert "additionalProperties" in defs["GridSpec"] and defs["GridSpec"]["additionalProperties"] is False
    # every field of every section documents itself
    for name, d in defs.items():
        for field, prop in d.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field} has no description"


@pytest.mark.parametrize("key,value", [("training.lr", float("inf")), ("training.lr", float("nan")),
                                       ("training.momentum", float("-inf")), ("grid.range", [float("-inf"), 1.0])])
def test_infinite_and_nan_numbers_are_refused(tmp_path, key, value):
    # Issue 15 #9: 'lr = inf' was accepted (and trained to NaN on the first step); nan was refused by gt=0 alone.
    section, name = key.split(".")
    path = tmp_path / "s.toml"
    path.write_text(f"[{section}]\n{name} = {value!r}\n")  # Python's repr of inf/nan is TOML's spelling
    with pytest.raises(SceneError) as info:
        load_scene(path)
    assert key in str(info.value) and "finite" in str(info.value)
