"""A model's first linear layer, computed three times per centre instead of once per grid point.

When a ``Sequential`` model starts with a linear layer (``Linear`` or ``Conv``, after parameter-free ones such as
``Flatten``), that layer sees the same input at every grid point and its output is linear in its weights:
``f(x; c + a d1 + b d2) = f(x; c) + a f(x; d1) + b f(x; d2)``. The ``mlp`` and ``linear_first`` strategies start
from those three outputs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Optional

import torch
from torch import nn
from torch.func import functional_call

_LINEAR_FIRST = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class FirstLinear(NamedTuple):
    """A ``Sequential`` model cut at its first linear layer."""
    prefix: nn.Sequential  # the parameter-free modules before it
    name: str  # its name in the model ("1")
    first: nn.Module
    rest: nn.Sequential  # the modules after it, under their names in the full model


def split_first_linear(model: nn.Module) -> Optional[FirstLinear]:
    """The model cut at its first linear layer, or None when it is no ``Sequential`` that starts with one."""
    if not isinstance(model, nn.Sequential):
        return None
    children = list(model.named_children())
    k = 0
    while k < len(children) and not any(True for _ in children[k][1].parameters()) and \
            not any(True for _ in children[k][1].buffers()):
        k += 1
    if k >= len(children) or not isinstance(children[k][1], _LINEAR_FIRST):
        return None
    prefix = nn.Sequential(OrderedDict(children[:k]))
    name, first = children[k]
    # Keep the original child names so parameter names ("3.weight") are those of the full model.
    rest = nn.Sequential(OrderedDict(children[k + 1:]))
    return FirstLinear(prefix, name, first, rest)


def first_layer_outputs(split: FirstLinear, x: torch.Tensor, names: list[str], center: dict, d1: dict,
                        d2: dict) -> tuple[list[torch.Tensor], list[str]]:
    """``([f(x; c), f(x; d1), f(x; d2)], the parameter names of the rest of the model)``: the first layer's
    outputs for the centre and both directions, from the model's parameter ``names``."""
    x0 = split.prefix(x)
    fkeys = [k for k in names if k.startswith(split.name + ".")]

    def local(d):
        return {k[len(split.name) + 1:]: d[k] for k in fkeys}

    zs = [functional_call(split.first, local(p), (x0,)) for p in (center, d1, d2)]
    return zs, [k for k in names if k not in fkeys]
