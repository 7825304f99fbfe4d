"""The plain per-point loop: the evaluator's correctness reference and the benchmark's baseline."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..device import exact_float32


def reference_grid(model: nn.Module, center: dict[str, torch.Tensor], d1: dict, d2: dict,
                   alphas: np.ndarray, betas: np.ndarray, x: torch.Tensor, y: torch.Tensor, loss: Callable,
                   on_point: Optional[Callable[[], None]] = None) -> np.ndarray:
    """The plain per-point loop: set the weights, run a forward pass, one grid point at a time.

    Correctness reference for tests and the baseline of ``benchmarks/capture.py``. ``(nx, ny)``, 'ij' indexing.
    The losses stay on the model's device until the end (on a GPU, reading each back would wait for it at every
    point, which would make the baseline slower than it need be), in IEEE float32 as the evaluator computes.
    """
    params = dict(model.named_parameters())
    values = []
    with torch.no_grad(), exact_float32(next(iter(params.values())).device if params else "cpu"):
        for a in alphas:
            for b in betas:
                for k, p in params.items():
                    p.copy_(center[k] + float(a) * d1[k] + float(b) * d2[k])
                values.append(loss(model(x), y).detach())
                if on_point is not None:
                    on_point()
    return torch.stack(values).double().cpu().numpy().reshape(len(alphas), len(betas))
