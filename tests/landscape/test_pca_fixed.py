"""PCA directions, the fixed frame of reference and the projected training path."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import make_scene
from llstudio.landscape.directions import flatten, pca_directions, project
from llstudio.errors import SceneError
from llstudio.train.models import loss_fn
from llstudio.pipeline import auto_range, capture_scene

CPU = torch.device("cpu")


def _weights(n_steps=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = {"0.weight": torch.randn(4, 3, generator=g, dtype=torch.float64),
            "0.bias": torch.randn(4, generator=g, dtype=torch.float64),
            "2.weight": torch.randn(2, 4, generator=g, dtype=torch.float64)}
    out = []
    for k in range(n_steps):
        out.append({n: v + 0.3 * k * torch.randn(v.shape, generator=g, dtype=torch.float64) for n, v in base.items()})
    return out


def test_pca_directions_are_orthonormal_and_match_sklearn():
    from sklearn.decomposition import PCA

    ws = _weights()
    d1, d2, ratio = pca_directions(ws, ws[-1], include_biases=False)
    a, b = flatten(d1), flatten(d2)
    assert float(a.norm()) == pytest.approx(1.0, abs=1e-9)
    assert float(b.norm()) == pytest.approx(1.0, abs=1e-9)
    assert float(a @ b) == pytest.approx(0.0, abs=1e-9)
    # Biases are left out by default: their entries are zero.
    assert torch.count_nonzero(d1["0.bias"]) == 0 and torch.count_nonzero(d2["0.bias"]) == 0
    # Same explained variance as scikit-learn on the same difference matrix (weights only).
    keys = ["0.weight", "2.weight"]
    rows = np.stack([np.concatenate([(w[k] - ws[-1][k]).numpy().ravel() for k in keys]) for w in ws])
    ref = PCA(n_components=2).fit(rows)
    np.testing.assert_allclose(ratio, ref.explained_variance_ratio_, rtol=1e-9)
    comp = np.concatenate([d1[k].numpy().ravel() for k in keys])
    assert abs(abs(comp @ ref.components_[0]) - 1.0) < 1e-9


def test_pca_with_biases_includes_them():
    ws = _weights()
    d1, _, _ = pca_directions(ws, ws[-1], include_biases=True)
    assert torch.count_nonzero(d1["0.bias"]) > 0


def test_projection_recovers_in_plane_coordinates():
    ws = _weights()
    d1, d2, _ = pca_directions(ws, ws[-1])
    c = ws[-1]
    coords = np.array([[0.5, -1.0], [2.0, 0.25], [0.0, 0.0]])
    pts = [{k: c[k] + a * d1[k] + b * d2[k] for k in c} for a, b in coords]
    np.testing.assert_allclose(project(pts, c, d1, d2), coords, atol=1e-10)


def test_projection_is_least_squares_for_points_off_the_plane():
    ws = _weights()
    d1, d2, _ = pca_directions(ws, ws[-1])
    c = ws[0]
    got = project(ws, c, d1, d2)
    basis = np.stack([flatten(d1).numpy(), flatten(d2).numpy()], axis=1)
    for k, w in enumerate(ws):
        diff = (flatten(w) - flatten(c)).numpy()
        ref, *_ = np.linalg.lstsq(basis, diff, rcond=None)
        np.testing.assert_allclose(got[k], ref, atol=1e-10)


def test_auto_range_covers_values_and_centre():
    lo, hi = auto_range(np.array([2.0, 5.0]))
    assert lo < 0.0 < 2.0 < 5.0 < hi


@pytest.mark.parametrize("bad, path", [
    ({"grid": {"range": "auto"}}, "grid.range"),
    ({"directions": {"frame": "fixed", "center": 5}}, "directions.center"),
    ({"directions": {"kind": "pca"}, "capture": {"steps": [0, 12]}}, "directions.kind"),
])
def test_scene_cross_checks(bad, path):
    with pytest.raises(SceneError) as exc:
        make_scene("x.toml", **bad)
    assert [p for p, _ in exc.value.problems] == [path]


def _brute_loss(model, weights, x, y, kind, n_classes):
    m = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(weights[n])
        return float(loss_fn(kind, n_classes)(m(x), y))


@pytest.mark.parametrize("kind", ["pca", "random"])
def test_fixed_frame_capture_matches_brute_force(tmp_path, kind):
    scene = make_scene(tmp_path / "f.toml", directions={"kind": kind, "frame": "fixed", "center": "final"},
                       grid={"range": "auto", "resolution": 4}, capture={"every": 4, "dtype": "float64"})
    cap = capture_scene(scene, device=CPU)
    k_steps = len(cap.steps)
    assert cap.loss.shape == (k_steps, 4, 4)
    assert cap.frame == "fixed" and cap.plane_path.shape == (k_steps, 2)
    # One landscape for the whole film.
    for k in range(1, k_steps):
        np.testing.assert_array_equal(cap.loss[k], cap.loss[0])
    # The final weights are the centre: their projection is the origin; the range covers the whole path.
    np.testing.assert_allclose(cap.plane_path[-1], [0.0, 0.0], atol=1e-9)
    assert cap.alphas[0] < cap.plane_path[:, 0].min() and cap.plane_path[:, 0].max() < cap.alphas[-1]
    assert cap.betas[0] < cap.plane_path[:, 1].min() and cap.plane_path[:, 1].max() < cap.betas[-1]
    if kind == "pca":
        assert cap.explained_variance is not None and cap.explained_variance.sum() <= 1.0 + 1e-9
    x, y = (torch.as_tensor(a) for a in cap.eval_data)
    x = x.double()
    model = cap.model(-1).double()
    d1, d2 = cap.directions
    center = cap.centers[-1]
    for i in (0, 3):
        for j in (1, 2):
            w = {n: center[n] + cap.alphas[i] * d1[n] + cap.betas[j] * d2[n] for n in center}
            ref = _brute_loss(model, w, x, y, scene.training.loss, 10)
            assert cap.loss[0, i, j] == pytest.approx(ref, rel=1e-6)
    # center_loss is the loss at each step's own weights (off the plane in general).
    for k in (0, k_steps - 1):
        ref = _brute_loss(model, cap.centers[k], x, y, scene.training.loss, 10)
        assert cap.center_loss[k] == pytest.approx(ref, rel=1e-6)


def test_fixed_frame_timeline_moves_the_marker_along_the_path(tmp_path):
    from llstudio.film.timeline import Keyframes, Timeline

    scene = make_scene(tmp_path / "f.toml", directions={"kind": "pca", "frame": "fixed"}, grid={"range": "auto"})
    cap = capture_scene(scene, device=CPU)
    # 10 fps: hold_start (0.1 s) and seconds_per_step (0.2 s) are whole frames, so every step has its frame.
    tl = Timeline(Keyframes(cap.steps, cap.loss, cap.center_loss, path=cap.plane_path), scene.timeline, scene.scaling, 10)
    for k in range(len(cap.steps)):
        f = tl.frame_of_step(k)
        assert tl.position(f) == k
        state = tl.frame(f)
        np.testing.assert_allclose(state.marker, cap.plane_path[k], atol=1e-12)
        np.testing.assert_allclose(state.trail[-1], cap.plane_path[k], atol=1e-12)
        np.testing.assert_allclose(state.trail[0], cap.plane_path[0], atol=1e-12)
    # Between captured steps the marker moves between the neighbouring path points.
    mid = tl.frame(tl.frame_of_step(1) + 1).marker
    assert not np.allclose(mid, cap.plane_path[1]) and not np.allclose(mid, cap.plane_path[2])


@pytest.mark.render
def test_fixed_frame_film_draws_a_growing_trail(tmp_path):
    from llstudio.pipeline import make_film, OutputSettings

    scene = make_scene(tmp_path / "f.toml", directions={"kind": "pca", "frame": "fixed"}, grid={"range": "auto"},
                       look={"trail_color": "#ff0000", "marker": False, "contours": 0, "overlay": False,
                             "colormap": "gray"})
    cap = capture_scene(scene, device=CPU)
    film = make_film(cap, OutputSettings(320, 240, 15))
    with film.renderer() as r:
        first = film.frame(r, 0)
        last = film.frame(r, film.n_frames - 1)

    def red(img):
        return int(np.sum((img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80)))

    # A grey surface: only the trail is red. No trail at the start, a visible one at the end.
    assert red(first) == 0
    assert red(last) > 20
