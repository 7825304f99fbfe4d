"""The Hessian of the loss the landscape shows, for Hessian directions and curvature maps."""

from __future__ import annotations

import torch

from ..config.scene import Scene
from ..landscape.curvature import HessianOperator
from ..train.data import bn_subset
from ..train.models import loss_fn
from ..train.training import initial_model


def hessian_operator(scene: Scene, data, device, dtype, sample_idx=None) -> HessianOperator:
    """Hessian-vector products of the loss the landscape shows, on the capture's device: on the fixed evaluation
    subset (its ``sample_idx`` samples with capture.data = 'samples', whose mean is the film's landscape), with
    BatchNorm as capture.mode says."""
    mode = scene.capture.mode
    bn_x = (torch.as_tensor(bn_subset(data, scene.capture.bn_samples, scene.data.eval_seed))
            if mode == "recompute_bn" else None)
    x, y = torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval)
    if sample_idx is not None:
        x, y = x[sample_idx], y[sample_idx]
    return HessianOperator(initial_model(scene, data, dtype), x, y, loss_fn(scene.training.loss, data.n_classes),
                           device, dtype, mode=mode, bn_x=bn_x)


def hessian_index(scene: Scene, traj) -> int:
    """Index into the captured steps of directions.hessian_step."""
    h = scene.directions.hessian_step
    return len(traj.steps) - 1 if h == "final" else list(traj.steps).index(h)
