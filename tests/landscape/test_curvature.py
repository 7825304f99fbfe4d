"""Curvature maps and Hessian directions, checked against the dense float64 Hessian of tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_scene
from llstudio.landscape.curvature import (HessianOperator, convexity_ratio, curvature_grid, extreme_eigenpairs,
                                hessian_directions, resample, snake_order)
from llstudio.landscape.directions import flatten
from llstudio.errors import SceneError
from llstudio.pipeline import capture_key, capture_scene
from llstudio.store.store import CaptureStore

CPU = torch.device("cpu")


def _tiny(seed=0, hidden=5, act=nn.Tanh, kind="cross_entropy"):
    """A 4-5-3 network (43 parameters) on 40 samples, in float64."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, hidden), act(), nn.Linear(hidden, 3)).double()
    x = torch.randn(40, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    if kind == "cross_entropy":
        def loss(out, t):
            return nn.functional.cross_entropy(out, t)
    else:
        def loss(out, t):
            return ((out - nn.functional.one_hot(t, 3).to(out.dtype)) ** 2).mean()
    weights = {k: v.detach().clone() for k, v in model.named_parameters()}
    return model, x, y, loss, weights


def _dense_hessian(model, x, y, loss, theta, op):
    """The reference: torch.autograd.functional.hessian of the plain loss at flat weights ``theta``."""
    def f(t):
        return loss(torch.func.functional_call(model, op.unflatten(t), (x,)), y)

    return torch.autograd.functional.hessian(f, theta.detach().clone(), vectorize=True)


@pytest.mark.parametrize("kind", ["cross_entropy", "mse"])
def test_hessian_vector_products_match_the_dense_hessian(kind):
    model, x, y, loss, w = _tiny(kind=kind)
    op = HessianOperator(model, x, y, loss, CPU, torch.float64)
    theta = op.flatten(w)
    H = _dense_hessian(model, x, y, loss, theta, op)
    v = torch.randn(op.n_params, dtype=torch.float64)
    np.testing.assert_allclose(op.hvp(theta, v).numpy(), (H @ v).numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(op.dense(theta).numpy(), H.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("act", [nn.Tanh, nn.Sigmoid])
def test_curvature_grid_matches_dense_eigenvalues(act):
    model, x, y, loss, w = _tiny(seed=1, act=act)
    op = HessianOperator(model, x, y, loss, CPU, torch.float64)
    g = torch.Generator().manual_seed(2)
    d1 = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in w.items()}
    d2 = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in w.items()}
    alphas, betas = np.linspace(-1.0, 1.0, 3), np.linspace(-0.5, 1.5, 4)
    res = curvature_grid(op, w, d1, d2, alphas, betas, tol=1e-12, max_iterations=2000)
    assert res["done"].all() and res["converged"].all()
    assert res["curv_min"].shape == (3, 4)
    for i in range(3):
        for j in range(4):
            theta = flatten(w) + alphas[i] * flatten(d1) + betas[j] * flatten(d2)
            ev = torch.linalg.eigvalsh(_dense_hessian(model, x, y, loss, theta, op)).numpy()
            np.testing.assert_allclose(res["curv_min"][i, j], ev[0], rtol=1e-7, atol=1e-10)
            np.testing.assert_allclose(res["curv_max"][i, j], ev[-1], rtol=1e-7, atol=1e-10)


def test_warm_start_from_the_neighbour_needs_fewer_products():
    model, x, y, loss, w = _tiny(seed=3, hidden=12)
    op = HessianOperator(model, x, y, loss, CPU, torch.float64)
    theta = op.flatten(w)
    lo, hi, ulo, uhi, ok = extreme_eigenpairs(op, theta, tol=1e-8, max_iterations=1000)
    assert ok
    before = op.products
    extreme_eigenpairs(op, theta + 1e-3 * torch.ones_like(theta), tol=1e-8, max_iterations=1000,
                       rng=np.random.default_rng(5))
    cold = op.products - before
    before = op.products
    extreme_eigenpairs(op, theta + 1e-3 * torch.ones_like(theta), tol=1e-8, max_iterations=1000, warm=ulo + uhi,
                       rng=np.random.default_rng(5))
    assert op.products - before < cold


def test_snake_order_visits_every_point_once_through_neighbours():
    order = snake_order(3, 4)
    assert sorted(order) == [(i, j) for i in range(3) for j in range(4)]
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(order, order[1:]))


def test_non_finite_points_are_nan_and_done():
    model, x, y, loss, w = _tiny()
    op = HessianOperator(model, x, y, loss, CPU, torch.float64)
    d1 = {k: torch.zeros_like(v) for k, v in w.items()}
    d1["0.weight"][0, 0] = float("inf")  # alpha = 0 stays finite (inf * 0 is NaN, so use a separate centre)
    bad = dict(w)
    bad["0.weight"] = w["0.weight"].clone()
    bad["0.weight"][0, 0] = float("nan")
    zero = {k: torch.zeros_like(v) for k, v in w.items()}
    res = curvature_grid(op, bad, zero, zero, np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert res["done"].all() and not res["converged"].any()
    assert np.isnan(res["curv_min"]).all() and np.isnan(res["curv_max"]).all()


def test_convexity_ratio():
    lo = np.array([-0.1, -2.0, 0.5, 1.0, np.nan])
    hi = np.array([1.0, 1.0, 2.0, 0.0, 1.0])
    r = convexity_ratio(lo, hi)
    np.testing.assert_allclose(r[:3], [0.1, 2.0, 0.25])
    assert np.isnan(r[3]) and np.isnan(r[4])


def test_resample_is_exact_on_bilinear_fields():
    ca, cb = np.linspace(-1, 1, 3), np.linspace(-2, 2, 5)
    A, B = np.meshgrid(ca, cb, indexing="ij")
    field = (1 + 2 * A + 3 * B + A * B)[None]
    a, b = np.linspace(-1, 1, 7), np.linspace(-2, 2, 9)
    A2, B2 = np.meshgrid(a, b, indexing="ij")
    np.testing.assert_allclose(resample(field, ca, cb, a, b)[0], 1 + 2 * A2 + 3 * B2 + A2 * B2, atol=1e-12)


@pytest.mark.parametrize("which", ["algebraic", "magnitude"])
def test_hessian_directions_match_dense_eigenvectors(which):
    model, x, y, loss, w = _tiny(seed=4, hidden=6)
    op = HessianOperator(model, x, y, loss, CPU, torch.float64)
    theta = op.flatten(w)
    ev, vecs = torch.linalg.eigh(_dense_hessian(model, x, y, loss, theta, op))
    ev, vecs = ev.numpy(), vecs.numpy()
    order = np.argsort(-(ev if which == "algebraic" else np.abs(ev)))[:2]
    d1, d2, vals = hessian_directions(op, w, which)
    np.testing.assert_allclose(vals, ev[order], rtol=1e-8)
    u1, u2 = flatten(d1).numpy(), flatten(d2).numpy()
    for u, m in ((u1, order[0]), (u2, order[1])):
        np.testing.assert_allclose(abs(float(u @ vecs[:, m])), 1.0, atol=1e-8)  # equal up to sign
        assert u[np.argmax(np.abs(u))] > 0  # the sign convention that makes films reproducible
    np.testing.assert_allclose([u1 @ u1, u2 @ u2, u1 @ u2], [1.0, 1.0, 0.0], atol=1e-12)
    assert set(d1) == set(w) and all(d1[k].shape == w[k].shape for k in w)


# ------------------------------------------------------------------------------------------------ scene


def test_scene_curvature_table_and_checks(tmp_path):
    s = make_scene(capture={"curvature": {}})
    assert s.capture.curvature_on and s.capture.curvature.shape == (15, 15)
    assert not make_scene().capture.curvature_on
    assert not make_scene(capture={"curvature": {"enabled": False}}).capture.curvature_on
    assert make_scene(capture={"curvature": {"resolution": [3, 4]}}).capture.curvature.shape == (3, 4)
    cases = [
        ({"capture": {"curvature": {"resolution": 1}}}, "capture.curvature.resolution"),
        ({"capture": {"curvature": {"tolerance": 0.0}}}, "capture.curvature.tolerance"),
        ({"capture": {"curvature": {"max_iter": 3}}}, "capture.curvature.max_iter"),
        ({"look": {"color_by": "convexity"}}, "look.color_by"),
        ({"look": {"convexity_colormap": "nope"}}, "look.convexity_colormap"),
        ({"directions": {"kind": "hessian", "hessian_step": 5}}, "directions.hessian_step"),
        ({"directions": {"hessian_which": "largest"}}, "directions.hessian_which"),
    ]
    for overrides, path in cases:
        with pytest.raises(SceneError) as exc:
            make_scene(**overrides)
        assert path in str(exc.value), (path, str(exc.value))
    make_scene(directions={"kind": "hessian", "hessian_step": 4})  # a captured step


def test_capture_key_includes_curvature_settings_only_when_on():
    base = capture_key(make_scene(), "cpu")
    assert capture_key(make_scene(capture={"curvature": {"enabled": False}}), "cpu") == base
    on = capture_key(make_scene(capture={"curvature": {}}), "cpu")
    assert on != base
    for change in ({"resolution": 7}, {"tolerance": 1e-5}, {"max_iterations": 5}):
        assert capture_key(make_scene(capture={"curvature": change}), "cpu") != on
    # What the film looks like is not part of the key.
    assert capture_key(make_scene(capture={"curvature": {}}, look={"color_by": "convexity"}), "cpu") == on


# ------------------------------------------------------------------------------------------------ pipeline


def _dense_extremes(capture, k, i, j):
    """Reference min/max eigenvalue at curvature grid point (i, j) of captured step index k (follow frame)."""
    from llstudio.train.models import loss_fn

    data = capture.data
    model = capture.model(k).double()
    crit = loss_fn(capture.scene.training.loss, data.n_classes)
    op = HessianOperator(model, torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval), crit, CPU, torch.float64)
    d1, d2 = capture.directions
    theta = (op.flatten(capture.centers[k]) + capture.curvature_alphas[i] * op.flatten(d1)
             + capture.curvature_betas[j] * op.flatten(d2))
    x = torch.as_tensor(data.x_eval, dtype=torch.float64)
    ev = torch.linalg.eigvalsh(_dense_hessian(model, x, torch.as_tensor(data.y_eval), crit, theta, op))
    return float(ev[0]), float(ev[-1])


# 64 inputs, 2 hidden units, 10 classes: 160 parameters; 3 captured steps on a 3x2 curvature grid.
CURV_SCENE = dict(capture={"curvature": {"resolution": [3, 2], "tolerance": 1e-10, "max_iterations": 2000},
                           "dtype": "float64", "every": 6},
                  model={"kind": "mlp", "hidden": [2], "activation": "tanh"}, data={"eval_size": 32},
                  grid={"resolution": 3})


@pytest.mark.slow
def test_capture_curvature_matches_dense_and_round_trips(tmp_path):
    scene = make_scene(tmp_path / "c.toml", **CURV_SCENE)
    store = CaptureStore(tmp_path / "store")
    cap = capture_scene(scene, device=CPU, store=store)
    assert cap.curv_min.shape == cap.curv_max.shape == (3, 3, 2)
    np.testing.assert_allclose(cap.curvature_alphas, np.linspace(-1, 1, 3))
    np.testing.assert_allclose(cap.curvature_betas, [-1.0, 1.0])
    for k, i, j in ((0, 0, 0), (1, 1, 1), (2, 2, 0)):
        lo, hi = _dense_extremes(cap, k, i, j)
        np.testing.assert_allclose([cap.curv_min[k, i, j], cap.curv_max[k, i, j]], [lo, hi], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(cap.convexity, np.abs(cap.curv_min / cap.curv_max))
    # A second run reads everything back unchanged.
    again = capture_scene(scene, device=CPU, store=store)
    np.testing.assert_array_equal(again.curv_min, cap.curv_min)
    np.testing.assert_array_equal(again.curv_max, cap.curv_max)


@pytest.mark.slow
def test_curvature_resumes_a_partial_map(tmp_path):
    scene = make_scene(tmp_path / "c.toml", **CURV_SCENE)
    store = CaptureStore(tmp_path / "store")
    cap = capture_scene(scene, device=CPU, store=store)
    cdir = store.open(cap.key)
    step = int(cap.steps[1])
    # As a kill after the first row leaves it: the first row done (marked with values no solver would give, to
    # see that they are kept), the rest not.
    z = cdir.load_curvature(step)
    z["done"][1:] = False
    z["curv_min"][1:] = np.nan
    z["curv_max"][1:] = np.nan
    z["curv_min"][0] = -123.0
    cdir.save_curvature(step, z)
    assert not cdir.has_curvature(step)
    (cdir.curvature_path(int(cap.steps[2]))).unlink()
    again = capture_scene(scene, device=CPU, store=store)
    np.testing.assert_array_equal(again.curv_min[1, 0], [-123.0, -123.0])
    np.testing.assert_allclose(again.curv_min[1, 1:], cap.curv_min[1, 1:], rtol=1e-8)
    np.testing.assert_allclose(again.curv_max, cap.curv_max, rtol=1e-8)
    np.testing.assert_allclose(again.curv_min[2], cap.curv_min[2], rtol=1e-8)
    assert cdir.has_curvature(step)


@pytest.mark.parametrize("frame", ["follow", "fixed"])
def test_hessian_directions_in_both_frames(tmp_path, frame):
    scene = make_scene(tmp_path / "h.toml", directions={"kind": "hessian", "frame": frame, "hessian_step": 4},
                       capture={"dtype": "float64"}, model={"kind": "mlp", "hidden": [2], "activation": "tanh"},
                       data={"eval_size": 32})
    store = CaptureStore(tmp_path / "store")
    cap = capture_scene(scene, device=CPU, store=store)
    k = list(cap.steps).index(4)
    from llstudio.train.models import loss_fn

    data = cap.data
    model = cap.model(k).double()
    crit = loss_fn("cross_entropy", data.n_classes)
    op = HessianOperator(model, torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval), crit, CPU,
                         torch.float64)
    x = torch.as_tensor(data.x_eval, dtype=torch.float64)
    ev, vecs = torch.linalg.eigh(_dense_hessian(model, x, torch.as_tensor(data.y_eval), crit,
                                                op.flatten(cap.centers[k]), op))
    np.testing.assert_allclose(cap.hessian_eigenvalues, ev.numpy()[::-1][:2], rtol=1e-7)
    d1, d2 = (flatten(d).numpy() for d in cap.directions)
    assert abs(abs(d1 @ vecs[:, -1].numpy()) - 1) < 1e-7 and abs(abs(d2 @ vecs[:, -2].numpy()) - 1) < 1e-7
    manifest = json.loads((cap.path / "manifest.json").read_text())
    np.testing.assert_allclose(manifest["hessian_eigenvalues"], cap.hessian_eigenvalues)
    assert manifest["hessian_step"] == 4
    if frame == "fixed":
        assert np.any(cap.plane_path != 0)  # the path projected onto the plane of the final weights
    else:
        assert np.all(cap.plane_path == 0)
    assert np.all(np.isfinite(cap.loss))
    # From the cache: same directions and eigenvalues.
    again = capture_scene(scene, device=CPU, store=store)
    np.testing.assert_array_equal(again.hessian_eigenvalues, cap.hessian_eigenvalues)


def test_fixed_frame_shares_one_curvature_map(tmp_path):
    scene = make_scene(tmp_path / "f.toml", directions={"frame": "fixed"},
                       capture={"curvature": {"resolution": 2}, "every": 6}, data={"eval_size": 32},
                       model={"kind": "mlp", "hidden": [2], "activation": "tanh"})
    cap = capture_scene(scene, device=CPU, store=CaptureStore(tmp_path / "store"))
    assert np.all(np.isfinite(cap.curv_max))
    for k in range(1, len(cap.steps)):
        np.testing.assert_array_equal(cap.curv_max[k], cap.curv_max[0])


# ------------------------------------------------------------------------------------------------ film, export


def test_timeline_interpolates_colours_like_the_loss():
    from llstudio.config.scene import ScalingSpec, TimelineSpec
    from llstudio.film.timeline import Keyframes, Timeline

    loss = np.ones((3, 2, 2))
    colors = np.stack([np.full((2, 2), v) for v in (0.0, 0.5, 1.0)])
    tl = Timeline(Keyframes(np.array([0, 1, 2]), loss, np.ones(3), colors=colors), TimelineSpec(interpolation="linear", hold_start=0,
                  hold_end=0, seconds_per_step=1.0), ScalingSpec(), fps=4)
    assert tl.frame(0).colors[0, 0] == 0.0
    np.testing.assert_allclose(tl.frame(2).colors, 0.25)
    np.testing.assert_allclose(tl.frame(tl.frame_of_step(1)).colors, 0.5)
    plain = Timeline(Keyframes(np.array([0, 1, 2]), loss, np.ones(3)), TimelineSpec(), ScalingSpec(), fps=4)
    assert plain.frame(0).colors is None


@pytest.fixture(scope="module")
def curvature_capture(tmp_path_factory):
    root = tmp_path_factory.mktemp("curv-store")
    scene = make_scene(root / "curv.toml", capture={"curvature": {"resolution": 3}, "every": 6},
                       model={"kind": "mlp", "hidden": [2], "activation": "tanh"}, data={"eval_size": 32},
                       look={"color_by": "convexity", "contours": 0, "marker": False, "overlay": False})
    return capture_scene(scene, device=CPU, store=CaptureStore(root))


def test_film_colours_the_surface_by_convexity(curvature_capture):
    from llstudio.pipeline import make_film, OutputSettings

    film = make_film(curvature_capture, OutputSettings(64, 48, 10))  # captured steps fall on whole frames
    state = film.timeline.frame(film.timeline.frame_of_step(1))
    assert state.colors.shape == curvature_capture.loss.shape[1:]
    ratio = np.clip(curvature_capture.convexity[1], 0, 1)
    # The loss grid (5x5) holds the curvature grid (3x3) at every other point: there the colours are exact.
    np.testing.assert_allclose(state.colors[::2, ::2], ratio, rtol=1e-9)


@pytest.mark.render
def test_convexity_colouring_changes_the_picture(curvature_capture, tmp_path):
    import dataclasses

    from llstudio.pipeline import make_film, OutputSettings
    from llstudio.renderer.plotter import SurfaceRenderer

    film = make_film(curvature_capture, OutputSettings(96, 64, 4))
    state = film.timeline.frame(0)
    pose = film.camera.pose(0)
    look = curvature_capture.scene.look
    with SurfaceRenderer(curvature_capture.alphas, curvature_capture.betas, look, 96, 64, 0.5) as r:
        a = r.render(state, pose)
        b = r.render(dataclasses.replace(state, colors=np.zeros_like(state.colors)), pose)
        c = r.render(dataclasses.replace(state, colors=np.ones_like(state.colors)), pose)
    assert a.shape == (64, 96, 3)
    # coolwarm: 0 is blue, 1 is red.
    assert b[..., 2].astype(int).sum() > b[..., 0].astype(int).sum()
    assert c[..., 0].astype(int).sum() > c[..., 2].astype(int).sum()


def test_exports_carry_the_curvature(curvature_capture, tmp_path):
    from llstudio.output.export import export

    cap = curvature_capture
    (path,) = export(cap, "npz", tmp_path / "npz")
    with np.load(path) as z:
        np.testing.assert_array_equal(z["curv_min"], cap.curv_min)
        np.testing.assert_array_equal(z["curv_max"], cap.curv_max)
        np.testing.assert_array_equal(z["convexity"], cap.convexity)
        np.testing.assert_array_equal(z["curvature_alphas"], cap.curvature_alphas)
    files = export(cap, "vts", tmp_path / "vts")
    curv = [p for p in files if "_curvature_step_" in p.name]
    assert len(curv) == len(cap.steps) and (tmp_path / "vts" / "curv_curvature.pvd") in files
    import pyvista as pv

    g = pv.read(curv[1])
    X, _ = np.meshgrid(cap.curvature_alphas, cap.curvature_betas, indexing="ij")
    np.testing.assert_allclose(g.points[:, 0], X.ravel(order="F"))
    np.testing.assert_allclose(g.point_data["curv_max"], cap.curv_max[1].ravel(order="F"))
    h5py = pytest.importorskip("h5py")
    files = export(cap, "h5", tmp_path / "h5")
    with h5py.File(files[2], "r") as f:
        np.testing.assert_array_equal(f["curv_min"][()], cap.curv_min[1].T)
        np.testing.assert_array_equal(f["curv_xcoordinates"][()], cap.curvature_alphas)


# ------------------------------------------------------------------------------------------------ edge cases


def test_diverging_run_gets_nan_curvature_and_a_clear_error_for_hessian_directions(tmp_path):
    from llstudio.pipeline import make_film, OutputSettings

    div = dict(training={"lr": 1e3, "loss": "mse"}, data={"eval_size": 32},
               model={"kind": "mlp", "hidden": [2], "activation": "tanh"})
    scene = make_scene(tmp_path / "div.toml", capture={"curvature": {"resolution": 2}},
                       directions={"normalize_to": "initial"}, look={"color_by": "convexity"}, **div)
    cap = capture_scene(scene, device=CPU, store=CaptureStore(tmp_path / "s1"))
    assert np.all(np.isfinite(cap.curv_max[0]))  # step 0 is fine
    assert np.all(np.isnan(cap.curv_max[-1]))  # NaN, not a sentinel, where the weights blew up
    with pytest.warns(RuntimeWarning):
        film = make_film(cap, OutputSettings(64, 48, 10))
    assert np.all(np.isnan(film.timeline.frame(film.n_frames - 1).colors))
    bad = make_scene(tmp_path / "div.toml", directions={"kind": "hessian"}, **div)
    with pytest.raises(SceneError, match="directions.hessian_step"):
        capture_scene(bad, device=CPU, store=CaptureStore(tmp_path / "s2"))
    ok = make_scene(tmp_path / "div.toml", directions={"kind": "hessian", "hessian_step": 0}, **div)
    assert np.all(np.isfinite(capture_scene(ok, device=CPU, store=CaptureStore(tmp_path / "s3")).loss[0]))


def test_batch_landscapes_get_the_curvature_of_their_batch(tmp_path):
    from llstudio.train.models import loss_fn

    scene = make_scene(tmp_path / "b.toml", capture={"curvature": {"resolution": 2, "tolerance": 1e-10},
                                                     "data": "batch", "dtype": "float64", "every": 12},
                       model={"kind": "mlp", "hidden": [2], "activation": "tanh"}, data={"eval_size": 32})
    store = CaptureStore(tmp_path / "s")
    cap = capture_scene(scene, device=CPU, store=store)
    data = cap.data
    batches = store.open(cap.key).load_arrays("trajectory")["batches"]
    k = 0  # step 0: the batch of the first update
    xb = torch.as_tensor(data.x_train[batches[0]], dtype=torch.float64)
    yb = torch.as_tensor(data.y_train[batches[0]])
    model = cap.model(k).double()
    crit = loss_fn("cross_entropy", data.n_classes)
    op = HessianOperator(model, xb, yb, crit, CPU, torch.float64)
    d1, d2 = cap.directions
    theta = (op.flatten(cap.centers[k]) + cap.curvature_alphas[1] * op.flatten(d1)
             + cap.curvature_betas[0] * op.flatten(d2))
    ev = torch.linalg.eigvalsh(_dense_hessian(model, xb, yb, crit, theta, op)).numpy()
    np.testing.assert_allclose([cap.curv_min[k, 1, 0], cap.curv_max[k, 1, 0]], [ev[0], ev[-1]], rtol=1e-7,
                               atol=1e-10)


def test_estimate_counts_curvature_points():
    from llstudio.pipeline import estimate

    est = estimate(make_scene(capture={"curvature": {"resolution": [3, 4]}}), "l")
    assert est["curvature_points"] == 4 * 3 * 4  # 4 captured steps
    assert "curvature_points" not in estimate(make_scene(), "l")


def test_ply_is_coloured_by_convexity_as_in_the_film(curvature_capture, tmp_path):
    import matplotlib
    import pyvista as pv

    from llstudio.output.export import export
    from llstudio.film.film import surface_colors as _surface_colors

    files = export(curvature_capture, "ply", tmp_path)
    mesh = pv.read(files[1])
    colours = _surface_colors(curvature_capture)[1]
    cmap = matplotlib.colormaps["coolwarm"]
    expected = {tuple(np.rint(np.asarray(cmap(v)[:3]) * 255).astype(int)) for v in colours.ravel()}
    got = {tuple(int(c) for c in row) for row in np.asarray(mesh.point_data["RGB"])}
    assert got == expected


def tiny_bn_model(input_shape, n_classes):
    """A custom model with BatchNorm, small enough for a dense Hessian (241 parameters)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), 3), nn.BatchNorm1d(3), nn.Tanh(),
                         nn.Linear(3, n_classes))


def test_curvature_of_a_batchnorm_model_uses_each_steps_running_statistics(tmp_path):
    """Eval-mode curvature at step k must use step k's BatchNorm running statistics (as the loss capture does),
    not the initial model's: checked against the dense Hessian of the model as it was at that step."""
    scene = make_scene(tmp_path / "bn.toml", **{**CURV_SCENE, "model": {"kind": "custom",
                                                                       "factory": "test_curvature:tiny_bn_model"}})
    cap = capture_scene(scene, device=CPU, store=CaptureStore(tmp_path / "store"))
    assert cap.center_buffers[-1], "the model has BatchNorm statistics"
    for k, i, j in ((1, 1, 1), (2, 0, 1)):
        lo, hi = _dense_extremes(cap, k, i, j)
        np.testing.assert_allclose([cap.curv_min[k, i, j], cap.curv_max[k, i, j]], [lo, hi], rtol=1e-7, atol=1e-10)


def _tiny_bn(seed=3):
    """Linear(4, 3) → BatchNorm1d(3) → Tanh → Linear(3, 3) on 40 samples, float64, with some running statistics."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 3)).double()
    model[1].running_mean.copy_(torch.randn(3, dtype=torch.float64))
    model[1].running_var.copy_(torch.rand(3, dtype=torch.float64) + 0.5)
    x = torch.randn(40, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    bn_x = torch.randn(25, 4, dtype=torch.float64) * 1.5 + 0.3
    weights = {k: v.detach().clone() for k, v in model.named_parameters()}
    return model, x, y, bn_x, weights


def _bn_reference_loss(t, op, x, y, mode, running, bn_x):
    """The network written out by hand: BatchNorm normalising with running statistics, with the batch's own
    (biased variance), or with the mean and unbiased variance of the first layer's outputs on ``bn_x``."""
    p = op.unflatten(t)

    def first(inp):
        return inp @ p["0.weight"].T + p["0.bias"]

    h = first(x)
    if mode == "eval":
        mean, var = running
    elif mode == "train":
        mean, var = h.mean(0), h.var(0, unbiased=False)
    else:
        hb = first(bn_x)
        mean, var = hb.mean(0), hb.var(0, unbiased=True)
    h = (h - mean) / torch.sqrt(var + 1e-5) * p["1.weight"] + p["1.bias"]
    out = torch.tanh(h) @ p["3.weight"].T + p["3.bias"]
    return nn.functional.cross_entropy(out, y)


@pytest.mark.parametrize("mode", ["eval", "train", "recompute_bn"])
def test_hessian_follows_the_capture_mode_of_batchnorm(mode):
    """The curvature is that of the function the landscape shows: in 'train' and 'recompute_bn' the statistics
    depend on the weights, and the Hessian differentiates through them."""
    model, x, y, bn_x, w = _tiny_bn()
    running = (model[1].running_mean.clone(), model[1].running_var.clone())
    op = HessianOperator(model, x, y, nn.functional.cross_entropy, CPU, torch.float64, mode=mode,
                         bn_x=bn_x if mode == "recompute_bn" else None)
    theta = op.flatten(w)
    np.testing.assert_allclose(float(op.loss_at(theta)),
                               float(_bn_reference_loss(theta, op, x, y, mode, running, bn_x)), rtol=1e-12)
    H = torch.autograd.functional.hessian(lambda t: _bn_reference_loss(t, op, x, y, mode, running, bn_x),
                                          theta.clone())
    np.testing.assert_allclose(op.dense(theta).numpy(), H.numpy(), rtol=1e-8, atol=1e-11)


@pytest.mark.slow
def test_train_mode_curvature_differs_from_eval_and_changes_the_cache_key(tmp_path):
    model = {"kind": "custom", "factory": "test_curvature:tiny_bn_model"}
    keys, maps = {}, {}
    for mode in ("eval", "train"):
        scene = make_scene(tmp_path / f"{mode}.toml", **{**CURV_SCENE, "model": model,
                                                          "capture": {**CURV_SCENE["capture"], "mode": mode}})
        keys[mode] = capture_key(scene, "cpu")
        cap = capture_scene(scene, device=CPU, store=CaptureStore(tmp_path / "store"))
        maps[mode] = cap.curv_max[1]
    assert keys["eval"] != keys["train"]
    assert np.isfinite(maps["train"]).all()
    assert not np.allclose(maps["eval"], maps["train"])
