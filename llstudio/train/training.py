"""Run the training described by a scene and keep the weights at the steps to be captured."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from .data import Dataset
from .models import build_model, loss_fn
from ..config.scene import Scene
from ..config.weight_refs import parse_weight_ref


@dataclass(frozen=True)
class Trajectory:
    """What training leaves behind for capture.

    ``steps`` (K,) captured step numbers; ``weights[k]`` the parameters after ``steps[k]`` updates (CPU tensors by
    name); ``train_loss`` (T,) the mini-batch loss of each update; ``batches`` (T, batch) sample indices used;
    ``buffers[k]`` the floating-point buffers (BatchNorm running statistics) at ``steps[k]``, empty dicts for
    models without any. A run filmed from ``[training] source`` has no sample indices (``batches`` is empty): its
    recorded mini-batches are ``step_batches[k]``, the (x, y) arrays of the update that follows ``steps[k]`` (the
    last update's for the last step), and its ``train_loss`` is empty when nothing recorded it.
    """

    steps: np.ndarray
    weights: list[dict[str, torch.Tensor]]
    train_loss: np.ndarray
    batches: np.ndarray
    buffers: list[dict[str, torch.Tensor]] = field(default_factory=list)
    step_batches: list = field(default_factory=list)


def _optimizer(scene: Scene, params):
    t = scene.training.for_run()
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "momentum":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    raise ValueError(t.optimizer)


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> np.ndarray:
    """(steps, batch) sample indices: reshuffled every epoch from a seeded generator, last partial batch dropped."""
    g = torch.Generator().manual_seed(seed)
    b = min(batch_size, n)
    per_epoch = n // b
    out = []
    while len(out) < steps:
        perm = torch.randperm(n, generator=g).numpy()
        out.extend(perm[i * b:(i + 1) * b] for i in range(per_epoch))
    return np.stack(out[:steps])


def initial_model(scene: Scene, data: Dataset, dtype: torch.dtype) -> torch.nn.Module:
    """The model at step 0, seeded by ``training.init_seed`` (default ``training.seed``), with the scalar weights
    named in ``training.init`` set to their values. With several runs, give the run's own scene
    (``scene.model_copy(update={"training": scene.training.for_run(name)})``); otherwise the primary run's."""
    t = scene.training.for_run()
    torch.manual_seed(t.seed if t.init_seed is None else t.init_seed)
    model = build_model(scene.model, data.input_shape, data.n_classes, scene.source or "<scene>").to(dtype)
    if t.init:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for ref, value in t.init.items():
                name, index = parse_weight_ref(ref)
                params[name][index] = value
    return model


def _frozen_entries(model: torch.nn.Module, train_only: Optional[list[str]]) -> list:
    """For ``training.train_only``: (parameter, mask of entries that train, their initial values) for every
    parameter; empty when everything trains."""
    if not train_only:
        return []
    params = dict(model.named_parameters())
    masks = {k: torch.zeros_like(v, dtype=torch.bool) for k, v in params.items()}
    for ref in train_only:
        name, index = parse_weight_ref(ref)
        masks[name][index] = True
    return [(p, masks[k], p.detach().clone()) for k, p in params.items()]


def train(scene: Scene, data: Dataset, device: torch.device, dtype: torch.dtype,
          on_step: Optional[Callable[[int], None]] = None) -> Trajectory:
    """Train from the seeded initial weights; snapshot the weights at every captured step.

    Diverging runs are not stopped: a NaN/inf loss is recorded and the landscape shows it (clipped, with a warning).
    """
    t = scene.training.for_run()
    model = initial_model(scene, data, dtype).to(device)
    model.train()
    opt = _optimizer(scene, model.parameters())
    sched = None
    if t.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, t.steps) / t.steps)))
    criterion = loss_fn(t.loss, data.n_classes)
    x_all = torch.as_tensor(data.x_train, dtype=dtype, device=device)
    y_all = torch.as_tensor(data.y_train, device=device)
    batches = batch_order(len(x_all), t.batch_size, t.steps, t.seed)
    capture_at = set(scene.captured_steps())
    steps, weights, buffers = [], [], []
    # Kept on the device: a .item() per step would synchronise a GPU every update.
    losses = torch.empty(t.steps, dtype=dtype, device=device)

    def snapshot(step: int):
        if step in capture_at:
            steps.append(step)
            weights.append({k: v.detach().to("cpu", copy=True) for k, v in model.named_parameters()})
            buffers.append({k: v.detach().to("cpu", copy=True) for k, v in model.named_buffers()
                            if v.is_floating_point()})

    snapshot(0)
    frozen = _frozen_entries(model, t.train_only)
    idx_all = torch.as_tensor(batches, device=device)
    for s in range(t.steps):
        idx = idx_all[s]
        opt.zero_grad(set_to_none=True)
        loss = criterion(model(x_all[idx]), y_all[idx])
        loss.backward()
        opt.step()
        if frozen:
            # Put back what must not move after the step rather than masking gradients: weight decay and momentum
            # would otherwise still move it.
            with torch.no_grad():
                for p, keep, value in frozen:
                    torch.where(keep, p, value, out=p)
        if sched is not None:
            sched.step()
        losses[s] = loss.detach()
        snapshot(s + 1)
        if on_step is not None:
            on_step(s + 1)
    return Trajectory(np.array(steps), weights, losses.cpu().numpy(), batches, buffers)
