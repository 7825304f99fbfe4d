"""The model zoo. Every model is an ``nn.Sequential`` so that capture can peel off its first (linear) layer."""

from __future__ import annotations

import torch
from torch import nn

from .scene import ModelSpec

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """A fresh, randomly initialised model (seed the global torch RNG before calling for reproducibility)."""
    n_in = 1
    for d in input_shape:
        n_in *= d
    layers: list[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    if spec.kind == "logistic":
        layers.append(nn.Linear(n_in, n_classes, bias=spec.bias))
        return nn.Sequential(*layers)
    width = n_in
    for h in spec.hidden:
        layers += [nn.Linear(width, h, bias=spec.bias), _ACTIVATIONS[spec.activation]()]
        width = h
    layers.append(nn.Linear(width, n_classes, bias=spec.bias))
    return nn.Sequential(*layers)


def loss_fn(kind: str, n_classes: int):
    """``(logits (..., n, C), targets (n,)) → mean loss``, batched over any leading dims via vmap."""
    if kind == "cross_entropy":
        return lambda out, y: nn.functional.cross_entropy(out, y)
    if kind == "mse":
        cache: dict = {}

        def mse(out, y):
            # The evaluation targets are the same tensor for every grid point: build their one-hot form once.
            key = (id(y), out.dtype, out.device)
            target = cache.get(key)
            if target is None or cache.get("y") is not y:
                target = nn.functional.one_hot(y, n_classes).to(out.dtype)
                cache.clear()
                cache.update({key: target, "y": y})
            return ((out - target) ** 2).mean()
        return mse
    raise ValueError(kind)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the parameters, by name."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}
