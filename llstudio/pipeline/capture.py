"""Capture as a few named stages: open the context, write the manifest, train the runs, choose the plane, capture
the steps (and curvature), assemble the :class:`~llstudio.landscape.result.Capture`."""

from __future__ import annotations

import contextlib
import dataclasses
import platform
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .. import __version__
from ..config.scene import Scene
from ..device import resolve_device
from ..landscape.result import Capture, PanelCapture, RunRecord, SampleLandscapes
from ..parallel import SINGLE, Group
from ..progress import Progress
from ..store.keys import CAPTURE_SECTIONS, FORMAT_VERSION, capture_key
from ..store.store import CaptureStore
from ..train.runs import checkpoint_files
from ..train.training import Trajectory
from .checks import check_data, check_weight_refs, sample_indices
from .context import CaptureContext, open_context
from .curvature import CurvatureWork, capture_curvature, curvature_work
from .grid import StepCapture, capture_run_losses, capture_steps
from .plane import Plane, choose_plane, second_direction_note
from .runs import train_runs
from .shares import each, host, on_root


def capture_scene(scene: Scene, device=None, store: Optional[CaptureStore] = None, use_cache: bool = True,
                  progress: Optional[Progress] = None, group: Group = SINGLE):
    """Train, choose directions and capture every sampled step, reusing whatever the store already holds.

    A scene with panels gives a :class:`~llstudio.landscape.result.PanelCapture`: one capture per panel scene.
    With a ``group`` of several processes, every rank calls this with its own ``device``: rank 0 trains (or loads)
    the runs and chooses the plane, every rank captures its share of the steps or grid points, and rank 0 alone
    writes the store and returns the capture; the other ranks return None."""
    if scene.panels:
        return _capture_panels(scene, device, store, use_cache, progress, group)
    opened: list[CaptureContext] = []
    with contextlib.ExitStack() as held:

        def prepare() -> Work:
            ctx = open_context(scene, device, store, use_cache, progress, group)
            opened.append(ctx)
            # One process computes a capture; another that needs it (a job of the same batch, a second command)
            # waits here, then finds in the store what the first one wrote and reuses it.
            held.enter_context(ctx.store.lock("capture", ctx.key, ctx.progress.log, "capture"))
            return plan_work(ctx)

        work = on_root(group, prepare)
        # The other ranks load the data once rank 0 has (a download is then done), and never open the store.
        ctx = each(group, lambda: opened[0] if opened else open_context(scene, device, None, use_cache, None, group),
                   share=False)
        idx = sample_indices(scene, ctx.data) if ctx.per_sample else None
        traj = next(iter(work.trajs.values()))
        _capture_landscapes(ctx, work, idx)
        curvature = (capture_curvature(ctx, work.plane, traj, idx, work.curvature) if scene.capture.curvature_on
                     else None)
    return assemble(ctx, work.plane, work.trajs, curvature) if group.is_root else None


@dataclass(frozen=True)
class Work:
    """What rank 0 knows once the runs and the plane are there, and hands to every rank: the runs (name →
    Trajectory, primary first), the plane, the captured step indices the store lacks (``steps``), whether the
    shared plane's landscape is missing (``plane_missing``; one shared plane only), the further runs whose losses
    it lacks (``runs``), and the curvature maps to compute (None without curvature)."""

    trajs: dict
    plane: Plane
    steps: list
    plane_missing: bool
    runs: list
    curvature: Optional[CurvatureWork]


def plan_work(ctx: CaptureContext) -> Work:
    """Rank 0's part before the split: the manifest, the runs, the plane, and what the store lacks."""
    scene = ctx.scene
    if ctx.cdir.read_manifest() is None or not ctx.use_cache:
        ctx.cdir.write_manifest(manifest(ctx))
    check_data(scene, ctx.data)
    check_weight_refs(scene, ctx.data, ctx.dtype)
    trajs = train_runs(ctx)
    plane = choose_plane(ctx, trajs)
    todo = [k for k, s in enumerate(ctx.steps) if not (ctx.use_cache and ctx.cdir.has_step(s))]
    # The other runs' losses at their own weights: one small store entry per run, resumable like the steps.
    runs_todo = [n for n in list(trajs)[1:] if not ctx.cached(f"run_{n}")]
    curvature = curvature_work(ctx) if scene.capture.curvature_on else None
    if ctx.group.world > 1:  # what a collective hands on: CPU tensors only
        trajs = {n: dataclasses.replace(t, weights=[host(w) for w in t.weights], buffers=[host(b) for b in t.buffers])
                 for n, t in trajs.items()}
        stored = dataclasses.replace(plane.stored, d1=host(plane.d1), d2=host(plane.d2))
        plane = Plane(stored, None if plane.origin is None else host(plane.origin))
    return Work(trajs, plane, todo, ctx.one_plane and not ctx.cached("plane"), runs_todo, curvature)


def manifest(ctx: CaptureContext) -> dict:
    """What was captured and how, for the store entry's manifest.json."""
    scene = ctx.scene
    dump = scene.resolved_dump()
    cap = scene.capture
    return {
        "key": ctx.key, "scene": scene.source, "sections": {s: dump[s] for s in CAPTURE_SECTIONS},
        "steps": ctx.steps, "scales": ctx.scales.tolist(), "device": ctx.device.type,
        "dtype": cap.dtype, "capture_mode": cap.mode, "loss_on": cap.data, "dropout": cap.dropout,
        **({"dropout_seed": cap.dropout_seed} if cap.dropout != "off" else {}),
        **({"sample_indices": cap.sample_indices()} if ctx.per_sample else {}),
        "llstudio": __version__,
        "torch": torch.__version__, "python": platform.python_version(), "format": FORMAT_VERSION,
        "dimensions": scene.grid.dimensions, "second_direction": second_direction_note(scene),
        "runs": scene.training.run_names(),
        "checkpoints": {k: str(p) for k, p in checkpoint_files(scene).items()},
    }


def _capture_landscapes(ctx: CaptureContext, work: Work, idx: Optional[np.ndarray]) -> None:
    """The steps' landscapes and the further runs' losses that the store lacks."""
    if not work.steps and ctx.group.is_root:
        ctx.progress.log(f"capture: all {len(ctx.steps)} steps reused from cache {ctx.cdir.path}")
    if not (work.steps or work.runs):
        return
    trajs = work.trajs
    sc = each(ctx.group, lambda: StepCapture(ctx, work.plane, next(iter(trajs.values())), idx), share=False)
    if work.steps:
        capture_steps(ctx, sc, work.steps, work.plane_missing)
    if work.runs:  # a few points per run: on rank 0 alone
        each(ctx.group, lambda: capture_run_losses(ctx, sc, trajs, work.runs) if ctx.group.is_root else None,
             share=False)


def assemble(ctx: CaptureContext, plane: Plane, trajs: dict[str, Trajectory], curvature) -> Capture:
    """The Capture, from what the store now holds."""
    scene, cdir, stored = ctx.scene, ctx.cdir, plane.stored
    loaded = [cdir.load_step(s) for s in ctx.steps]
    center_loss = np.array([float(z["center_loss"]) for z in loaded])
    names = list(trajs)
    runs = [RunRecord(name=n, plane_path=np.asarray(stored.paths[n]),
                      center_loss=center_loss if i == 0 else cdir.load_arrays(f"run_{n}")["center_loss"],
                      train_loss=np.asarray(trajs[n].train_loss), updates=np.asarray(stored.updates[n]))
            for i, n in enumerate(names)]
    samples = None
    if ctx.per_sample:
        samples = SampleLandscapes(np.stack([z["sample_loss"] for z in loaded]),
                                   np.stack([z["sample_center_loss"] for z in loaded]),
                                   np.asarray(scene.capture.sample_indices()))
    traj = trajs[names[0]]
    optional = lambda v: None if v is None else np.asarray(v)  # noqa: E731
    return Capture(
        scene=scene, key=ctx.key, path=cdir.path, alphas=stored.alphas, betas=stored.betas,
        steps=np.asarray(ctx.steps), loss=np.stack([z["loss"] for z in loaded]), center_loss=center_loss,
        train_loss=traj.train_loss, centers=traj.weights, directions=(stored.d1, stored.d2),
        plane_path=np.asarray(stored.paths[names[0]]), updates=np.asarray(stored.updates[names[0]]),
        scales=ctx.scales, runs=runs, center_buffers=list(traj.buffers), device=ctx.device.type,
        frame=scene.directions.frame, origin=plane.origin, explained_variance=optional(stored.explained_variance),
        hessian_eigenvalues=optional(stored.hessian_eigenvalues), curvature=curvature, samples=samples)


def _capture_panels(scene: Scene, device, store: Optional[CaptureStore], use_cache: bool,
                    progress: Optional[Progress], group: Group = SINGLE) -> Optional[PanelCapture]:
    """Capture every panel scene; panels with the same capture key are captured (and loaded) once."""
    progress = progress or Progress("none")
    done: dict[str, Capture] = {}
    captures = []
    panels = scene.panel_scenes()
    for i, ps in enumerate(panels):
        dev = torch.device(device if device is not None else resolve_device(ps.capture.device))
        key = capture_key(ps, dev.type)
        progress.log(f"panel {i + 1}/{len(panels)}: {ps.title or ps.name}")
        if key in done:
            progress.log(f"capture: same as panel {list(done).index(key) + 1}'s capture, reused")
            captures.append(done[key] and dataclasses.replace(done[key], scene=ps))
            continue
        done[key] = capture_scene(ps, device=dev, store=store, use_cache=use_cache, progress=progress, group=group)
        captures.append(done[key])
    return PanelCapture(scene, captures) if group.is_root else None
