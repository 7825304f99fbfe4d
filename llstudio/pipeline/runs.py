"""The training stage of a capture: every run trained once, or loaded from the store."""

from __future__ import annotations

import numpy as np

from ..store.codec import decode_trajectory, encode_trajectory
from ..store.keys import training_key
from ..train.runs import run_scene
from ..train.sources import source_path, source_trajectory
from ..train.training import Trajectory, initial_model, train
from .context import CaptureContext


def train_runs(ctx: CaptureContext) -> dict[str, Trajectory]:
    """run name → Trajectory, primary first: every run from its own scene; the primary run keeps the single-run
    store entry ('trajectory'), the others 'trajectory_<name>'."""
    scene = ctx.scene
    if scene.training.source is not None:  # trained elsewhere: read, never trained (checked on opening)
        ctx.progress.log(f"training: none, the run is read from {str(source_path(scene))!r}")
        return {"main": source_trajectory(scene, initial_model(scene, ctx.data, ctx.dtype), ctx.dtype)}
    multi = scene.training.runs is not None
    trajs = {}
    for i, name in enumerate(scene.training.run_names()):
        trajs[name] = _trajectory(ctx, run_scene(scene, name if multi else None),
                                  "trajectory" if i == 0 else f"trajectory_{name}",
                                  f"training {name}" if multi else "training")
    return trajs


def _trajectory(ctx: CaptureContext, scene, entry: str, label: str) -> Trajectory:
    """Train one run (``scene`` is its own scene), or load it: from the capture's store entry ``entry``, else
    from the store's trainings (another capture of the same run trained it), copied into the capture then."""
    progress, cdir = ctx.progress, ctx.cdir
    check = lambda z: _trajectory_problem(z, scene)  # noqa: E731
    arrays = cdir.read_arrays(entry, check) if ctx.use_cache else None  # None too when corrupt: recomputed
    if arrays is not None:
        progress.log(f"{label}: reused from cache {cdir.path}")
        return decode_trajectory(arrays)
    # Opened (and so created) only when the capture lacks the run: a cache hit leaves the store as it was.
    key = training_key(scene, ctx.device.type)
    tdir = ctx.store.open_training(key, progress.log)
    # Captures that differ only in how they look at a run share its training: one process trains it, another
    # waits for it and then finds it here (checked after the lock is ours).
    with ctx.store.lock("training", key, progress.log, label):
        arrays = tdir.read_arrays("trajectory", check) if ctx.use_cache else None
        if arrays is not None:
            cdir.save_arrays(entry, arrays)
            progress.log(f"{label}: reused the same run's training from cache {tdir.path}")
            return decode_trajectory(arrays)
        return _train(ctx, scene, entry, label, tdir)


def _trajectory_problem(arrays: dict, scene) -> str | None:
    """What makes a stored trajectory unusable for the run ``scene``: other captured steps (a file of another run)."""
    if list(arrays["steps"]) != scene.captured_steps():
        return (f"wrong steps: {len(arrays['steps'])} captured steps, not the {len(scene.captured_steps())} steps "
                "this run captures")
    return None


def _train(ctx: CaptureContext, scene, entry: str, label: str, tdir) -> Trajectory:
    """Train one run and store its trajectory in the store's trainings and in the capture."""
    progress, cdir = ctx.progress, ctx.cdir
    with progress.stage(label, scene.training.steps, "steps") as advance:
        traj = train(scene, ctx.data, ctx.device, ctx.dtype, on_step=lambda s: advance(1))
    arrays = encode_trajectory(traj)
    tdir.save_arrays("trajectory", arrays)
    cdir.save_arrays(entry, arrays)
    if not np.all(np.isfinite(traj.train_loss)):
        progress.log(f"warning: the training loss of {label} became NaN/inf (the run diverged); the landscape shows "
                     "it clipped")
    return traj
