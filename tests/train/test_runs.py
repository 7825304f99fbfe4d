"""1D grids, interpolation between checkpoints, and several training runs on one fixed plane."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import make_scene, tiny_dict
from llstudio.landscape.directions import cosine, flatten
from llstudio.errors import SceneError, UsageError
from llstudio.landscape.reference import reference_grid
from llstudio.train.models import loss_fn
from llstudio.pipeline import make_film, OutputSettings, capture_key, capture_scene
from llstudio.config.scene import load_scene, scene_from_dict
from llstudio.store.store import CaptureStore

CPU = torch.device("cpu")
F64 = {"every": 4, "dtype": "float64", "device": "cpu"}


def _loss_at(cap, weights) -> float:
    """float64 brute force: one plain forward pass at ``weights`` on the evaluation subset."""
    x, y = (torch.as_tensor(a) for a in cap.eval_data)
    model = copy.deepcopy(cap.model(0)).double()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(weights[n])
        return float(loss_fn(cap.scene.training.loss, 10)(model(x.double()), y))


def _reference(cap, center) -> np.ndarray:
    """The plain per-point loop on the capture's own grid, in float64: (nx, ny)."""
    x, y = (torch.as_tensor(a) for a in cap.eval_data)
    d1, d2 = cap.directions
    return reference_grid(copy.deepcopy(cap.model(0)).double(), center, d1, d2, cap.alphas, cap.betas, x.double(), y,
                          loss_fn(cap.scene.training.loss, 10))


def _initial(cap):
    from llstudio.train.training import initial_model

    return {k: v.detach().clone() for k, v in initial_model(cap.scene, cap.data, torch.float64).named_parameters()}


# ------------------------------------------------------------------------------------------------ scene


def test_interpolation_defaults_fill_the_resolved_scene():
    d = tiny_dict(directions={"kind": "interpolation"})
    del d["grid"]["range"]
    scene = scene_from_dict(d)
    assert scene.directions.frame == "fixed"
    assert (scene.directions.start, scene.directions.end) == ("initial", "final")
    assert scene.grid.range == [-0.5, 1.5]
    # The resolved scene validates again to itself (defaults are written out, not re-derived).
    dump = scene.resolved_dump()
    assert scene_from_dict(dump).resolved_dump() == dump


def test_one_d_grid_shape_and_axes():
    from llstudio.pipeline import axes

    scene = make_scene(grid={"dimensions": 1, "resolution": 9, "range": [-2.0, 2.0]})
    assert scene.grid.shape == (9, 1)
    alphas, betas = axes(scene)
    np.testing.assert_array_equal(betas, [0.0])
    np.testing.assert_allclose(alphas, np.linspace(-2, 2, 9))


@pytest.mark.parametrize("over, path, msg", [
    ({"grid": {"dimensions": 1, "y_range": [-1.0, 1.0]}}, "grid.y_range", "no beta axis"),
    ({"grid": {"dimensions": 1, "resolution": [5, 5]}}, "grid.resolution", "one number"),
    ({"grid": {"dimensions": 3}}, "grid.dimensions", "1 or 2"),
    ({"directions": {"kind": "interpolation", "frame": "follow"}}, "directions.frame", "'follow' does not apply"),
    ({"directions": {"kind": "interpolation", "center": "initial"}}, "directions.center", "directions.start"),
    ({"directions": {"kind": "interpolation", "start": 5}}, "directions.start", "not a captured step"),
    ({"directions": {"kind": "interpolation", "end": "run:bs64"}}, "directions.end", "no [[training.runs]]"),
    ({"directions": {"kind": "interpolation", "start": "final", "end": "final"}}, "directions.end", "same point"),
    ({"directions": {"kind": "interpolation", "via": 4}, "grid": {"dimensions": 1}}, "directions.via", "2D grid"),
    ({"directions": {"kind": "random", "start": "initial"}}, "directions.start", "only for kind = 'interpolation'"),
    ({"directions": {"kind": "weights", "weights": ["1.weight[0,0]", "1.weight[0,1]"]}, "grid": {"dimensions": 1}},
     "directions.weights", "one weight"),
    ({"training": {"runs": [{"name": "a"}]}, "directions": {"frame": "follow"}}, "directions.frame", "fixed"),
    ({"training": {"runs": [{"name": "a"}]}, "capture": {"data": "batch"}}, "capture.data", "evaluation subset"),
    ({"training": {"runs": [{"name": "a"}, {"name": "a"}]}}, "training.runs", "unique"),
    ({"training": {"runs": [{"name": "a b"}]}}, "training.runs[0].name", "not a run name"),
    ({"training": {"runs": [{"name": "a", "lr": -1.0}]}}, "training.runs[0].lr", "greater than 0"),
    ({"training": {"runs": [{"name": "a", "colour": 1}]}}, "training.runs[0].colour", "unknown key"),
    ({"training": {"init": {"0.weight[": 1.0}}}, "training.init", "not a weight reference"),
    ({"training": {"train_only": []}}, "training.train_only", "at least one weight"),
])
def test_scene_errors_name_their_key(over, path, msg):
    with pytest.raises(SceneError) as exc:
        make_scene("x.toml", **over)
    paths = [p for p, _ in exc.value.problems]
    text = " | ".join(m for _, m in exc.value.problems)
    assert path in paths and msg in text, exc.value.problems


def test_runs_are_overrides_of_training():
    scene = make_scene(training={"runs": [{"name": "bs64", "batch_size": 64}, {"name": "bs8", "batch_size": 8,
                                                                                "lr": 0.5}]})
    assert scene.training.run_names() == ["bs64", "bs8"]
    assert scene.directions.frame == "fixed"
    a, b = scene.training.for_run("bs64"), scene.training.for_run("bs8")
    assert (a.batch_size, a.lr, a.steps, a.runs) == (64, 0.1, 12, None)
    assert (b.batch_size, b.lr) == (8, 0.5)
    assert scene.training.for_run() == a
    # The resolved scene (every key written out, overrides left out as null) means the same runs.
    again = scene_from_dict(scene.resolved_dump())
    assert again.training.for_run("bs8") == b and again.training.for_run("bs64") == a
    assert make_scene().training.run_names() == ["main"]


SEED_001 = """
[data]
eval_size = 64
[model]
hidden = [8]
[training]
steps = 12
[[training.runs]]
name = "bs64"
batch_size = 64
[[training.runs]]
name = "bs256"
batch_size = 256
[directions]
kind = "interpolation"
start = "run:bs64"
end = "run:bs256"
[grid]
dimensions = 1
resolution = 5
[capture]
every = 6
device = "cpu"
dtype = "float64"
"""

SEED_000 = """
[data]
dataset = "moons"
samples = 200
eval_size = 64
[model]
kind = "logistic"
[training]
steps = 8
lr = 1.0
train_only = ["0.weight[0,0]", "0.weight[0,1]"]
[[training.runs]]
name = "left"
init = { "0.weight[0,0]" = -3.0, "0.weight[0,1]" = 2.0 }
[[training.runs]]
name = "middle"
init = { "0.weight[0,0]" = -2.0, "0.weight[0,1]" = 2.0 }
[[training.runs]]
name = "right"
init = { "0.weight[0,0]" = -1.0, "0.weight[0,1]" = 2.0 }
[directions]
kind = "weights"
weights = ["0.weight[0,0]", "0.weight[0,1]"]
[grid]
resolution = 4
range = "auto"
[capture]
every = 4
device = "cpu"
dtype = "float64"
"""


def test_seed_001_minimiser_interpolation_is_two_runs_and_a_line(tmp_path):
    """Batch size 64 vs 256: the line from one minimiser to the other, alpha = 0 and 1 at the two final weights."""
    path = tmp_path / "bs.toml"
    path.write_text(SEED_001)
    scene = load_scene(path)
    cap = capture_scene(scene, device=CPU)
    assert [r.name for r in cap.runs] == ["bs64", "bs256"]
    assert cap.loss.shape == (3, 5, 1)
    np.testing.assert_allclose(cap.alphas, [-0.5, 0.0, 0.5, 1.0, 1.5])
    a_final, b_final = cap.runs[0].plane_path[-1], cap.runs[1].plane_path[-1]
    np.testing.assert_allclose(a_final, [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(b_final, [1.0, 0.0], atol=1e-9)
    # The curve at alpha = 0 and 1 is the loss of each run's final weights (its own center_loss).
    assert cap.loss[-1, 1, 0] == pytest.approx(cap.runs[0].center_loss[-1], rel=1e-9)
    assert cap.loss[-1, 3, 0] == pytest.approx(cap.runs[1].center_loss[-1], rel=1e-9)
    assert not np.allclose(cap.runs[0].train_loss, cap.runs[1].train_loss)


def test_seed_000_three_starting_points_on_two_weights(tmp_path):
    path = tmp_path / "three.toml"
    path.write_text(SEED_000)
    cap = capture_scene(load_scene(path), device=CPU)
    starts = np.array([r.plane_path[0] for r in cap.runs])
    np.testing.assert_allclose(starts, [[-3.0, 2.0], [-2.0, 2.0], [-1.0, 2.0]])
    # One landscape: the 'auto' range covers every run's path.
    for r in cap.runs:
        assert cap.alphas[0] < r.plane_path[:, 0].min() and r.plane_path[:, 0].max() < cap.alphas[-1]
        assert cap.betas[0] < r.plane_path[:, 1].min() and r.plane_path[:, 1].max() < cap.betas[-1]
        # Each run's update arrows are the differences of its path (the named weights are the axes).
        np.testing.assert_allclose(r.updates[:-1], np.diff(r.plane_path, axis=0), atol=1e-12)
    # The primary run is the single-run view.
    np.testing.assert_array_equal(cap.plane_path, cap.runs[0].plane_path)
    np.testing.assert_array_equal(cap.center_loss, cap.runs[0].center_loss)
    # Only the two weights train, so every run's weights lie exactly in the plane drawn: the landscape at a run's
    # (alpha, beta) is that run's own loss, and gradient descent walks the surface shown.
    from llstudio.landscape.directions import zero_entries

    center = zero_entries(cap.centers[-1], cap.scene.directions.weights)
    d1, d2 = cap.directions
    frozen = {k: v.clone() for k, v in cap.centers[0].items()}
    frozen["0.weight"][0, :2] = cap.centers[-1]["0.weight"][0, :2]
    for n in frozen:
        np.testing.assert_array_equal(frozen[n].numpy(), cap.centers[-1][n].numpy())
    for r in cap.runs:
        for k in range(len(cap.steps)):
            a, b = r.plane_path[k]
            at = {n: center[n] + a * d1[n] + b * d2[n] for n in center}
            assert r.center_loss[k] == pytest.approx(_loss_at(cap, at), rel=1e-9)
    assert len({tuple(r.plane_path[-1]) for r in cap.runs}) == 3


def test_bad_init_reference_fails_before_training(tmp_path):
    scene = make_scene(tmp_path / "x.toml", training={"runs": [{"name": "a"},
                                                               {"name": "b", "init": {"2.weight[99,0]": 1.0}}]})
    with pytest.raises(SceneError) as exc:
        capture_scene(scene, device=CPU)
    (path, msg), = exc.value.problems
    assert path == 'training.runs[1].init."2.weight[99,0]"' and "does not pick one entry" in msg


# ------------------------------------------------------------------------------------- interpolation


def test_one_d_interpolation_matches_brute_force(tmp_path):
    scene = make_scene(tmp_path / "i.toml", directions={"kind": "interpolation"},
                       grid={"dimensions": 1, "resolution": 5, "range": [-0.5, 1.5]}, capture=F64)
    cap = capture_scene(scene, device=CPU)
    k = len(cap.steps)
    assert cap.loss.shape == (k, 5, 1)
    np.testing.assert_array_equal(cap.betas, [0.0])
    d1, d2 = cap.directions
    start, end = _initial(cap), cap.centers[-1]
    # d1 = end - start, unnormalised; d2 unused (zero).
    for n in start:
        np.testing.assert_allclose(d1[n].numpy(), (end[n] - start[n]).numpy(), rtol=1e-12, atol=1e-15)
        assert not d2[n].any()
    ref = _reference(cap, start)
    np.testing.assert_allclose(cap.loss[0], ref, rtol=1e-5)
    # alpha = 0 is the start, alpha = 1 the end: the checkpoints' own losses.
    assert cap.loss[0, 1, 0] == pytest.approx(_loss_at(cap, start), rel=1e-5)
    assert cap.loss[0, 3, 0] == pytest.approx(_loss_at(cap, end), rel=1e-5)
    # The training path runs from (0, 0) to (1, 0); beta is 0 throughout.
    np.testing.assert_allclose(cap.plane_path[0], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(cap.plane_path[-1], [1.0, 0.0], atol=1e-9)
    assert not cap.plane_path[:, 1].any()
    manifest = CaptureStore().open(cap.key).read_manifest()
    assert manifest["dimensions"] == 1 and "1D" in manifest["second_direction"]


def test_two_d_interpolation_random_second_direction_is_orthogonal(tmp_path):
    scene = make_scene(tmp_path / "i.toml", directions={"kind": "interpolation", "start": 4, "end": "final"},
                       grid={"resolution": [5, 3], "range": [-0.5, 1.5], "y_range": [-1.0, 1.0]}, capture=F64)
    cap = capture_scene(scene, device=CPU)
    d1, d2 = cap.directions
    assert abs(cosine(d1, d2)) < 1e-12
    assert float(flatten(d2).norm()) > 0
    start, end = cap.centers[1], cap.centers[-1]  # captured steps 0, 4, 8, 12
    np.testing.assert_allclose(cap.loss[0], _reference(cap, start), rtol=1e-5)
    assert cap.loss[0, 1, 1] == pytest.approx(_loss_at(cap, start), rel=1e-5)
    assert cap.loss[0, 3, 1] == pytest.approx(_loss_at(cap, end), rel=1e-5)
    manifest = CaptureStore().open(cap.key).read_manifest()
    assert "Gram-Schmidt" in manifest["second_direction"]


def test_two_d_interpolation_via_a_third_point(tmp_path):
    scene = make_scene(tmp_path / "i.toml", directions={"kind": "interpolation", "via": 4},
                       grid={"resolution": 3, "range": [-0.5, 1.5]}, capture=F64)
    cap = capture_scene(scene, device=CPU)
    d1, d2 = cap.directions
    assert abs(cosine(d1, d2)) < 1e-12
    start, via = _initial(cap), cap.centers[1]
    a, b = cap.plane_path[1]
    assert b == pytest.approx(1.0, abs=1e-9)
    # via lies exactly in the plane: start + a*d1 + b*d2 is via.
    for n in start:
        np.testing.assert_allclose((start[n] + a * d1[n] + b * d2[n]).numpy(), via[n].numpy(), atol=1e-10)
    np.testing.assert_allclose(cap.loss[0], _reference(cap, start), rtol=1e-5)


def test_checkpoint_file_endpoint(tmp_path):
    scene = make_scene(tmp_path / "i.toml", directions={"kind": "interpolation", "end": "ckpt/end.pt"},
                       grid={"dimensions": 1, "resolution": 5, "range": [-0.5, 1.5]}, capture=F64)
    # Missing: a scene error with the key path, before any training.
    with pytest.raises(SceneError) as exc:
        capture_scene(scene, device=CPU)
    (path, msg), = exc.value.problems
    assert path == "directions.end" and "does not exist" in msg and "end.pt" in msg
    # A state dict of the model, with the weights moved somewhere else.
    from llstudio.train.data import load_dataset
    from llstudio.train.training import initial_model

    model = initial_model(scene, load_dataset(scene.data), torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.5).add_(0.1)
    (tmp_path / "ckpt").mkdir()
    torch.save(model.state_dict(), tmp_path / "ckpt" / "end.pt")
    key1 = capture_key(scene, "cpu")
    cap = capture_scene(scene, device=CPU)
    end = {k: v.detach() for k, v in model.named_parameters()}
    assert cap.loss[0, 3, 0] == pytest.approx(_loss_at(cap, end), rel=1e-5)
    assert cap.loss[0, 1, 0] == pytest.approx(_loss_at(cap, _initial(cap)), rel=1e-5)
    np.testing.assert_allclose(cap.loss[0], _reference(cap, _initial(cap)), rtol=1e-5)
    # Another file at the same path is another capture.
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    torch.save(model.state_dict(), tmp_path / "ckpt" / "end.pt")
    assert capture_key(scene, "cpu") != key1


@pytest.mark.parametrize("content, msg", [
    (lambda sd: {k: v[:1] for k, v in sd.items()}, "does not fit the model"),
    (lambda sd: {"other.weight": torch.zeros(2)}, "lacks the model's parameters"),
    (lambda sd: [1, 2, 3], "is not a state dict"),
])
def test_checkpoint_that_does_not_fit_is_a_scene_error(tmp_path, content, msg):
    from llstudio.train.data import load_dataset
    from llstudio.train.training import initial_model

    scene = make_scene(tmp_path / "i.toml", directions={"kind": "interpolation", "start": "bad.pt"})
    sd = initial_model(scene, load_dataset(scene.data), torch.float32).state_dict()
    torch.save(content(sd), tmp_path / "bad.pt")
    with pytest.raises(SceneError) as exc:
        capture_scene(scene, device=CPU)
    (path, text), = exc.value.problems
    assert path == "directions.start" and msg in text


# -------------------------------------------------------------------------------------------- runs


def test_runs_share_one_plane_and_project_exactly(tmp_path):
    """Three runs; the plane goes through their final weights (interpolation start/end/via), so those points lie in
    it and project exactly; every other point gets its least-squares coordinates."""
    runs = [{"name": "a"}, {"name": "b", "seed": 5, "batch_size": 8}, {"name": "c", "optimizer": "momentum",
                                                                       "init_seed": 9}]
    scene = make_scene(tmp_path / "r.toml", training={"runs": runs},
                       directions={"kind": "interpolation", "start": "run:a", "end": "run:b", "via": "run:c"},
                       grid={"resolution": 3, "range": [-0.5, 1.5]}, capture=F64)
    cap = capture_scene(scene, device=CPU)
    assert [r.name for r in cap.runs] == ["a", "b", "c"]
    (a, b, c) = cap.runs
    np.testing.assert_allclose(a.plane_path[-1], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(b.plane_path[-1], [1.0, 0.0], atol=1e-9)
    assert c.plane_path[-1][1] == pytest.approx(1.0, abs=1e-9)
    d1, d2 = cap.directions
    basis = np.stack([flatten(d1).numpy(), flatten(d2).numpy()], axis=1)
    center = flatten(cap.centers[-1]).numpy()  # run a's final weights: the plane's centre
    store = CaptureStore()
    trajs = store.open(cap.key)
    for r in cap.runs:
        arrays = trajs.load_arrays("trajectory" if r.name == "a" else f"trajectory_{r.name}")
        names = list(cap.centers[0])
        weights = [{n: torch.from_numpy(arrays[f"w{i}/{n}"]) for n in names} for i in range(len(cap.steps))]
        # Least squares, independently (numpy, float64).
        rows = np.stack([flatten(w).numpy() - center for w in weights], axis=1)
        expect = np.linalg.lstsq(basis, rows, rcond=None)[0].T
        np.testing.assert_allclose(r.plane_path, expect, atol=1e-9)
        # Its loss at its own weights, per captured step.
        for k in (0, len(cap.steps) - 1):
            assert r.center_loss[k] == pytest.approx(_loss_at(cap, weights[k]), rel=1e-5)
    # Runs really differ, and the primary run is the single-run view.
    assert not np.allclose(a.train_loss, b.train_loss) and not np.allclose(a.plane_path, c.plane_path)
    np.testing.assert_array_equal(cap.center_loss, a.center_loss)
    np.testing.assert_array_equal(cap.train_loss, a.train_loss)
    manifest = trajs.read_manifest()
    assert manifest["runs"] == ["a", "b", "c"] and "via - start" in manifest["second_direction"]


def test_pca_over_all_runs(tmp_path):
    runs = [{"name": "a"}, {"name": "b", "seed": 5}]
    base = dict(training={"runs": runs}, grid={"resolution": 3, "range": "auto"}, capture=F64)
    one = capture_scene(make_scene(tmp_path / "p.toml", directions={"kind": "pca"}, **base), device=CPU)
    both = capture_scene(make_scene(tmp_path / "p.toml", directions={"kind": "pca", "pca_runs": "all"}, **base),
                         device=CPU)
    # Same trajectories, other components: the second run's path moves differently on the two planes.
    np.testing.assert_array_equal(one.runs[1].train_loss, both.runs[1].train_loss)
    assert not np.allclose(one.runs[1].plane_path, both.runs[1].plane_path)
    for cap in (one, both):
        d1, d2 = cap.directions
        assert abs(cosine(d1, d2)) < 1e-9


def test_capture_key_follows_the_runs(tmp_path):
    runs = [{"name": "a"}, {"name": "b", "lr": 0.05}]
    base = make_scene(tmp_path / "k.toml", training={"runs": runs})
    other_lr = make_scene(tmp_path / "k.toml", training={"runs": [runs[0], {"name": "b", "lr": 0.06}]})
    renamed = make_scene(tmp_path / "k.toml", training={"runs": [runs[0], {"name": "c", "lr": 0.05}]})
    single = make_scene(tmp_path / "k.toml", directions={"frame": "fixed"})
    look = make_scene(tmp_path / "k.toml", training={"runs": runs}, look={"colormap": "magma"})
    keys = {capture_key(s, "cpu") for s in (base, other_lr, renamed, single)}
    assert len(keys) == 4
    assert capture_key(look, "cpu") == capture_key(base, "cpu")


def test_runs_resume_from_the_store(tmp_path):
    runs = [{"name": "a"}, {"name": "b", "seed": 2}]
    scene = make_scene(tmp_path / "r.toml", training={"runs": runs}, grid={"resolution": 3}, capture=F64)
    first = capture_scene(scene, device=CPU)
    cdir = CaptureStore().open(first.key)
    # Lose the second run's losses and one captured step, as a kill would: the rerun redoes only those.
    (cdir.path / "run_b.npz").unlink()
    cdir.step_path(first.steps[-1]).unlink()
    before = (cdir.path / "trajectory_b.npz").stat().st_mtime_ns
    again = capture_scene(scene, device=CPU)
    assert (cdir.path / "trajectory_b.npz").stat().st_mtime_ns == before  # not retrained
    np.testing.assert_array_equal(again.loss, first.loss)
    for r1, r2 in zip(first.runs, again.runs):
        assert r1.name == r2.name
        np.testing.assert_array_equal(r1.center_loss, r2.center_loss)
        np.testing.assert_array_equal(r1.plane_path, r2.plane_path)
        np.testing.assert_array_equal(r1.updates, r2.updates)


# ------------------------------------------------------------------------------------ 1D elsewhere


@pytest.fixture(scope="module")
def one_d_capture(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-d")
    scene = make_scene(root / "line.toml", directions={"kind": "random"},
                       grid={"dimensions": 1, "resolution": 6, "range": [-1.0, 1.0]})
    return capture_scene(scene, device=CPU, store=CaptureStore(root))


def test_every_direction_kind_works_in_one_d(one_d_capture, tmp_path):
    assert one_d_capture.loss.shape == (4, 6, 1)
    assert not flatten(one_d_capture.directions[1]).any()
    for directions in ({"kind": "pca", "frame": "fixed"}, {"kind": "weights", "weights": ["2.weight[0,0]"]}):
        cap = capture_scene(make_scene(tmp_path / "k.toml", directions=directions,
                                       grid={"dimensions": 1, "resolution": 4}), device=CPU)
        assert cap.loss.shape == (4, 4, 1) and list(cap.betas) == [0.0]
        assert not cap.plane_path[:, 1].any()


def test_one_d_exports(one_d_capture, tmp_path):
    from llstudio.output.export import export

    (npz,) = export(one_d_capture, "npz", tmp_path)
    with np.load(npz) as z:
        assert z["loss"].shape == (4, 6, 1)
        np.testing.assert_array_equal(z["betas"], [0.0])
        assert list(z["run_names"]) == ["main"]
        np.testing.assert_array_equal(z["run/main/center_loss"], one_d_capture.center_loss)
    import pyvista as pv

    vts = export(one_d_capture, "vts", tmp_path / "vts")
    grid = pv.read(vts[0])
    assert tuple(grid.dimensions) == (6, 1, 1)
    np.testing.assert_allclose(grid.point_data["loss"], one_d_capture.loss[0, :, 0])
    with pytest.raises(UsageError, match="1D capture"):
        export(one_d_capture, "ply", tmp_path / "ply")
    assert not list((tmp_path / "ply").glob("*.ply"))
    h5py = pytest.importorskip("h5py")
    paths = export(one_d_capture, "h5", tmp_path / "h5")
    with h5py.File(paths[1], "r") as f:
        assert "ycoordinates" not in f and f["train_loss"].shape == (6,)
        np.testing.assert_allclose(f["train_loss"][()], one_d_capture.loss[0, :, 0])
    with h5py.File(paths[0], "r") as f:
        assert list(f) == ["xdirection"]


@pytest.mark.render
def test_one_d_film_renders_as_a_curve(one_d_capture, tmp_path):
    """A real 1D capture (loss (steps, nx, 1)) goes through the film path: the renderer draws it as a curve."""
    film = make_film(one_d_capture, OutputSettings(160, 120, 10))
    with film.renderer() as r:
        first, last = film.frame(r, 0), film.frame(r, film.n_frames - 1)
    assert first.shape == (120, 160, 3)
    # Something is drawn (not just background), and the curve changes between the first and last step.
    assert np.unique(first.reshape(-1, 3), axis=0).shape[0] > 20
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 0.1


@pytest.mark.render
def test_multi_run_scene_renders_its_primary_run(tmp_path):
    from llstudio.pipeline import render_film

    scene = make_scene(tmp_path / "m.toml", training={"runs": [{"name": "a"}, {"name": "b", "seed": 4}]},
                       grid={"resolution": 4}, timeline={"seconds_per_step": 0.1, "hold_start": 0.0,
                                                         "hold_end": 0.0})
    cap = capture_scene(scene, device=CPU)
    out = render_film(cap, tmp_path / "m.mp4", quality="l")
    assert out.exists() and out.stat().st_size > 0
