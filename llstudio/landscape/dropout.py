"""Dropout during landscape capture (``capture.dropout``), with one fixed set of masks per captured landscape.

In eval mode dropout is the identity, and the landscape is that of the whole network (``capture.dropout = 'off'``,
the default). In train mode every forward pass draws fresh masks: evaluated that way, two neighbouring grid points
would see two different thinned networks and the surface would be noise, not a landscape. ``'fixed'`` keeps the
training-mode behaviour without the noise: each captured step draws ONE mask per dropout layer, from a generator
seeded with ``capture.dropout_seed`` and the step, and applies it at every grid point of that step. The landscape
is then the loss of one thinned network, a deterministic function of the weights, and captures are reproducible
and cacheable.

During capture every dropout layer (``nn.Dropout``, ``nn.Dropout1d/2d/3d``) is replaced by :class:`CaptureDropout`,
which multiplies its input by the mask set in the shared :class:`DropoutState` (the identity while none is set).
Masks are shaped for the evaluation batch, found by a probe forward pass (:func:`probe_shapes`): elementwise for
``nn.Dropout``, whole channels for the channel-wise kinds, scaled by ``1/(1-p)`` as torch does. Masks are drawn on
the CPU with numpy, so a CPU and a CUDA capture use the same ones. ``nn.AlphaDropout`` (SELU networks) is not
supported.

This module knows nothing of files, scenes or pixels.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from .swaps import modules_of_type, setting, swap_modules

DROPOUT = ("off", "fixed")

# Dropout kinds whose mask covers whole channels, and the input dimensions at which torch takes an input as one
# unbatched sample (C, *spatial) rather than a batch (N, C, *spatial). Dropout2d always takes a batch (3-D inputs
# as (N, C, L), torch's historical behaviour).
_CHANNELWISE = {nn.Dropout1d: 2, nn.Dropout2d: None, nn.Dropout3d: 4}
_UNSUPPORTED = (nn.AlphaDropout, nn.FeatureAlphaDropout)


class UnsupportedDropout(ValueError):
    """A dropout layer that fixed masks cannot reproduce."""


class DropoutState:
    """Shared by all :class:`CaptureDropout` layers of one model: the masks in use (layer name → tensor, or None:
    no dropout), and the input shapes recorded by the last probe pass."""

    def __init__(self, names: list[str], ps: list[float], channelwise: list[Optional[type]]):
        self.names, self.ps, self.channelwise = names, ps, channelwise
        self.masks: Optional[dict[str, torch.Tensor]] = None
        self.shapes: Optional[dict[str, tuple[int, ...]]] = None  # set while probing

    def using(self, masks: Optional[dict[str, torch.Tensor]]):
        """Apply ``masks`` (None: no dropout) inside the block; the previous masks afterwards."""
        return setting(self, "masks", masks)


class CaptureDropout(nn.Module):
    """A dropout layer for capture: ``x * mask`` with the state's mask for this layer, else ``x``. The mask has the
    evaluation batch's shape (or broadcasts to it), so it works inside vmap over grid points."""

    def __init__(self, drop: nn.Module, state: DropoutState, name: str):
        super().__init__()
        self.p = float(drop.p)
        self.state = state
        self.layer = name  # not 'name': that is a common attribute of user modules' children

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        st = self.state
        if st.shapes is not None:
            st.shapes[self.layer] = tuple(x.shape)
        if st.masks is None:
            return x
        return x * st.masks[self.layer]

    def feature_major_(self, h: torch.Tensor) -> torch.Tensor:
        """In place on the MLP strategy's feature-major activations, (features, n) or (points, features, n); the
        mask is (n, features)."""
        if self.state.masks is None:
            return h
        return h.mul_(self.state.masks[self.layer].T)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def swap_dropout(model: nn.Module) -> Optional[DropoutState]:
    """Replace every dropout layer of ``model`` in place by a :class:`CaptureDropout`; None when it has none.

    Raises :class:`UnsupportedDropout` for kinds that a multiplicative mask cannot reproduce (AlphaDropout)."""
    targets = modules_of_type(model, nn.modules.dropout._DropoutNd)
    bad = [f"{name} ({type(m).__name__})" for name, m in targets if isinstance(m, _UNSUPPORTED)]
    if bad:
        raise UnsupportedDropout(f"fixed dropout masks support nn.Dropout and nn.Dropout1d/2d/3d, not {', '.join(bad)}")
    if not targets:
        return None
    state = DropoutState([n for n, _ in targets], [float(m.p) for _, m in targets],
                         [next((k for k in _CHANNELWISE if isinstance(m, k)), None) for _, m in targets])
    swap_modules(model, state.names, lambda name, drop: CaptureDropout(drop, state, name))
    return state


def probe_shapes(state: DropoutState, forward) -> dict[str, tuple[int, ...]]:
    """The input shape of every dropout layer in one call of ``forward()`` (a forward pass of the evaluation
    batch), run without dropout. Shapes do not depend on the weights, so any weights do."""
    state.shapes = {}
    try:
        with state.using(None), torch.no_grad():
            forward()
        shapes = state.shapes
    finally:
        state.shapes = None
    missing = [n for n in state.names if n not in shapes]
    if missing:
        raise ValueError(f"dropout layers never called in a forward pass: {', '.join(missing)}")
    return shapes


def mask_seed(seed: int, step: Union[int, str]) -> list[int]:
    """numpy seed entropy of the masks of captured step ``step``, or of the one plane shared by every step
    (``step = 'plane'``: a fixed frame measured on the evaluation subset)."""
    return [int(seed), 4, 0] if step == "plane" else [int(seed), 3, int(step)]


def draw_masks(state: DropoutState, shapes: dict[str, tuple[int, ...]], entropy: list[int],
               device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """One mask per dropout layer, layer name → tensor broadcastable to the layer's input shape (``shapes``).

    Drawn in the order of the model's layers from ``numpy.random.default_rng(entropy)``: entries are 0 with
    probability p and ``1/(1-p)`` otherwise (p = 1: all 0), as ``nn.Dropout`` scales them in training; channel-wise
    kinds draw one value per (sample, channel) of an (N, C, *spatial) input (per channel of an unbatched one).
    """
    rng = np.random.default_rng(entropy)
    out = {}
    for name, p, channelwise in zip(state.names, state.ps, state.channelwise):
        shape = shapes[name]
        if channelwise is not None:
            lead = 1 if len(shape) == _CHANNELWISE[channelwise] else 2  # (C, 1, ...) unbatched, (N, C, 1, ...)
            shape = shape[:lead] + (1,) * (len(shape) - lead)
        keep = rng.random(shape) >= p
        scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
        out[name] = torch.as_tensor(keep * scale).to(device=device, dtype=dtype)
    return out
