"""Wide linear layers during landscape capture: three products shared by every grid point of a batch.

A linear layer's output is linear in its weights: ``(c + a d1 + b d2) h = c h + a (d1 h) + b (d2 h)``, and so is
its bias. The evaluator already uses this for a model's first layer, whose input ``h`` is the same at every grid
point. Deeper layers see a different ``h`` at every point, but the identity still holds point by point, and the
three weight matrices ``c``, ``d1``, ``d2`` are the same for all of them.

That matters when a grid point pushes few rows through a wide layer: the classifier of a conv net evaluated on a
few samples (the small MNIST CNN's 9216 → 128 layer holds 1.18M of its 1.2M weights and sees 8 rows a point in
``benchmarks/capture.py``). Forming that layer's weights at every point reads and writes megabytes per point, and
the per-point product that follows is a matrix-vector product in all but name. A :class:`SharedLinear` instead
multiplies the rows of every point of the batch at once by the stacked weights ``[c; d1; d2]`` (3·out, in): one
large matrix product whose weights are read once per batch, then each point combines its three outputs with its
own ``(a, b)``. Three times the multiply-adds, no per-point weights.

Whether a layer runs this way is the evaluator's decision, made from the device and the rows a point sends
through it (``LandscapeEvaluator.SHARED_LINEAR_ROWS``: on the 2-core CPU target per-point weights in reused
buffers measured faster, so shared form is for GPUs); a
disarmed :class:`SharedLinear` is an ``nn.Linear`` (same parameter names, same maths), so curvature, probes and
``functional_call`` with per-point weights see no difference.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from .swaps import swap_modules


class SharedLinearState:
    """Shared by the :class:`SharedLinear` layers of one model while the evaluator runs a batch.

    ``armed``: layer name → (stacked weights (3·out, in), stacked biases (3, out) or None) for the layers that
    run in shared form now; None or a missing name: plain ``nn.Linear``. ``coef``: the grid point's ``(a, b)``,
    (2,), a batched tensor inside ``vmap``.
    """

    def __init__(self):
        self.armed: Optional[dict[str, tuple[torch.Tensor, Optional[torch.Tensor]]]] = None
        self.coef: Optional[torch.Tensor] = None


class SharedLinear(nn.Module):
    """An ``nn.Linear`` that, when armed, computes a grid point's output from products shared by the batch."""

    def __init__(self, lin: nn.Linear, state: SharedLinearState, name: str):
        super().__init__()
        # The same Parameter objects under the same attribute names: parameter names do not change.
        self.weight = lin.weight
        self.bias = lin.bias
        self.in_features, self.out_features = lin.in_features, lin.out_features
        self.state = state
        self.layer = name  # not 'name': that is a common attribute of user modules' children

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        armed = self.state.armed
        if armed is None or self.layer not in armed:
            return F.linear(h, self.weight, self.bias)
        wcat, bcat = armed[self.layer]
        z = F.linear(h, wcat).unflatten(-1, (3, self.out_features))
        a, b = self.state.coef[0], self.state.coef[1]
        y = z[..., 0, :] + a * z[..., 1, :] + b * z[..., 2, :]
        if bcat is not None:
            y = y + (bcat[0] + a * bcat[1] + b * bcat[2])
        return y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def swap_linear(model: nn.Module, names: list[str]) -> Optional[SharedLinearState]:
    """Replace the ``nn.Linear`` layers of ``model`` called ``names`` in place by :class:`SharedLinear` s (all
    disarmed); None when ``names`` is empty."""
    if not names:
        return None
    state = SharedLinearState()

    def make(name: str, lin: nn.Module) -> SharedLinear:
        if not isinstance(lin, nn.Linear):
            raise TypeError(f"{name} is a {type(lin).__name__}, not an nn.Linear")
        return SharedLinear(lin, state, name)

    swap_modules(model, names, make)
    return state
