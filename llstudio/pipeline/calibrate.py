"""How long a capture will take on this machine, from a quick calibration (``llstudio check``): a few training
steps and a few batches of the scene's own evaluator, on its device, with random data of the dataset's shape and
random directions, and with curvature a few Hessian-vector products, each stopped after a fraction of a second.
The result is an estimate, within a factor of about two on a quiet machine: the calibration's batches are smaller
than the capture's, and a curvature point's products are counted, not run (a warm start needs fewer)."""

from __future__ import annotations

import copy
import time

import torch

from ..config.scene import Scene
from ..device import resolve_device
from ..landscape.curvature import HessianOperator
from ..landscape.evaluator import LandscapeEvaluator
from ..train.models import loss_fn
from .checks import data_signature
from .cost import MiB, host_available_mib

BUDGET_S = 0.4  # per measurement; two measurements per scene (training, grid), three with curvature
# One curvature point: ARPACK's Lanczos iterations for both extreme eigenvalues take about 40 Hessian-vector
# products from a random start (38 to 56 measured on scenes/convexity_map.toml); a neighbour's warm start fewer.
PRODUCTS_PER_POINT = 40


def _synced(fn, device: torch.device):
    """``fn`` followed by waiting for the GPU's queued work (a CUDA call returns before its kernels finish)."""
    if device.type != "cuda":
        return fn

    def call():
        fn()
        torch.cuda.synchronize(device)
    return call


def _timed(fn, budget_s: float = BUDGET_S) -> float:
    """Seconds of the fastest call of ``fn`` after one warm-up call, of as many calls as fit in ``budget_s`` (at
    most 50): the fastest, because a busy machine's pauses would otherwise make the estimate whatever the other
    processes did during the calibration."""
    fn()
    best, start = float("inf"), time.perf_counter()
    for _ in range(50):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        if time.perf_counter() - start >= budget_s:
            break
    return best


def _data(scene: Scene, n: int, device: torch.device, dtype: torch.dtype):
    shape, n_classes = data_signature(scene)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((n, *shape), generator=g).to(device=device, dtype=dtype)
    return x, torch.randint(0, n_classes, (n,), generator=g).to(device), n_classes


def seconds_per_training_step(scene: Scene, model: torch.nn.Module, device: torch.device) -> float:
    """One optimizer step (forward, backward, update) on a random mini-batch of training.batch_size samples."""
    dtype = getattr(torch, scene.capture.dtype)
    model = model.to(device=device, dtype=dtype).train()
    x, y, n_classes = _data(scene, scene.training.batch_size, device, dtype)
    loss = loss_fn(scene.training.loss, n_classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)

    def step():
        opt.zero_grad()
        loss(model(x), y).backward()
        opt.step()

    return _timed(_synced(step, device))


def seconds_per_grid_point(scene: Scene, model: torch.nn.Module, device: torch.device) -> float:
    """One grid point by the scene's evaluator (its strategy, batch size and threads) on data.eval_size random
    samples: calls of 16 points, doubled up to one step's grid while a call takes under half the budget; the fastest
    per point counts."""
    dtype = getattr(torch, scene.capture.dtype)
    n = len(scene.capture.sample_indices()) if scene.capture.data == "samples" else scene.data.eval_size
    x, y, n_classes = _data(scene, n, device, dtype)
    g = torch.Generator().manual_seed(1)
    params = dict(model.named_parameters())
    d1 = {k: torch.randn(v.shape, generator=g) for k, v in params.items()}
    d2 = {k: torch.randn(v.shape, generator=g) for k, v in params.items()}
    mode = scene.capture.mode
    bn_x = _data(scene, scene.capture.bn_samples, device, dtype)[0] if mode == "recompute_bn" else None
    # The evaluator swaps some of the model's layers in place: give it a copy.
    ev = LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn(scene.training.loss, n_classes), d1, d2, device, dtype,
                            scene.capture.memory_mb, mode=mode, bn_x=bn_x)
    center = {k: v.detach() for k, v in params.items()}
    reduction = "none" if scene.capture.data == "samples" else "mean"
    # The capture evaluates one step's whole grid per call (the evaluator splits it into chunks and threads).
    nx, ny = scene.grid.shape
    points, per_point, spent = 16, float("inf"), 0.0
    while spent < 2 * BUDGET_S:
        p = min(points, nx * ny)
        a = torch.linspace(-1, 1, p)
        start = time.perf_counter()
        _synced(lambda: ev.evaluate(center, a, a, reduction=reduction), device)()
        took = time.perf_counter() - start
        spent += took
        per_point = min(per_point, took / p)
        if p >= nx * ny or took > BUDGET_S / 2:
            break
        points *= 2
    return per_point


def seconds_per_curvature_point(scene: Scene, model: torch.nn.Module, device: torch.device) -> float:
    """One curvature point: the gradient's graph at a point, then PRODUCTS_PER_POINT Hessian-vector products, by
    the capture's own operator on data.eval_size random samples."""
    dtype = getattr(torch, scene.capture.dtype)
    n = len(scene.capture.sample_indices()) if scene.capture.data == "samples" else scene.data.eval_size
    x, y, n_classes = _data(scene, n, device, dtype)
    mode = scene.capture.mode
    bn_x = _data(scene, scene.capture.bn_samples, device, dtype)[0] if mode == "recompute_bn" else None
    op = HessianOperator(model, x, y, loss_fn(scene.training.loss, n_classes), device, dtype, mode=mode, bn_x=bn_x)
    theta = op.flatten(dict(model.named_parameters()))
    graph_s = _timed(_synced(lambda: op.at(theta), device), BUDGET_S / 4)
    product = op.at(theta)
    v = torch.randn_like(theta)
    return graph_s + PRODUCTS_PER_POINT * _timed(_synced(lambda: product(v), device), BUDGET_S / 2)


def time_estimate(scene: Scene, model: torch.nn.Module, device: torch.device, cost: dict) -> dict:
    """Seconds of training and capture (grid and curvature) for a scene without panels, from ``cost``
    (:func:`~llstudio.pipeline.cost.estimate`) and a calibration of ``model`` on ``device``."""
    # A run read from training.source is not trained (cost["training_steps"] is 0): nothing to time.
    updates = cost["training_steps"]
    train_s = seconds_per_training_step(scene, model, device) * updates if updates else 0.0
    point_s = seconds_per_grid_point(scene, model, device)
    # One landscape (and one curvature map) serves every step when nothing moves it (CaptureContext.one_plane).
    c, steps = scene.capture, cost["captured_steps"]
    per = 1 / steps if scene.directions.frame == "fixed" and c.data != "batch" and scene.grid.zoom == 1.0 else 1
    grid_s = point_s * cost["grid_evaluations"] * per
    curv_s = (seconds_per_curvature_point(scene, model, device) * cost["curvature_points"] * per
              if scene.capture.curvature_on else 0.0)
    return {"training_s": _sig(train_s), "grid_s": _sig(grid_s), "curvature_s": _sig(curv_s),
            "capture_s": _sig(train_s + grid_s + curv_s), "seconds_per_grid_point": _sig(point_s),
            "device": device.type}


def _sig(x: float) -> float:
    """Three significant digits: an estimate's precision."""
    return float(f"{x:.3g}")


def _duration(s: float) -> str:
    return f"{s:.2g} s" if s < 10 else f"{s:.0f} s" if s < 120 else (f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h")


def capture_estimate(scene: Scene, quality, checked: dict, cost: dict) -> dict:
    """``llstudio check``'s estimate: capture time from a calibration of each panel's model on the scene's device
    (its training and grid parts), and the peak memory from the formula (``checked``: what
    :func:`~llstudio.pipeline.checks.check_scene` returned)."""
    device = resolve_device(scene.capture.device)
    if scene.panels:
        times = [time_estimate(ps, checked["models"][f"panels[{i}]."], device, c)
                 for i, (ps, c) in enumerate(zip(scene.panel_scenes(), cost["panels"]))]
        t = {k: _sig(sum(x[k] for x in times)) for k in ("training_s", "grid_s", "curvature_s", "capture_s")}
    else:
        t = time_estimate(scene, checked["models"][""], device, cost)
    parts = checked["memory"]
    peak = sum(parts.values()) / MiB
    avail = host_available_mib()
    return {
        "capture_time": f"about {_duration(t['capture_s'])} on {device.type} (training {_duration(t['training_s'])}"
                        f", grid {_duration(t['grid_s'])}"
                        + (f", curvature {_duration(t['curvature_s'])}" if t["curvature_s"] else "") + ")",
        "peak_memory": f"about {peak:,.0f} MiB" + (f" of {avail:,} MiB available" if avail is not None else ""),
        **t, "peak_memory_mib": round(peak), "available_mib": avail,
        "memory_mib": {k: round(v / MiB, 1) for k, v in parts.items()},
    }
