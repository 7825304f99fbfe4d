"""Device handling that needs no GPU to check: IEEE float32 on CUDA during capture, the default batch budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llstudio.device import exact_float32
from llstudio.landscape.evaluator import LandscapeEvaluator
from llstudio.landscape.reference import reference_grid
from llstudio.train.models import loss_fn


def _precisions():
    b = torch.backends
    return b.cudnn.conv.fp32_precision, b.cuda.matmul.fp32_precision


needs_precision_api = pytest.mark.skipif(not hasattr(torch.backends.cudnn, "conv"),
                                         reason="torch without per-backend fp32_precision settings")


@needs_precision_api
def test_exact_float32_turns_tf32_off_on_cuda_and_restores_the_settings():
    b = torch.backends
    before = _precisions()
    b.cuda.matmul.fp32_precision = "tf32"  # as a user who wants TF32 products might set it
    try:
        with exact_float32(torch.device("cuda")):
            assert _precisions() == ("ieee", "ieee")
        assert _precisions() == (before[0], "tf32")
        with pytest.raises(RuntimeError, match="boom"):
            with exact_float32("cuda:0"):
                raise RuntimeError("boom")
        assert _precisions() == (before[0], "tf32")
    finally:
        b.cuda.matmul.fp32_precision = before[1]


@needs_precision_api
def test_exact_float32_changes_nothing_on_the_cpu():
    before = _precisions()
    with exact_float32(torch.device("cpu")):
        assert _precisions() == before


def test_default_batch_budget_on_the_cpu():
    assert LandscapeEvaluator.default_memory_mb(torch.device("cpu")) == 512
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    d = {k: torch.randn_like(v) for k, v in model.named_parameters()}
    ev = LandscapeEvaluator(model, x, y, loss_fn("cross_entropy", 2), d, d, torch.device("cpu"), torch.float32)
    assert ev.memory_mb == 512


def test_reference_grid_returns_float64_in_ij_order():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    x, y = torch.randn(4, 3), torch.randint(0, 2, (4,))
    center = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1 = {k: torch.randn_like(v) for k, v in center.items()}
    d2 = {k: torch.randn_like(v) for k, v in center.items()}
    alphas, betas = np.array([-1.0, 0.0, 0.5]), np.array([0.25, 2.0])
    got = reference_grid(model, center, d1, d2, alphas, betas, x, y, loss_fn("cross_entropy", 2))
    assert got.shape == (3, 2) and got.dtype == np.float64
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            w = {k: center[k] + a * d1[k] + b * d2[k] for k in center}
            want = torch.nn.functional.cross_entropy(x @ w["0.weight"].T + w["0.bias"], y)
            assert got[i, j] == pytest.approx(float(want), rel=1e-6)
