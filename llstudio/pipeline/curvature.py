"""The curvature stage (``[capture.curvature]``): min/max Hessian eigenvalue maps of every captured step, resumed
row by row through the store."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..landscape.curvature import HessianOperator, curvature_grid
from ..landscape.result import CurvatureMaps
from ..train.training import Trajectory
from .coordinates import curvature_axes
from .context import CaptureContext
from .grid import batch_of, buffers_at, grid_origin
from .hessian import hessian_operator
from .plane import Plane


class _MapCapture:
    """One capture's Hessian operator and the curvature grid it walks."""

    def __init__(self, ctx: CaptureContext, plane: Plane, traj: Trajectory, sample_idx: Optional[np.ndarray]):
        self.ctx, self.plane, self.traj = ctx, plane, traj
        self.ca, self.cb = curvature_axes(ctx.scene, plane.stored.alphas, plane.stored.betas)
        self.op: HessianOperator = hessian_operator(ctx.scene, ctx.data, ctx.device, ctx.dtype, sample_idx)
        self.initial_buffers = dict(self.op.buffers)

    def compute(self, k: int, advance) -> dict:
        """The map of captured step index ``k``, resuming a partial one from the store."""
        ctx, step = self.ctx, int(self.ctx.steps[k])
        spec = ctx.scene.capture.curvature
        if ctx.scene.capture.data == "batch":
            batch = batch_of(self.traj, step)
            self.op.set_data(torch.as_tensor(ctx.data.x_train[batch]), torch.as_tensor(ctx.data.y_train[batch]))
        # The step's own BatchNorm statistics (eval mode), as the loss capture uses.
        self.op.set_buffers(buffers_at(ctx, self.traj, None if ctx.fixed else k, self.initial_buffers))
        partial = ctx.cdir.load_curvature(step) if ctx.use_cache else None
        if partial is not None and partial["done"].shape != (len(self.ca), len(self.cb)):
            partial = None
        scale = ctx.scales[k]
        return curvature_grid(self.op, grid_origin(ctx, self.plane, self.traj, k), self.plane.d1, self.plane.d2,
                              self.ca * scale, self.cb * scale, spec.tolerance, spec.max_iterations,
                              seed=ctx.scene.directions.seed, state=partial, on_point=lambda: advance(1),
                              on_row=lambda st, s=step: ctx.cdir.save_curvature(s, st))


def _capture_maps(ctx: CaptureContext, mc: _MapCapture, todo: list) -> None:
    spec, steps, one = ctx.scene.capture.curvature, ctx.steps, ctx.one_plane
    ctx.progress.log(f"curvature: {1 if one else len(todo)} map(s) of {len(mc.ca)}x{len(mc.cb)} points for "
                     f"{len(todo)} of {len(steps)} steps ({mc.op.n_params:,} parameters, tolerance "
                     f"{spec.tolerance:g})")
    done_map = None
    if one:  # a complete map of any step is the map of all of them
        done_map = next((ctx.cdir.load_curvature(s) for s in steps if ctx.use_cache and ctx.cdir.has_curvature(s)),
                        None)
    with ctx.progress.stage("curvature", (1 if one else len(todo)) * len(mc.ca) * len(mc.cb), "points") as advance:
        for k in todo:
            result = done_map if done_map is not None else mc.compute(k, advance)
            if one:
                done_map = result
            step = int(steps[k])
            ctx.cdir.save_curvature(step, result)
            bad = int((~result["converged"]).sum())
            if bad:
                ctx.progress.log(f"warning: curvature at step {step}: {bad} of {result['done'].size} points did "
                                 "not converge or are not finite; they are NaN (raise max_iterations or tolerance)")


def capture_curvature(ctx: CaptureContext, plane: Plane, traj: Trajectory,
                      sample_idx: Optional[np.ndarray]) -> CurvatureMaps:
    """The curvature maps of every captured step, computing the missing ones."""
    steps = ctx.steps
    todo = [k for k, s in enumerate(steps) if not (ctx.use_cache and ctx.cdir.has_curvature(s))]
    if todo:
        _capture_maps(ctx, _MapCapture(ctx, plane, traj, sample_idx), todo)
    else:
        ctx.progress.log(f"curvature: all {len(steps)} maps reused from cache {ctx.cdir.path}")
    loaded = [ctx.cdir.load_curvature(int(s)) for s in steps]
    ca, cb = curvature_axes(ctx.scene, plane.stored.alphas, plane.stored.betas)
    return CurvatureMaps(ca, cb, np.stack([z["curv_min"] for z in loaded]), np.stack([z["curv_max"] for z in loaded]))
