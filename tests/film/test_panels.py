"""Multi-panel films: the scene's [[panels]] and [layout], the pure layout functions, per-panel captures (cached
once when identical) and the tiled film, down to the command line."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from conftest import PANELS_TOML, make_scene
from llstudio.film.camera import CameraPath
from llstudio.errors import SceneError, UsageError
from llstudio.film.camera import panel_camera
from llstudio.film.panels import gap_pixels, grid_shape, panel_size
from llstudio.landscape.result import PanelCapture
from llstudio.renderer.films import tile
from llstudio.pipeline import OutputSettings, capture_key, capture_scene, estimate, make_film
from llstudio.config.scene import LayoutSpec, load_scene, scene_from_dict
from llstudio.store.store import CaptureStore

CPU = torch.device("cpu")

TWO_PANELS = [{"title": "batch size 4", "training": {"batch_size": 4}},
              {"title": "batch size 64", "training": {"batch_size": 64}}]



def problems_of(**overrides) -> dict[str, str]:
    with pytest.raises(SceneError) as info:
        make_scene("p.toml", **overrides)
    return dict(info.value.problems)


# --------------------------------------------------------------------------------------------- layout (pure)


def solid(value: int, h: int = 4, w: int = 6) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_tile_places_panels_row_major_with_gaps_and_centres_the_block():
    images = [solid(10), solid(20), solid(30), solid(40)]
    out = tile(images, 2, (20, 11), 2, (255, 0, 0))
    assert out.shape == (11, 20, 3) and out.dtype == np.uint8
    # Block: 2*6 + 2 = 14 wide, 2*4 + 2 = 10 high, centred in 20x11: x from 3, y from 0.
    assert (out[0:4, 3:9] == 10).all() and (out[0:4, 11:17] == 20).all()
    assert (out[6:10, 3:9] == 30).all() and (out[6:10, 11:17] == 40).all()
    assert (out[:, 9:11] == [255, 0, 0]).all()  # the vertical gap
    assert (out[4:6, :] == [255, 0, 0]).all()  # the horizontal gap
    assert (out[:, :3] == [255, 0, 0]).all() and (out[:, 17:] == [255, 0, 0]).all() and (out[10] == [255, 0, 0]).all()


def test_tile_centres_an_incomplete_last_row():
    out = tile([solid(10), solid(20), solid(30)], 2, (14, 10), 2, (0, 0, 0))
    # The third panel sits in the middle of the second row: (14 - 6) / 2 = 4.
    assert (out[6:10, 4:10] == 30).all()
    assert (out[6:10, :4] == 0).all() and (out[6:10, 10:] == 0).all()


def test_tile_one_row_without_gap_is_a_plain_hstack():
    a, b = solid(1, 4, 6), solid(2, 4, 6)
    np.testing.assert_array_equal(tile([a, b], 2, (12, 4), 0, (9, 9, 9)), np.hstack([a, b]))


def test_tile_rejects_mismatched_or_oversized_images():
    with pytest.raises(ValueError, match="must all be"):
        tile([solid(1, 4, 6), solid(2, 4, 8)], 2, (40, 40), 0, (0, 0, 0))
    with pytest.raises(ValueError, match="need 13x4 pixels"):
        tile([solid(1), solid(2)], 2, (12, 4), 1, (0, 0, 0))


@pytest.mark.parametrize("n, columns, expected", [
    (1, None, (1, 1)), (2, None, (2, 1)), (3, None, (3, 1)), (4, None, (2, 2)), (5, None, (3, 2)),
    (9, None, (3, 3)), (10, None, (4, 3)), (4, 1, (1, 4)), (5, 2, (2, 3)), (2, 5, (2, 1)),
])
def test_grid_shape(n, columns, expected):
    assert grid_shape(n, columns) == expected


def test_panel_size_is_even_and_fits():
    for width, height, cols, rows, gap in [(854, 480, 2, 1, 2), (1920, 1080, 3, 1, 4), (1280, 720, 3, 3, 3),
                                           (161, 91, 2, 2, 1)]:
        pw, ph = panel_size(width, height, cols, rows, gap)
        assert pw % 2 == 0 and ph % 2 == 0
        assert cols * pw + (cols - 1) * gap <= width and rows * ph + (rows - 1) * gap <= height
        assert cols * (pw + 2) + (cols - 1) * gap > width or rows * (ph + 2) + (rows - 1) * gap > height
    assert panel_size(854, 480, 2, 1, 2) == (426, 480)
    with pytest.raises(UsageError, match="do not fit"):
        panel_size(100, 60, 4, 4, 2)


def test_gap_pixels_scale_with_the_height():
    assert gap_pixels(LayoutSpec(gap=0.0), 1080) == 0
    assert gap_pixels(LayoutSpec(gap=0.004), 1080) == 4
    assert gap_pixels(LayoutSpec(gap=0.0001), 480) == 1  # never thinner than a pixel


def test_panel_camera_backs_off_in_narrow_panels_only():
    pos = np.array([[3.0, 4.0, 2.0], [0.0, 5.0, 1.0]])
    focal = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5]])
    up = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    path = CameraPath(pos, focal, up)
    assert panel_camera(path, 1920, 1080) is path
    narrow = panel_camera(path, 600, 1000)  # aspect 0.6 → twice as far
    np.testing.assert_allclose(narrow.position - focal, 2.0 * (pos - focal))
    np.testing.assert_array_equal(narrow.focal_point, focal)
    np.testing.assert_array_equal(narrow.up, up)


# ------------------------------------------------------------------------------------------------- scene


def test_two_panel_scene_validates_and_derives_panel_scenes(tmp_path):
    scene = make_scene(tmp_path / "cmp.toml", panels=TWO_PANELS + [{"look": {"colormap": "magma"}}, {}])
    p = scene.panel_scenes()
    assert [s.name for s in p] == ["cmp_panel1", "cmp_panel2", "cmp_panel3", "cmp_panel4"]
    assert [s.training.batch_size for s in p] == [4, 64, 16, 16]
    assert [s.title for s in p] == ["batch size 4", "batch size 64", 'colormap = magma', "tiny"]
    assert p[2].look.colormap == "magma" and p[2].look.contours == scene.look.contours
    # Everything not overridden is the main scene's; panel scenes have no panels of their own.
    for s in p:
        assert s.panels == [] and s.source == scene.source
        assert s.camera == scene.camera and s.timeline == scene.timeline and s.output == scene.output
        assert s.data == scene.data and s.model == scene.model and s.grid == scene.grid
    assert p[1].training.model_dump(exclude={"batch_size"}) == scene.training.model_dump(exclude={"batch_size"})
    assert scene.name == "cmp"


def test_panel_overrides_are_dumped_as_written_and_round_trip(tmp_path):
    scene = make_scene(tmp_path / "cmp.toml", panels=TWO_PANELS, layout={"columns": 1})
    dump = scene.resolved_dump()
    assert dump["panels"] == TWO_PANELS
    assert dump["layout"]["columns"] == 1
    assert "panel" not in dump and "source" not in dump
    assert scene_from_dict(dump).resolved_dump() == dump


def test_panel_scene_equals_the_hand_merged_scene(tmp_path):
    scene = make_scene(tmp_path / "cmp.toml", panels=TWO_PANELS)
    by_hand = make_scene(tmp_path / "cmp.toml", training={"batch_size": 64}, title="batch size 64")
    assert scene.panel_scenes()[1].resolved_dump() == by_hand.resolved_dump()
    assert capture_key(scene.panel_scenes()[1], "cpu") == capture_key(by_hand, "cpu")


def test_a_scene_without_panels_is_unchanged(tmp_path):
    scene = make_scene(tmp_path / "tiny.toml")
    assert scene.panels == [] and scene.panel is None and scene.name == "tiny"
    assert scene.panel_scenes() == []


def test_toml_panels_load(tmp_path):
    path = tmp_path / "cmp.toml"
    path.write_text(PANELS_TOML)
    scene = load_scene(path)
    assert [p.title for p in scene.panels] == ["batch size 4", "batch size 64"]
    assert scene.panel_scenes()[1].look.colormap == "magma"


def test_override_errors_are_reported_all_at_once_with_their_key_paths():
    problems = problems_of(panels=[
        {"training": {"batch_size": 0}},
        {"training": {"batchsize": 10}, "grid": {"resolution": 1}},
        {"camera": {"keyframes": []}},
        {"look": {"colormap": "viridiss"}},
    ])
    assert set(problems) == {"panels[0].training.batch_size", "panels[1].training.batchsize",
                             "panels[1].grid.resolution", "panels[2].camera", "panels[3].look.colormap"}
    assert "greater than 0" in problems["panels[0].training.batch_size"]
    assert "did you mean 'batch_size'?" in problems["panels[1].training.batchsize"]
    assert "shared by every panel" in problems["panels[2].camera"]
    assert "'viridis'" in problems["panels[3].look.colormap"]


def test_cross_checks_of_a_merged_panel_name_the_panel():
    problems = problems_of(panels=[{}, {"capture": {"steps": [0, 50]}},
                                   {"directions": {"kind": "pca"}, "capture": {"every": 12}}])
    assert "after the last training step (12)" in problems["panels[1].capture.steps"]
    assert "at least 3 captured steps" in problems["panels[2].directions.kind"]


def test_panel_section_must_be_a_table():
    assert "must be a table" in problems_of(panels=[{"training": 5}])["panels[0].training"]


def test_layout_checks():
    assert "at most 2" in problems_of(panels=TWO_PANELS, layout={"columns": 3})["layout.columns"]
    assert "not a colour" in problems_of(panels=TWO_PANELS, layout={"gap_color": "blurple"})["layout.gap_color"]
    mixed = [{"scaling": {"log": False}}, {}]
    assert "same scaling.log" in problems_of(panels=mixed, layout={"shared_range": True})["layout.shared_range"]




def test_estimate_lists_every_panel(tmp_path):
    scene = make_scene(tmp_path / "cmp.toml", panels=[{}, {"training": {"steps": 20}}])
    cost = estimate(scene, "l")
    assert [p["name"] for p in cost["panels"]] == ["cmp_panel1", "cmp_panel2"]
    assert [p["captured_steps"] for p in cost["panels"]] == [4, 6]
    assert cost["frames"] == max(p["frames"] for p in cost["panels"]) == cost["panels"][1]["frames"]
    assert cost["layout"] == "2x1" and cost["panel_resolution"] == "426x480" and cost["resolution"] == "854x480"
    assert cost["grid_evaluations"] == 4 * 25 + 6 * 25


# ----------------------------------------------------------------------------------------------- capture


def test_identical_panels_are_captured_once(tmp_path, monkeypatch):
    import llstudio.pipeline.runs

    runs = []
    real_train = llstudio.pipeline.runs.train

    def counting_train(scene, *args, **kwargs):
        runs.append(scene.training.batch_size)
        return real_train(scene, *args, **kwargs)

    monkeypatch.setattr(llstudio.pipeline.runs, "train", counting_train)
    store = CaptureStore(tmp_path / "store")
    # Panels 1 and 3 differ only in look: one capture; panel 2 trains with another batch size.
    scene = make_scene(tmp_path / "cmp.toml", panels=[{"title": "a"}, {"training": {"batch_size": 4}},
                                                      {"title": "b", "look": {"colormap": "magma"}}])
    cap = capture_scene(scene, device=CPU, store=store)
    assert isinstance(cap, PanelCapture) and cap.scene is scene
    assert runs == [16, 4]
    a, b, c = cap.panels
    assert a.key == c.key != b.key
    assert cap.key == f"{a.key}+{b.key}+{a.key}"
    assert [p.scene.title for p in cap.panels] == ["a", 'batch_size = 4', "b"]
    assert c.scene.look.colormap == "magma" and a.scene.look.colormap == "viridis"
    np.testing.assert_array_equal(a.loss, c.loss)
    assert not np.allclose(a.loss, b.loss)
    assert len(list(store.captures.iterdir())) == 2

    # A second run reads everything from the cache, and each panel equals the scene it stands for.
    runs.clear()
    again = capture_scene(scene, device=CPU, store=store)
    assert runs == []
    plain = capture_scene(make_scene(tmp_path / "x.toml", training={"batch_size": 4}), device=CPU, store=store)
    assert again.panels[1].key == plain.key
    np.testing.assert_array_equal(again.panels[1].loss, plain.loss)


# ------------------------------------------------------------------------------------------------- film

W, H = 160, 90


def test_shorter_panels_hold_their_last_step(panel_capture):
    film = make_film(panel_capture, OutputSettings(W, H, 10))
    # (0.1 + 3 * 0.2 + 0.1) s and (0.1 + 5 * 0.2 + 0.1) s at 10 fps.
    assert film.n_frames == 12
    assert [f.n_frames for f in film.films] == [12, 12]
    short = film.films[0].timeline
    last = short.frame(film.n_frames - 1)
    assert last.step == 12 and short.frame(8).step == 12
    np.testing.assert_array_equal(last.values, short.values[-1])
    assert film.films[1].timeline.frame(film.n_frames - 1).step == 20
    # One camera move for both panels: the same directions and up vectors in every frame; each panel's distance
    # and focal point are fitted to its own surface (framing = 'fit', issue 14), so those may differ a little.
    a, b = film.films[0].camera, film.films[1].camera

    def view(c):
        d = c.focal_point - c.position
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    np.testing.assert_allclose(view(a), view(b), atol=1e-9)
    np.testing.assert_array_equal(a.up, b.up)


def test_panels_with_a_speed_ramp_and_uneven_captured_steps_are_one_length(panel_capture, tmp_path):
    """The ramp is read on the captured step numbers: every panel's film, the panel film and the length known
    from the scene alone (scene_frames, for --frames and --frame) agree. The panels were stretched with evenly
    spaced steps before, so a panel's film came out longer than the panel film that tiles it."""
    import dataclasses

    from llstudio.film.film import scene_frames

    ramp = [{"at": 0.0, "speed": 0.25}, {"at": 1.0, "speed": 2.0}]
    scene = make_scene(tmp_path / "ramp.toml", timeline={"seconds_per_step": 0.5, "speed": ramp},
                       panels=[{"title": "short", "training": {"batch_size": 4}, "capture": {"steps": [0, 1, 2, 12]}},
                               {"title": "long", "training": {"batch_size": 64, "steps": 20},
                                "capture": {"steps": [0, 1, 2, 3, 4, 20]}}])
    panels = [dataclasses.replace(c, scene=p, steps=np.asarray(p.captured_steps()))
              for c, p in zip(panel_capture.panels, scene.panel_scenes())]
    film = make_film(PanelCapture(scene, panels), OutputSettings(W, H, 10))
    assert [f.n_frames for f in film.films] == [film.n_frames] * 2 == [scene_frames(scene, 10)] * 2
    assert film.films[0].timeline.frame(film.n_frames - 1).step == 12


def test_shared_range_gives_every_panel_the_union(panel_capture):
    scene = panel_capture.scene.model_copy(update={"layout": LayoutSpec(shared_range=True)})
    film = make_film(PanelCapture(scene, panel_capture.panels), OutputSettings(W, H, 10))
    own = make_film(panel_capture, OutputSettings(W, H, 10))
    lo = min(f.timeline.vmin for f in own.films)
    hi = max(f.timeline.vmax for f in own.films)
    for f in film.films:
        state = f.timeline.frame(3)
        assert (state.vmin, state.vmax) == (lo, hi)


@pytest.mark.render
def test_panel_film_frames_have_the_layout_size_and_differ(panel_capture):
    film = make_film(panel_capture, OutputSettings(W, H, 10))
    gap = gap_pixels(panel_capture.scene.layout, H)
    assert (film.columns, film.rows, gap) == (2, 1, 4)
    assert (film.panel_width, film.panel_height) == (78, 90)
    with film.renderer() as renderer:
        assert len(renderer.renderers) == 2  # one per panel
        first = film.frame(renderer, 0)
        last = film.frame(renderer, film.n_frames - 1)
    assert first.shape == (H, W, 3) and first.dtype == np.uint8
    left, sep, right = first[:, :78], first[:, 78:82], first[:, 82:]
    assert (sep == [255, 0, 0]).all()
    assert right.shape == left.shape
    assert (left != right).any(axis=2).mean() > 0.05  # another capture and another colormap
    assert (first != last).any(axis=2).mean() > 0.01


# ------------------------------------------------------------------------------------------------- CLI




@pytest.mark.render
def test_title_card_is_drawn_once_across_the_panels(tmp_path):
    """A card's text is centred on the whole frame, not repeated (and cut) in every panel."""
    from llstudio.pipeline import OutputSettings, capture_scene, make_film

    path = tmp_path / "cards.toml"
    path.write_text(PANELS_TOML.replace("[timeline]\n", '[timeline]\ntitle_card = { text = "HELLO", seconds = 1.0, '
                                        'fade = 0.0, dissolve = 0.0 }\n'))
    scene = load_scene(path)
    film = make_film(capture_scene(scene, device="cpu"), OutputSettings(320, 90, 10))
    with film.renderer() as r:
        img = film.frame(r, 2).astype(int)
    bright = (img.min(axis=2) > 200)  # white text on a dark background
    cols = np.nonzero(bright.any(axis=0))[0]
    assert cols.size > 0
    # One block of text around the centre of the frame (a repeated card would put text around x = 80 and 240).
    assert cols.min() > 100 and cols.max() < 220
