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
``dropout``); the 'collect' pass of 'recompute_bn' always runs without dropout.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from .swaps import modules_of_type, setting, swap_modules

MODES = ("eval", "train", "recompute_bn")
# The phase of the layers during the forward pass over the evaluation data, by capture mode.
_PHASE = {"eval": "eval", "train": "batch", "recompute_bn": "apply"}


class BNState:
    """Shared by all :class:`CaptureBatchNorm` layers of one model: which statistics to use right now, and the
    statistics collected by the last 'collect' pass (slot → (mean (C,), unbiased var (C,)))."""

    def __init__(self):
        self.phase = "eval"
        self.stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def using(self, phase: str):
        """Normalise in ``phase`` inside the block; the previous phase afterwards."""
        return setting(self, "phase", phase)


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
    names = [name for name, _ in modules_of_type(model, nn.modules.batchnorm._BatchNorm)]
    if not names:
        return None
    state = BNState()
    slots = {name: slot for slot, name in enumerate(names)}
    swap_modules(model, names, lambda name, bn: CaptureBatchNorm(bn, state, slots[name]))
    return state


def capture_batch_norm(model: nn.Module, mode: str, bn_x: Optional[torch.Tensor]) -> Optional[BNState]:
    """Check the capture ``mode`` (one of :data:`MODES`) and swap the BatchNorm layers of ``model`` in place
    (:func:`swap_batch_norm`); None when it has none. 'recompute_bn' needs BatchNorm layers and ``bn_x``, the
    training inputs their statistics are recomputed from."""
    if mode not in MODES:
        raise ValueError(f"unknown capture mode {mode!r}: choose one of {', '.join(MODES)}")
    state = swap_batch_norm(model)
    if mode == "recompute_bn" and (state is None or bn_x is None):
        raise ValueError("capture mode 'recompute_bn' needs a model with BatchNorm layers and bn_x, the "
                         "training inputs their statistics are recomputed from")
    return state


def set_mode(state: Optional[BNState], mode: str, collect: Callable[[], object]) -> None:
    """Make the layers of ``state`` (None: no BatchNorm, nothing to do) normalise the next forward pass over the
    evaluation data as capture ``mode`` does. For 'recompute_bn' that first runs ``collect()``, the forward pass
    over ``bn_x`` at the same weights, in the 'collect' phase that records the statistics."""
    if state is None:
        return
    if mode == "recompute_bn":
        state.phase = "collect"
        collect()
    state.phase = _PHASE[mode]
