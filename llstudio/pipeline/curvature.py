"""The curvature stage (``[capture.curvature]``): min/max Hessian eigenvalue maps of every captured step, resumed
row by row through the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..errors import CacheError
from ..landscape.curvature import HessianOperator, curvature_grid
from ..landscape.result import CurvatureMaps
from ..train.training import Trajectory
from .coordinates import curvature_axes
from .context import CaptureContext
from .grid import batch_data, buffers_at, grid_origin
from .hessian import hessian_operator
from .plane import Plane
from .shares import each, rounds


@dataclass(frozen=True)
class CurvatureWork:
    """The maps a capture lacks, from rank 0's store: ``todo`` captured step indices, ``partial`` their partial
    maps (index → arrays, resumed), ``done_map`` a complete map that serves every step (one shared plane only)."""

    todo: list
    partial: dict
    done_map: Optional[dict]


def curvature_work(ctx: CaptureContext) -> CurvatureWork:
    """What the store lacks (on rank 0, which holds it). A corrupt map (unreadable, not its checksum, of another
    resolution) counts as missing: reported once, moved aside and recomputed."""
    steps, cdir, shape = ctx.steps, ctx.cdir, ctx.scene.capture.curvature.shape
    todo = [k for k, s in enumerate(steps) if not (ctx.use_cache and cdir.has_curvature(s, shape))]
    partial = {}
    for k in todo:
        z = cdir.load_curvature(int(steps[k]), shape) if ctx.use_cache else None
        if z is not None:
            partial[k] = z
    done_map = None
    if ctx.one_plane and todo:  # a complete map of any step is the map of all of them
        done_map = next((cdir.load_curvature(s, shape) for s in steps if ctx.use_cache and
                         cdir.has_curvature(s, shape)), None)
    return CurvatureWork(todo, partial, done_map)


class _MapCapture:
    """One capture's Hessian operator and the curvature grid it walks."""

    def __init__(self, ctx: CaptureContext, plane: Plane, traj: Trajectory, sample_idx: Optional[np.ndarray]):
        self.ctx, self.plane, self.traj = ctx, plane, traj
        self.ca, self.cb = curvature_axes(ctx.scene, plane.stored.alphas, plane.stored.betas)
        self.op: HessianOperator = hessian_operator(ctx.scene, ctx.data, ctx.device, ctx.dtype, sample_idx)
        self.initial_buffers = dict(self.op.buffers)

    def compute(self, k: int, partial: Optional[dict], advance) -> dict:
        """The map of captured step index ``k``, resuming ``partial`` (from the store); rank 0 stores it after
        every row."""
        ctx, step = self.ctx, int(self.ctx.steps[k])
        spec = ctx.scene.capture.curvature
        if ctx.scene.capture.data == "batch":
            self.op.set_data(*batch_data(ctx, self.traj, k))
        # The step's own BatchNorm statistics (eval mode), as the loss capture uses.
        self.op.set_buffers(buffers_at(ctx, self.traj, None if ctx.fixed else k, self.initial_buffers))
        if partial is not None and partial["done"].shape != (len(self.ca), len(self.cb)):
            partial = None
        scale = ctx.scales[k]
        on_row = (lambda st, s=step: ctx.cdir.save_curvature(s, st)) if ctx.group.is_root else None
        return curvature_grid(self.op, grid_origin(ctx, self.plane, self.traj, k), self.plane.d1, self.plane.d2,
                              self.ca * scale, self.cb * scale, spec.tolerance, spec.max_iterations,
                              seed=ctx.scene.directions.seed, state=partial, on_point=lambda: advance(1),
                              on_row=on_row)


def _store_map(ctx: CaptureContext, k: int, result: dict) -> None:
    step = int(ctx.steps[k])
    ctx.cdir.save_curvature(step, result)
    bad = int((~result["converged"]).sum())
    if bad:
        ctx.progress.log(f"warning: curvature at step {step}: {bad} of {result['done'].size} points did "
                         "not converge or are not finite; they are NaN (raise max_iterations or tolerance)")


def _capture_maps(ctx: CaptureContext, mc: _MapCapture, work: CurvatureWork) -> None:
    """The missing maps. Shared between the ranks by steps, in rounds of one per rank: a point's eigenvalues
    start from its neighbour's eigenvectors and from one random stream per map, so a map's points cannot be
    split without changing its numbers. One shared plane gives one map, computed on rank 0."""
    spec, steps, one, group, todo = ctx.scene.capture.curvature, ctx.steps, ctx.one_plane, ctx.group, work.todo
    ctx.progress.log(f"curvature: {1 if one else len(todo)} map(s) of {len(mc.ca)}x{len(mc.cb)} points for "
                     f"{len(todo)} of {len(steps)} steps ({mc.op.n_params:,} parameters, tolerance "
                     f"{spec.tolerance:g})")
    with ctx.progress.stage("curvature", (1 if one else len(todo)) * len(mc.ca) * len(mc.cb), "points") as advance:
        if one:
            k = todo[0]
            result = work.done_map if work.done_map is not None else mc.compute(k, work.partial.get(k), advance)
            for k in todo:
                _store_map(ctx, k, result)
            return
        for ks in rounds(todo, group.world):
            mine = ks[group.rank] if group.rank < len(ks) else None
            results = each(group, lambda: None if mine is None else mc.compute(mine, work.partial.get(mine), advance))
            if group.is_root:
                for k, result in zip(ks, results):
                    _store_map(ctx, k, result)
            advance((len(ks) - 1) * len(mc.ca) * len(mc.cb))  # the other ranks' maps of the round


def capture_curvature(ctx: CaptureContext, plane: Plane, traj: Trajectory, sample_idx: Optional[np.ndarray],
                      work: CurvatureWork) -> Optional[CurvatureMaps]:
    """The curvature maps of every captured step, computing the missing ones (``work``, from rank 0); the maps on
    rank 0, None on the other ranks."""
    steps, group = ctx.steps, ctx.group
    if not work.todo:
        if group.is_root:
            ctx.progress.log(f"curvature: all {len(steps)} maps reused from cache {ctx.cdir.path}")
    elif ctx.one_plane:  # one map: rank 0 alone
        each(group, lambda: _capture_maps(ctx, _MapCapture(ctx, plane, traj, sample_idx), work)
             if group.is_root else None, share=False)
    else:
        mc = each(group, lambda: _MapCapture(ctx, plane, traj, sample_idx), share=False)
        _capture_maps(ctx, mc, work)
    if not group.is_root:
        return None
    loaded = [ctx.cdir.load_curvature(int(s), ctx.scene.capture.curvature.shape) for s in steps]
    if any(z is None for z in loaded):  # removed or damaged by someone else since it was written
        raise CacheError(f"{ctx.cdir.path}: a curvature map is missing after the capture; render again")
    ca, cb = curvature_axes(ctx.scene, plane.stored.alphas, plane.stored.betas)
    return CurvatureMaps(ca, cb, np.stack([z["curv_min"] for z in loaded]), np.stack([z["curv_max"] for z in loaded]))
