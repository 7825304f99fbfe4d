"""Zoom films (grid.zoom): every captured step on its own range, the film's scale between them, paths cut at the
square's edge, and the zoom in the cache key, the exports and the scene checks."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from conftest import make_scene
from llstudio.errors import SceneError
from llstudio.train.models import loss_fn
from llstudio.pipeline import make_film, OutputSettings, capture_key, capture_scene, zoom_scales
from llstudio.renderer.plotter import clip_polyline, clip_segment, range_label

CPU = torch.device("cpu")
ZOOM = 0.05


# ------------------------------------------------------------------------------------------------ scales


def test_scales_are_geometric_by_step_and_exact_at_the_ends():
    steps = [0, 4, 8, 20]
    s = zoom_scales(steps, 0.01)
    assert s[0] == 1.0 and s[-1] == 0.01
    # Geometric in the step number: log scale is linear in it.
    np.testing.assert_allclose(np.log(s), np.log(0.01) * np.array(steps) / 20, rtol=1e-12)
    assert np.all(np.diff(s) < 0)
    assert zoom_scales(steps, 4.0)[-1] == 4.0 and np.all(np.diff(zoom_scales(steps, 4.0)) > 0)
    np.testing.assert_array_equal(zoom_scales(steps, 1.0), np.ones(4))
    np.testing.assert_array_equal(zoom_scales([7], 0.01), [1.0])


@pytest.mark.parametrize("value, why", [(0.0, "greater than 0"), (-1.0, "greater than 0"),
                                        (float("inf"), "finite"), (float("nan"), "finite")])
def test_zoom_must_be_positive_and_finite(value, why):
    with pytest.raises(SceneError) as exc:
        make_scene("z.toml", grid={"zoom": value})
    assert [p for p, _ in exc.value.problems] == ["grid.zoom"]
    assert why in exc.value.problems[0][1]


def test_zoom_changes_the_cache_key_and_no_zoom_keeps_the_old_one(tmp_path, monkeypatch):
    base = capture_key(make_scene(tmp_path / "a.toml"), "cpu")
    assert capture_key(make_scene(tmp_path / "a.toml", grid={"zoom": 1.0}), "cpu") == base
    keys = {capture_key(make_scene(tmp_path / "a.toml", grid={"zoom": z}), "cpu") for z in (0.5, 0.25, 2.0)}
    assert len(keys) == 3 and base not in keys
    # Without zoom the key is hashed from what it was hashed from before grid.zoom existed.
    import llstudio.pipeline

    seen = []
    monkeypatch.setattr(llstudio.store.keys, "canonical_hash", lambda ident: seen.append(ident) or "0" * 64)
    capture_key(make_scene(tmp_path / "a.toml"), "cpu")
    assert "zoom" not in seen[0]["grid"] and set(seen[0]["grid"]) == {"resolution", "range", "y_range", "dimensions"}


# ------------------------------------------------------------------------------------------------ capture


def _brute_loss(cap, center: dict, a: float, b: float) -> float:
    """Loss at ``center + a*d1 + b*d2``: a fresh float64 copy of the model, weights set by hand, one forward pass."""
    x, y = cap.eval_data
    model = copy.deepcopy(cap.model(-1)).double()
    d1, d2 = cap.directions
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(center[n].double() + a * d1[n].double() + b * d2[n].double())
        out = model(torch.as_tensor(x, dtype=torch.float64))
    return float(loss_fn(cap.scene.training.loss, int(cap.data.n_classes))(out, torch.as_tensor(y)))


@pytest.mark.parametrize("frame, dims", [("follow", 2), ("fixed", 2), ("follow", 1)])
def test_zoomed_steps_equal_brute_force_on_their_own_range(tmp_path, frame, dims):
    grid = {"resolution": 4, "range": [-1.0, 1.0], "zoom": ZOOM, "dimensions": dims}
    scene = make_scene(tmp_path / "z.toml", directions={"frame": frame}, grid=grid, capture={"dtype": "float64"})
    cap = capture_scene(scene, device=CPU)
    np.testing.assert_array_equal(cap.scales, zoom_scales(cap.steps, ZOOM))
    assert cap.scales[-1] == ZOOM
    # The axes stay the first step's; each step is captured on them times its scale.
    np.testing.assert_array_equal(cap.alphas, np.linspace(-1.0, 1.0, 4))
    manifest = json.loads((cap.path / "manifest.json").read_text())
    np.testing.assert_allclose(manifest["scales"], cap.scales, rtol=1e-15)
    for k in (1, len(cap.steps) - 1):
        center = cap.centers[-1] if frame == "fixed" else cap.centers[k]
        s = cap.scales[k]
        for i, j in ((0, 0), (3, len(cap.betas) - 1), (1, 0)):
            want = _brute_loss(cap, center, float(cap.alphas[i]) * s, float(cap.betas[j]) * s)
            assert cap.loss[k, i, j] == pytest.approx(want, rel=1e-5)
    if frame == "fixed":
        # No longer one landscape for every step: the range changes.
        assert not np.allclose(cap.loss[0], cap.loss[-1])
        # The projected path stays in unscaled (alpha, beta) units.
        plain = capture_scene(make_scene(tmp_path / "p.toml", directions={"frame": frame},
                                         grid={**grid, "zoom": 1.0}, capture={"dtype": "float64"}), device=CPU)
        np.testing.assert_allclose(cap.plane_path, plain.plane_path, rtol=1e-12)
        np.testing.assert_array_equal(plain.scales, np.ones(len(plain.steps)))


@pytest.mark.slow
def test_zoomed_curvature_maps_are_taken_on_the_scaled_grid(tmp_path):
    scene = make_scene(tmp_path / "c.toml", directions={"frame": "fixed"}, grid={"resolution": 3, "zoom": ZOOM},
                       capture={"curvature": {"resolution": 2, "tolerance": 1e-10, "max_iterations": 2000},
                                "dtype": "float64", "every": 6},
                       model={"kind": "mlp", "hidden": [2], "activation": "tanh"}, data={"eval_size": 32})
    cap = capture_scene(scene, device=CPU)
    from llstudio.landscape.curvature import HessianOperator

    data = cap.data
    op = HessianOperator(cap.model(-1).double(), torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval),
                         loss_fn(scene.training.loss, data.n_classes), CPU, torch.float64)
    d1, d2 = (op.flatten(d) for d in cap.directions)
    for k in (0, len(cap.steps) - 1):
        s = cap.scales[k]
        theta = op.flatten(cap.centers[-1]) + cap.curvature_alphas[1] * s * d1 + cap.curvature_betas[0] * s * d2
        ev = torch.linalg.eigvalsh(op.dense(theta)).numpy()
        np.testing.assert_allclose([cap.curv_min[k, 1, 0], cap.curv_max[k, 1, 0]], [ev[0], ev[-1]], rtol=1e-6,
                                   atol=1e-10)
    assert not np.allclose(cap.curv_max[0], cap.curv_max[-1])  # one map no longer serves every step


# ------------------------------------------------------------------------------------------------ timeline


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep", "cubic"])
def test_timeline_scale_is_exact_at_captured_frames_and_monotone_between(interpolation):
    from llstudio.config.scene import ScalingSpec, TimelineSpec
    from llstudio.film.timeline import Keyframes, Timeline

    steps = np.array([0, 10, 20, 50, 100])
    scales = zoom_scales(steps, 0.01)
    loss = np.random.default_rng(0).uniform(1.0, 2.0, (5, 4, 4))
    spec = TimelineSpec(seconds_per_step=0.5, hold_start=0.2, hold_end=0.2, interpolation=interpolation)
    tl = Timeline(Keyframes(steps, loss, loss[:, 0, 0], scales=scales), spec, ScalingSpec(), 20)
    for k in range(len(steps)):
        state = tl.frame(tl.frame_of_step(k))
        assert state.scale == scales[k]
        np.testing.assert_array_equal(state.values, tl.values[k])
    track = tl.scale_track()
    assert track[0] == 1.0 and track[-1] == 0.01
    assert np.all(np.diff(track) <= 0) and len(np.unique(track)) > 2 * len(steps)
    if interpolation == "linear":  # geometric: halfway between two steps is their geometric mean
        mid = tl.scale_at(1.5)
        assert mid == pytest.approx(np.sqrt(scales[1] * scales[2]), rel=1e-12)
    # Without scales every frame has scale 1.
    assert Timeline(Keyframes(steps, loss, loss[:, 0, 0]), spec, ScalingSpec(), 20).frame(7).scale == 1.0


def test_film_frames_carry_the_capture_scales(tmp_path):
    scene = make_scene(tmp_path / "z.toml", grid={"resolution": 3, "zoom": ZOOM})
    cap = capture_scene(scene, device=CPU)
    film = make_film(cap, OutputSettings(160, 120, 10))
    for k in range(len(cap.steps)):
        assert film.timeline.frame(film.timeline.frame_of_step(k)).scale == cap.scales[k]


# ------------------------------------------------------------------------------------------------ export


def test_exports_carry_the_scales(tmp_path):
    import pyvista as pv

    from llstudio.output.export import export

    scene = make_scene(tmp_path / "z.toml", grid={"resolution": 3, "zoom": ZOOM})
    cap = capture_scene(scene, device=CPU)
    (path,) = export(cap, "npz", tmp_path / "npz")
    with np.load(path) as z:
        np.testing.assert_array_equal(z["scales"], cap.scales)
        np.testing.assert_array_equal(z["alphas"], cap.alphas)
    files = export(cap, "vts", tmp_path / "vts")
    last = pv.read(files[len(cap.steps) - 1])
    np.testing.assert_allclose(last.points[:, 0].max(), cap.alphas[-1] * ZOOM, rtol=1e-12)
    np.testing.assert_allclose(last.field_data["scale"], [ZOOM])
    first = pv.read(files[0])
    np.testing.assert_allclose(first.points[:, 0].max(), cap.alphas[-1], rtol=1e-12)
    plys = export(cap, "ply", tmp_path / "ply")
    np.testing.assert_allclose(np.abs(pv.read(plys[-1]).points[:, :2]).max(), ZOOM, rtol=1e-6)


# ------------------------------------------------------------------------------------------------ renderer


def test_clip_polyline_cuts_at_the_edge_and_splits_what_leaves_and_comes_back():
    xy = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 0.5], [0.0, 0.5], [-0.5, 0.5]])
    pieces = clip_polyline(xy, 1.0, values=np.arange(5.0))
    assert len(pieces) == 2
    (p1, v1), (p2, v2) = pieces
    np.testing.assert_allclose(p1, [[0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(v1, [0.0, 0.5])
    np.testing.assert_allclose(p2, [[1.0, 0.5], [0.0, 0.5], [-0.5, 0.5]])
    np.testing.assert_allclose(v2, [2.5, 3.0, 4.0])
    # Inside: one piece, the very same points.
    inner = np.array([[0.0, 0.0], [0.3, 0.1], [0.9, -0.9]])
    pieces = clip_polyline(inner, 1.0)
    assert len(pieces) == 1 and pieces[0][1] is None
    np.testing.assert_array_equal(pieces[0][0], inner)
    assert clip_polyline(np.array([[2.0, 2.0], [3.0, 2.0]]), 1.0) == []
    assert clip_segment([0.0, 0.0], [4.0, 0.0], 1.0) == (0.0, 0.25)


def test_range_label():
    wide = np.linspace(-25.0, 25.0, 5)
    assert range_label(wide, wide, 0.01) == "range ±0.25"
    assert range_label(wide, np.array([0.0]), 1.0) == "range ±25"
    assert range_label(np.linspace(-0.5, 1.5, 3), np.linspace(-1.0, 1.0, 3), 0.1) == "alpha [-0.05, 0.15]  beta ±0.1"


@pytest.mark.render
def test_renderer_hides_what_the_zoom_leaves_outside_the_square():
    """A flat, top-down contour map (the square at known pixels): a red trail, a blue marker and a green arrow
    that run past the zoomed grid show inside the square only; the info text gives the current range."""
    from llstudio.renderer.plotter import SurfaceRenderer
    from llstudio.config.scene import LookSpec
    from llstudio.film.timeline import FrameState

    w, h = 160, 120
    axis = np.linspace(-1.0, 1.0, 9)
    values = np.zeros((9, 9)) + np.linspace(0, 1, 9)[None, :]
    look = LookSpec(anti_aliasing="none", view="contours", contours=0, colormap="gray", trail_color="#ff0000",
                    marker_color="#0000ff", arrow_color="#00ff00", background="#000000")
    trail = np.column_stack([np.linspace(0.0, 0.5, 30), np.zeros(30)])

    def draw(r, scale, marker):
        state = FrameState(0, values, 0.0, 1.0, 0.0, 1.0, marker=marker, trail=trail,
                           arrow=((0.0, -0.05), (0.5, -0.05)), scale=scale)
        return r.render(state, None).astype(int)

    def colour(img, c):
        return (np.abs(img - np.array(c)).sum(axis=2) < 120)

    with SurfaceRenderer(axis, axis, look, w, h, z_scale=0.5, show_range=True) as r:
        # Orthographic, parallel scale 1.2 (half the height): the square [-1, 1]² spans columns 30 … 130.
        zoomed = draw(r, 0.1, (0.15, 0.0))  # the grid is ±0.1: trail, marker and arrow run out of it
        assert r.info_text.endswith("range ±0.1")
        plain = draw(r, 1.0, (0.15, 0.0))  # ±1: all of them inside
        assert r.info_text.endswith("range ±1")
    outside = np.ones((h, w), bool)
    outside[:, 27:134] = False
    for c in ((255, 0, 0), (0, 255, 0)):
        assert colour(zoomed, c).any()  # still drawn inside the square, cut at its edge
        assert not colour(zoomed, c)[outside].any()
        assert colour(plain, c).sum() > 10
    assert not colour(zoomed, (0, 0, 255)).any()  # the marker at alpha = 0.15 is off the ±0.1 grid: hidden
    assert colour(plain, (0, 0, 255)).sum() > 5
