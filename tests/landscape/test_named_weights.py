"""Two named scalar weights as the axes: every other weight stays as it is."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import make_scene
from llstudio.landscape.directions import parse_weight_ref, weight_values
from llstudio.errors import SceneError
from llstudio.train.models import loss_fn
from llstudio.pipeline import capture_scene

CPU = torch.device("cpu")
REFS = ["2.weight[3,5]", "2.weight[7,2]"]


def _brute(model, weights, x, y):
    m = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(weights[n])
        return float(loss_fn("cross_entropy", 10)(m(x), y))


def test_parse_weight_ref():
    assert parse_weight_ref("2.weight[3, 5]") == ("2.weight", (3, 5))
    assert parse_weight_ref("0.bias[1]") == ("0.bias", (1,))
    assert parse_weight_ref("scale") == ("scale", ())
    with pytest.raises(ValueError):
        parse_weight_ref("2.weight[3,")


@pytest.mark.parametrize("weights, msg", [
    (["2.weight[3,5]"], "two different weights"),
    (["2.weight[3,5]", "2.weight[3,5]"], "two different weights"),
    (["2.weight[3,", "2.weight[1,1]"], "not a weight reference"),
])
def test_bad_weight_lists_are_scene_errors(weights, msg):
    with pytest.raises(SceneError) as exc:
        make_scene("x.toml", directions={"kind": "weights", "weights": weights})
    (path, text), = exc.value.problems
    assert path == "directions.weights" and msg in text


def test_weights_kind_needs_weights_and_vice_versa():
    with pytest.raises(SceneError) as exc:
        make_scene("x.toml", directions={"kind": "weights"})
    assert exc.value.problems[0][0] == "directions.weights"
    with pytest.raises(SceneError):
        make_scene("x.toml", directions={"weights": REFS})


def test_unknown_parameter_or_index_fails_before_training(tmp_path, isolated_cache):
    scene = make_scene(tmp_path / "w.toml", directions={"kind": "weights", "weights": ["9.weight[0,0]", "2.weight[70,2]"]})
    with pytest.raises(SceneError) as exc:
        capture_scene(scene, device=CPU)
    probs = dict(exc.value.problems)
    assert "no parameter '9.weight'" in probs["directions.weights[0]"] and "0.weight (8, 64)" in probs["directions.weights[0]"]
    assert "(10, 8)" in probs["directions.weights[1]"]
    assert not list(isolated_cache.rglob("trajectory.npz"))  # nothing was trained


@pytest.mark.parametrize("frame", ["follow", "fixed"])
def test_grid_axes_are_the_weights_values(tmp_path, frame):
    refs = ["2.weight[3,5]", "0.weight[1,20]"]
    scene = make_scene(tmp_path / "w.toml", directions={"kind": "weights", "weights": refs, "frame": frame},
                       grid={"resolution": [4, 3], "range": [-2.0, 2.0], "y_range": [-1.0, 0.5]},
                       capture={"every": 6, "dtype": "float64"})
    cap = capture_scene(scene, device=CPU)
    d1, d2 = cap.directions
    # Moving along the axes changes those two weights and nothing else.
    assert int(sum(torch.count_nonzero(v) for v in d1.values())) == 1
    assert int(sum(torch.count_nonzero(v) for v in d2.values())) == 1
    np.testing.assert_array_equal(cap.plane_path, weight_values(cap.centers, refs))
    x, y = (torch.as_tensor(a) for a in cap.eval_data)
    x = x.double()
    model = cap.model(-1).double()
    for k in range(len(cap.steps)):
        others = cap.centers[-1 if frame == "fixed" else k]
        for i in (0, 3):
            for j in (0, 2):
                w = {n: v.clone() for n, v in others.items()}
                w["2.weight"][3, 5] = cap.alphas[i]
                w["0.weight"][1, 20] = cap.betas[j]
                assert cap.loss[k, i, j] == pytest.approx(_brute(model, w, x, y), rel=1e-6)
        assert cap.center_loss[k] == pytest.approx(_brute(model, cap.centers[k], x, y), rel=1e-6)


@pytest.mark.parametrize("frame", ["follow", "fixed"])
def test_minibatch_landscapes_use_each_steps_batch(tmp_path, frame):
    """capture.data = 'batch': the landscape of step k is the loss on the mini-batch of update k (the earthquakes)."""
    from llstudio.train.training import batch_order

    scene = make_scene(tmp_path / "b.toml", directions={"kind": "weights", "weights": REFS, "frame": frame},
                       grid={"resolution": 3, "range": [-1.0, 1.0]},
                       capture={"every": 4, "dtype": "float64", "data": "batch"})
    cap = capture_scene(scene, device=CPU)
    data = cap.data
    batches = batch_order(len(data.x_train), scene.training.batch_size, scene.training.steps, scene.training.seed)
    model = cap.model(-1).double()
    # Different batches, different landscapes (even on the fixed plane).
    assert not np.allclose(cap.loss[0], cap.loss[1])
    for k, step in enumerate(cap.steps):
        idx = batches[min(int(step), len(batches) - 1)]
        x, y = torch.as_tensor(data.x_train[idx]).double(), torch.as_tensor(data.y_train[idx])
        others = cap.centers[-1 if frame == "fixed" else k]
        w = {n: v.clone() for n, v in others.items()}
        w["2.weight"][3, 5] = cap.alphas[2]
        w["2.weight"][7, 2] = cap.betas[0]
        assert cap.loss[k, 2, 0] == pytest.approx(_brute(model, w, x, y), rel=1e-6)
        assert cap.center_loss[k] == pytest.approx(_brute(model, cap.centers[k], x, y), rel=1e-6)


def test_batch_and_eval_captures_have_different_keys(tmp_path):
    from llstudio.pipeline import capture_key

    a = make_scene(tmp_path / "a.toml")
    b = make_scene(tmp_path / "a.toml", capture={"data": "batch"})
    assert capture_key(a, "cpu") != capture_key(b, "cpu")
