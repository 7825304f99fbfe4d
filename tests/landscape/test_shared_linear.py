"""Linear layers in shared form (linearcapture) and the per-worker model replicas of the vmap strategies, checked
against float64 brute-force forward passes of the unmodified torch modules."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from conftest import perturbed_stats
from test_dropout import brute_force as brute_force_masked, dropout_mlp, tiny_cnn
from test_dropout import _data as dropout_data
from test_landscape import center_and_directions
from test_models import ALPHAS, BETAS, _data, brute_force
from llstudio.landscape.dropout import mask_seed
from llstudio.landscape.evaluator import LandscapeEvaluator
from llstudio.landscape.shared_linear import SharedLinear, swap_linear
from llstudio.train.models import build_model, loss_fn
from llstudio.config.scene import ModelSpec

CPU = torch.device("cpu")
F64 = torch.float64


def _evaluator(model, x, y, d1, d2, shared_rows, **kw):
    ev_cls = type("E", (LandscapeEvaluator,), {"SHARED_LINEAR_ROWS": {"cpu": shared_rows}})
    return ev_cls(copy.deepcopy(model), x, y, loss_fn("cross_entropy", 10), d1, d2, CPU, F64, **kw)


@pytest.mark.parametrize("shared_rows", [0, 10**9])
@pytest.mark.parametrize("mode", ["eval", "train", "recompute_bn"])
def test_shared_and_per_point_linear_layers_equal_brute_force(mode, shared_rows):
    torch.manual_seed(0)
    model = build_model(ModelSpec(kind="cnn", width=2, batch_norm=True), (1, 8, 8), 10).to(F64)
    x, y = _data((1, 8, 8), 6)
    bn_x = _data((1, 8, 8), 9, seed=1)[0] if mode == "recompute_bn" else None
    center, d1, d2 = center_and_directions(model, 0, 0.3, spread=0.1)
    bufs = perturbed_stats(model, 0)
    ev = _evaluator(model, x, y, d1, d2, shared_rows, mode=mode, bn_x=bn_x, threads=2, memory_mb=1)
    linears = [n for n, m in ev.model.named_modules() if isinstance(m, SharedLinear)]
    assert linears == ["classifier.0", "classifier.3"]
    assert ev._shared_layers() == (linears if shared_rows else [])
    got = ev.grid(center, ALPHAS, BETAS, buffers=bufs)
    np.testing.assert_allclose(got, brute_force(model, center, d1, d2, bufs, mode, x, y, bn_x), rtol=1e-10, atol=0)
    # Armed only while a batch runs.
    assert all(r.linear.armed is None and r.linear.coef is None for r in ev._replicas)


class _Tokens(nn.Module):
    """A linear layer applied along an extra dimension (3 rows a sample), then a classifier on the flat result."""

    def __init__(self):
        super().__init__()
        self.mix = nn.Conv1d(3, 3, 1)
        self.token = nn.Linear(4, 5)
        self.head = nn.Linear(15, 10, bias=False)

    def forward(self, x):
        return self.head(torch.tanh(self.token(self.mix(x))).flatten(1))


@pytest.mark.parametrize("shared_rows", [0, 4 * 3, 10**9])
def test_linear_layers_with_several_rows_per_sample(shared_rows):
    torch.manual_seed(5)
    model = _Tokens().to(F64)
    x, y = _data((3, 4), 4, seed=2)
    center, d1, d2 = center_and_directions(model, 2, 0.4, spread=0.2)
    ev = _evaluator(model, x, y, d1, d2, shared_rows, memory_mb=1)
    assert ev.strategy == "vmap" and ev._linear_rows == {"token": 3, "head": 1}
    assert ev._shared_layers() == {0: [], 12: ["token", "head"], 10**9: ["token", "head"]}[shared_rows]
    got = ev.grid(center, ALPHAS, BETAS)
    np.testing.assert_allclose(got, brute_force(model, center, d1, d2, {}, "eval", x, y), rtol=1e-10, atol=0)


def test_the_decision_follows_the_evaluation_batch():
    """Earthquake films swap in each step's mini-batch: a layer is shared while the batch is small enough."""
    torch.manual_seed(5)
    model = _Tokens().to(F64)
    x, y = _data((3, 4), 4, seed=2)
    _, d1, d2 = center_and_directions(model, 2)
    ev = _evaluator(model, x, y, d1, d2, 12)
    assert ev._shared_layers() == ["token", "head"]
    ev.set_data(*_data((3, 4), 8, seed=3))
    assert ev._shared_layers() == ["head"]


@pytest.mark.parametrize("strategy", ["linear_first", "vmap"])
def test_worker_replicas_with_fixed_dropout_masks(strategy):
    model = dropout_mlp()
    x, y = dropout_data((6,), 9)
    center, d1, d2 = center_and_directions(model, seed=1, scale=0.4, spread=0.2)
    ev = LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn("cross_entropy", 3), d1, d2, CPU, F64,
                            strategy=strategy, dropout="fixed", threads=2)
    ev.chunk = 2  # three chunks over two workers
    masks = ev.dropout_masks(mask_seed(0, 10))
    got = ev.grid(center, ALPHAS, BETAS, masks=masks)
    assert len(ev._replicas) == 2 and ev._replicas[1].model is not ev.model
    np.testing.assert_allclose(got, brute_force_masked(model, center, d1, d2, masks, x, y), rtol=1e-10, atol=0)
    # The copy's dropout state is left as it was found.
    assert ev._replicas[1].drop.masks is None


def test_one_and_two_workers_agree_on_a_batch_norm_cnn_with_dropout():
    model = tiny_cnn(batch_norm=True)
    x, y = dropout_data((1, 8, 8), 5)
    center, d1, d2 = center_and_directions(model, seed=3, scale=0.3, spread=0.1)
    grids = []
    for threads in (1, 2):
        ev = LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn("cross_entropy", 3), d1, d2, CPU, F64,
                                mode="train", dropout="fixed", threads=threads)
        ev.chunk = 2
        masks = ev.dropout_masks(mask_seed(0, 4))
        grids.append(ev.grid(center, ALPHAS, BETAS, masks=masks))
        want = brute_force_masked(model, center, d1, d2, masks, x, y, mode="train")
        np.testing.assert_allclose(grids[-1], want, rtol=1e-10, atol=0)
    np.testing.assert_allclose(grids[0], grids[1], rtol=1e-12, atol=0)


def test_shared_form_is_off_on_the_cpu_by_default():
    """Measured slower on the CPU target (see LandscapeEvaluator.SHARED_LINEAR_ROWS): per-point weights there."""
    torch.manual_seed(5)
    model = _Tokens().to(F64)
    x, y = _data((3, 4), 1, seed=2)
    _, d1, d2 = center_and_directions(model, 2)
    ev = LandscapeEvaluator(model, x, y, loss_fn("cross_entropy", 10), d1, d2, CPU, F64)
    assert ev._linear_rows == {"token": 3, "head": 1} and ev._shared_layers() == []


def test_a_disarmed_shared_linear_is_an_nn_linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    want = model(x)
    state = swap_linear(model, ["0", "2"])
    assert isinstance(model[0], SharedLinear) and [n for n, _ in model.named_parameters()] == \
        ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert state.armed is None
    torch.testing.assert_close(model(x), want, rtol=0, atol=0)
    with pytest.raises(TypeError, match="not an nn.Linear"):
        swap_linear(model, ["1"])
