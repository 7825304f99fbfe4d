"""The loss-capture stage: the landscape of every captured step (or the one plane that serves them all), the loss
at each step's own weights, and each further run's losses; resumable step by step through the store."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..errors import SceneError
from ..landscape.directions import cosine, zero_entries
from ..landscape.dropout import UnsupportedDropout, mask_seed
from ..landscape.evaluator import LandscapeEvaluator
from ..train.data import bn_subset
from ..train.models import has_batch_norm, loss_fn, state_buffers
from ..train.training import Trajectory, initial_model
from .context import CaptureContext
from .plane import Plane
from .shares import each, rounds, rows_of

ZERO = torch.zeros(1, dtype=torch.float64)  # (alpha, beta) of a grid's centre


def buffers_at(ctx: CaptureContext, traj: Trajectory, k: Optional[int], initial_buffers: dict) -> dict:
    """BatchNorm running statistics at captured step ``k``, or at the fixed plane's centre (``k`` None)."""
    if k is not None:
        return traj.buffers[k] if traj.buffers else {}
    c = ctx.scene.directions.center
    if c == "initial" and ctx.scene.training.source is not None and traj.buffers and int(traj.steps[0]) == 0:
        return traj.buffers[0]  # recorded at step 0: a fresh model's statistics are not the run's
    if c == "initial" or not traj.buffers:
        return initial_buffers
    return traj.buffers[-1 if c == "final" else list(traj.steps).index(c)]


def batch_of(traj: Trajectory, step: int) -> np.ndarray:
    """The mini-batch (sample indices) of training step ``step`` (the last one past the end)."""
    return traj.batches[min(int(step), len(traj.batches) - 1)]


def batch_data(ctx: CaptureContext, traj: Trajectory, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of the mini-batch that follows captured step index ``k``: recorded with the run (a run from
    training.source), else the training samples it drew."""
    if traj.step_batches:
        x, y = traj.step_batches[k]
        return torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
    batch = batch_of(traj, ctx.steps[k])
    return torch.as_tensor(ctx.data.x_train[batch]), torch.as_tensor(ctx.data.y_train[batch])


class StepCapture:
    """The evaluator of one capture and what its landscapes need: the plane, the primary run, the data."""

    def __init__(self, ctx: CaptureContext, plane: Plane, traj: Trajectory, sample_idx: Optional[np.ndarray]):
        self.ctx, self.plane, self.traj = ctx, plane, traj
        scene, data = ctx.scene, ctx.data
        model = initial_model(scene, data, ctx.dtype)
        mode = scene.capture.mode
        if mode == "recompute_bn" and not has_batch_norm(model):  # a custom model: known only once built
            raise SceneError(ctx.source(), [("capture.mode", "'recompute_bn' recomputes BatchNorm statistics, but "
                                             "the model has no BatchNorm layer; use capture.mode = 'eval'")])
        bn_x = (torch.as_tensor(bn_subset(data, scene.capture.bn_samples, scene.data.eval_seed))
                if mode == "recompute_bn" else None)
        self.initial_buffers = state_buffers(model)
        x, y = torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval)
        if sample_idx is not None:
            x, y = x[sample_idx], y[sample_idx]
        self.n_samples = len(y)
        try:
            self.ev = LandscapeEvaluator(model, x, y, loss_fn(scene.training.loss, data.n_classes), plane.d1,
                                         plane.d2, ctx.device, ctx.dtype, scene.capture.memory_mb, mode=mode,
                                         bn_x=bn_x, dropout=scene.capture.dropout)
        except UnsupportedDropout as exc:
            raise SceneError(ctx.source(), [("capture.dropout", f"{exc}; use capture.dropout = 'off'")]) from None
        if scene.capture.dropout == "fixed" and not self.ev.has_dropout:
            ctx.progress.log("warning: capture.dropout = 'fixed', but the model has no dropout layer: the landscape "
                             "is the same as with 'off'")

    def masks(self, k: Optional[int]) -> dict:
        """Dropout masks of captured step index ``k``, or of the shared plane (``k`` None); {} without dropout."""
        step = "plane" if k is None else int(self.ctx.steps[k])
        return self.ev.dropout_masks(mask_seed(self.ctx.scene.capture.dropout_seed, step))

    def step_buffers(self, k: Optional[int]) -> dict:
        return buffers_at(self.ctx, self.traj, k, self.initial_buffers)

    def grid_center(self, k: Optional[int]) -> dict:
        """Weights at grid point (0, 0): the plane centre (fixed frame) or step k's weights; for named weights,
        with those entries at zero so that the grid's coordinates are their values."""
        return grid_origin(self.ctx, self.plane, self.traj, k)

    def landscape(self, k: Optional[int], drop: dict, rows: slice = slice(None)) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """(loss (nx, ny), per-sample loss (S, nx, ny) or None) of captured step index ``k`` (None: the shared
        plane) on its axes times its zoom, with the dropout masks ``drop``; per-sample captures show the samples'
        mean. ``rows``: only those rows of the grid (alphas), e.g. one rank's share."""
        scale = 1.0 if k is None else self.ctx.scales[k]
        a, b = self.plane.stored.alphas[rows] * scale, self.plane.stored.betas * scale
        if len(a) == 0:  # more ranks than rows
            return np.empty((0, len(b))), (np.empty((self.n_samples, 0, len(b))) if self.ctx.per_sample else None)
        center = self.grid_center(k)
        buffers = self.step_buffers(None if k is None or self.ctx.fixed else k)
        if not self.ctx.per_sample:
            return self.ev.grid(center, a, b, buffers, masks=drop), None
        each = self.ev.grid(center, a, b, buffers, reduction="none", masks=drop)
        return each.mean(axis=0), each

    def center_loss(self, k: int, drop: dict) -> tuple[float, Optional[np.ndarray]]:
        """The loss at step k's own weights (and per sample): the grid centre in the follow frame, the path point
        in the fixed frame (off the plane in general, so not a value of the grid)."""
        w, buffers = self.traj.weights[k], self.step_buffers(k)
        if not self.ctx.per_sample:
            return float(self.ev.evaluate(w, ZERO, ZERO, buffers, masks=drop)[0]), None
        each = self.ev.evaluate(w, ZERO, ZERO, buffers, reduction="none", masks=drop)[0].cpu().numpy()
        return float(each.astype(np.float64).mean()), each


def grid_origin(ctx: CaptureContext, plane: Plane, traj: Trajectory, k: Optional[int]) -> dict:
    """Weights at grid point (0, 0) of captured step index ``k`` (any ``k`` in the fixed frame)."""
    c = plane.origin if ctx.fixed else traj.weights[k]
    weights = ctx.scene.directions
    return zero_entries(c, weights.weights) if weights.kind == "weights" else c


def _describe(ctx: CaptureContext, sc: StepCapture, todo: list) -> str:
    scene, plane = ctx.scene, sc.plane
    loss_on = {"eval": "the fixed evaluation subset", "batch": "mini-batches",
               "samples": f"{sc.n_samples} samples, one landscape each"}[scene.capture.data]
    return (f"capture: {1 if ctx.one_plane else len(todo)} landscape(s) for {len(todo)} of {len(ctx.steps)} steps "
            f"on {ctx.device} ({len(plane.stored.alphas)}x{len(plane.stored.betas)} grid, {sc.ev.strategy} "
            f"strategy, {scene.capture.mode} mode, {'fixed dropout masks' if sc.ev.has_dropout else 'dropout off'}, "
            f"cos(d1, d2) = {cosine(plane.d1, plane.d2):+.3f}, {scene.directions.frame} frame, loss on {loss_on}"
            + (f", zoom x{scene.grid.zoom:g}" if scene.grid.zoom != 1.0 else "") + ")")


def _shared_plane(ctx: CaptureContext, sc: StepCapture, missing: bool) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The one landscape that serves every step, from the store (rank 0; None elsewhere), or computed, its rows
    split between the ranks, and stored."""
    if not missing:
        arrays = ctx.cdir.load_arrays("plane") if ctx.group.is_root else {"loss": None}
        return arrays["loss"], arrays.get("sample_loss")
    nx, ny = len(sc.plane.stored.alphas), len(sc.plane.stored.betas)
    with ctx.progress.stage("capture", nx * ny, "points") as advance:
        plane, samples = _split_landscape(ctx, sc, None, sc.masks(None))
        advance(nx * ny)
    if ctx.group.is_root:
        ctx.cdir.save_arrays("plane", {"loss": plane, **({"sample_loss": samples} if ctx.per_sample else {})})
    return plane, samples


def _split_landscape(ctx: CaptureContext, sc: StepCapture, k: Optional[int], drop: dict):
    """``sc.landscape(k, drop)`` with its rows split between the ranks and joined again (on every rank; a point's
    value does not depend on the points evaluated with it, so the join equals the whole grid)."""
    parts = each(ctx.group, lambda: sc.landscape(k, drop, rows_of(ctx.group, len(sc.plane.stored.alphas))))
    if len(parts) == 1:
        return parts[0]
    grid = np.concatenate([p[0] for p in parts], axis=0)
    return grid, (np.concatenate([p[1] for p in parts], axis=1) if ctx.per_sample else None)


def _use_step_data(ctx: CaptureContext, sc: StepCapture, k: int) -> None:
    if ctx.scene.capture.data == "batch":
        sc.ev.set_data(*batch_data(ctx, sc.traj, k))


def _step(ctx: CaptureContext, sc: StepCapture, k: int) -> tuple:
    """(grid, per-sample grid, centre loss, per-sample centre loss) of captured step index ``k``, its own plane."""
    _use_step_data(ctx, sc, k)
    drop = sc.masks(k)
    return (*sc.landscape(k, drop), *sc.center_loss(k, drop))


def _save(ctx: CaptureContext, k: int, grid, grid_samples, center, center_samples) -> None:
    if ctx.per_sample:
        ctx.cdir.save_step(ctx.steps[k], grid, center, grid_samples, center_samples)
    else:
        ctx.cdir.save_step(ctx.steps[k], grid, center)


def _path_losses(ctx: CaptureContext, sc: StepCapture, todo: list, grid, grid_samples) -> None:
    """Store the shared plane's landscape as each step's, with the loss at the step's own weights."""
    drop = sc.masks(None)  # the shared plane's masks
    with ctx.progress.stage("path", len(todo), "points") as advance:
        for k in todo:
            _save(ctx, k, grid, grid_samples, *sc.center_loss(k, drop))
            advance(1)


def capture_steps(ctx: CaptureContext, sc: StepCapture, todo: list, plane_missing: bool = True) -> None:
    """Capture and store the captured step indices ``todo`` (``plane_missing``: the shared plane's landscape,
    when one serves every step, is not in the store). Shared between the ranks: the shared plane's rows; else the
    steps in rounds of one per rank (rank 0 stores each round as it arrives), the steps of a short last round
    each with its rows split. Rank 0 alone computes the loss at each step's own weights on a shared plane."""
    group, one = ctx.group, ctx.one_plane
    ctx.progress.log(_describe(ctx, sc, todo))
    grid_size = len(sc.plane.stored.alphas) * len(sc.plane.stored.betas)
    if one:
        grid, grid_samples = _shared_plane(ctx, sc, plane_missing)
        each(group, lambda: _path_losses(ctx, sc, todo, grid, grid_samples) if group.is_root else None, share=False)
        return
    rounds_ = rounds(todo, group.world)
    short = rounds_.pop() if rounds_ and len(rounds_[-1]) < group.world else []
    with ctx.progress.stage("capture", len(todo) * grid_size, "points") as advance:
        for ks in rounds_:
            results = each(group, lambda: _step(ctx, sc, ks[group.rank]))
            for k, result in zip(ks, results):
                if group.is_root:
                    _save(ctx, k, *result)
            advance(len(ks) * grid_size)
        for k in short:
            _use_step_data(ctx, sc, k)
            drop = sc.masks(k)
            grid, grid_samples = _split_landscape(ctx, sc, k, drop)
            center = each(group, lambda: sc.center_loss(k, drop) if group.is_root else None, share=False)
            if group.is_root:
                _save(ctx, k, grid, grid_samples, *center)
            advance(grid_size)


def capture_run_losses(ctx: CaptureContext, sc: StepCapture, trajs: dict, names: list) -> None:
    """Each further run's loss at its own weights at every captured step (one small store entry per run)."""
    # Several runs imply the evaluation subset (scene cross-check), which the evaluator holds unless a mini-batch
    # capture replaced it.
    sc.ev.set_data(torch.as_tensor(ctx.data.x_eval), torch.as_tensor(ctx.data.y_eval))
    drop = sc.masks(None)  # runs share one fixed plane on the evaluation subset: its masks
    for n in names:
        t = trajs[n]
        losses = np.array([float(sc.ev.evaluate(w, ZERO, ZERO, t.buffers[k] if t.buffers else {}, masks=drop)[0])
                           for k, w in enumerate(t.weights)])
        ctx.cdir.save_arrays(f"run_{n}", {"center_loss": losses})
