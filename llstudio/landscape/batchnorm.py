"""BatchNorm during landscape capture: the three ``capture.mode`` s, in a form ``torch.func.vmap`` can batch.

``nn.BatchNorm*`` in train mode writes its running statistics in place, which cannot be batched over grid points,
and its eval mode is only one of the behaviours a film may want. During capture every BatchNorm layer is therefore
replaced by :class:`CaptureBatchNorm`: same parameter and buffer names (``features.1.weight``,
``features.1.running_mean``), so directions, centres and buffers map onto it unchanged, and plain tensor maths
whose statistics come from one of

- ``"eval"``: the running statistics passed in as buffers (those of the captured step, as trained);
- ``"batch"`` (capture.mode = 'train'): the mean and biased variance of the evaluated batch, as in training;
- ``"collect"`` / ``"apply"`` (capture.mode = 'recompute_bn'): a first forward pass over a fixed subset of the
  training data in train mode records each layer's batch mean and unbiased variance (what ``nn.BatchNorm`` with
  ``momentum=None`` stores after that one batch, as in Garipov et al.'s ``bn_update``); the second pass, over the
  evaluation data, normalises with them like eval mode does.

Dropout is independent of the mode: off, or one fixed set of masks per captured step (``capture.dropout``, see
``dropcapture``); the 'collect' pass of 'recompute_bn' always runs without dropout.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

MODES = ("eval", "train", "recompute_bn")


class BNState:
    """Shared by all :class:`CaptureBatchNorm` layers of one model: which statistics to use right now, and the
    statistics collected by the last 'collect' pass (slot → (mean (C,), unbiased var (C,)))."""

    def __init__(self):
        self.phase = "eval"
        self.stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


class CaptureBatchNorm(nn.Module):
    """A BatchNorm layer for capture; works on (N, C) and (N, C, *spatial) inputs, inside vmap or not."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, state: BNState, slot: int):
        super().__init__()
        # The same Parameter objects under the same attribute names: parameter names do not change.
        self.weight = bn.weight
        self.bias = bn.bias
        if bn.track_running_stats and bn.running_mean is not None:
            self.register_buffer("running_mean", bn.running_mean)
            self.register_buffer("running_var", bn.running_var)
        else:
            self.running_mean = self.running_var = None
        self.eps = bn.eps
        self.state = state
        self.slot = slot

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        dims = [0] + list(range(2, x.dim()))
        phase = self.state.phase
        if phase == "apply":
            mean, var = self.state.stats[self.slot]
        elif phase == "eval" and self.running_mean is not None:
            mean, var = self.running_mean, self.running_var
        else:
            # Batch statistics: train mode, the collect pass, and layers that track no running statistics
            # (which nn.BatchNorm normalises with batch statistics in eval mode too).
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            if phase == "collect":
                n = x.numel() // x.shape[1]
                self.state.stats[self.slot] = (mean, var * (n / max(n - 1, 1)))
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def swap_batch_norm(model: nn.Module) -> Optional[BNState]:
    """Replace every BatchNorm layer of ``model`` in place by a :class:`CaptureBatchNorm`; None when it has none."""
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not targets:
        return None
    state = BNState()
    for slot, (name, bn) in enumerate(targets):
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, CaptureBatchNorm(bn, state, slot))
    return state
