"""``[training] source``: a run trained elsewhere (an ``llstudio.Recorder`` folder or checkpoints named by step)
as the :class:`Trajectory` capture films, checked against the scene's model before any work. Every problem is a
:class:`SceneError` on the key to change, saying what the folder holds and what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config.scene import Scene
from ..errors import SceneError
from .own_data import scene_relative
from .recorder import Recorded, SourceError, read_source, recorded_steps
from .training import Trajectory


def source_path(scene: Scene) -> Path:
    return scene_relative(scene.training.source, scene.source)


def _steps_text(steps: list) -> str:
    if len(steps) > 8:
        return f"{steps[:4]} … {steps[-2:]} ({len(steps)} steps)"
    return str(steps)


def _fail(scene: Scene, key: str, msg: str):
    raise SceneError(scene.source or "<scene>", [(key, msg)])


def _steps_problem(scene: Scene, have: list) -> str:
    want = scene.captured_steps()
    missing = [s for s in want if s not in set(have)]
    how = (f"capture.steps = {_steps_text(list(scene.capture.steps))}" if scene.capture.steps is not None else
           f"training.steps = {scene.training.steps}, capture.every = {scene.capture.every}")
    hint = (f"set training.steps = {have[-1]} and capture.every to a multiple of the recording's spacing, or list "
            "recorded steps in capture.steps") if have else "record some steps first"
    return (f"{str(source_path(scene))!r} holds steps {_steps_text(have)}, but the scene captures "
            f"{_steps_text(want)} ({how}); {_steps_text(missing)} are not there: {hint}")


def _model_problem(scene: Scene, rec: Recorded, model: torch.nn.Module) -> str | None:
    """What does not match between the recorded weights and the scene's model's parameters."""
    got, params = rec.weights[0], dict(model.named_parameters())
    buffers = {k for k, _ in model.named_buffers()}  # a checkpoint's state dict holds them too
    missing = [k for k in params if k not in got]
    extra = [k for k in got if k not in params and k not in buffers]
    wrong = [f"{k} {tuple(got[k].shape)} (the model's is {tuple(v.shape)})" for k, v in params.items()
             if k in got and tuple(got[k].shape) != tuple(v.shape)]
    parts = []
    if missing:
        parts.append(f"the model's parameters {', '.join(missing[:6])}{' …' if len(missing) > 6 else ''} are not "
                     "in it")
    if extra:
        parts.append(f"it has parameters the model lacks: {', '.join(extra[:6])}{' …' if len(extra) > 6 else ''}")
    if wrong:
        parts.append(f"shapes differ: {'; '.join(wrong[:4])}{' …' if len(wrong) > 4 else ''}")
    if not parts:
        return None
    return (f"the run in {str(source_path(scene))!r} does not fit the scene's model ({scene.model.kind}): "
            f"{'; '.join(parts)}. [model] and [data] must rebuild the network the run trained")


def check_source(scene: Scene, model: torch.nn.Module) -> Recorded:
    """The source's captured steps, read and checked against ``model`` (the scene's, built): SceneError naming
    training.source (or capture.data for missing mini-batches)."""
    path = source_path(scene)
    try:
        have = recorded_steps(path)
        if not set(scene.captured_steps()) <= set(have):
            _fail(scene, "training.source", _steps_problem(scene, have))
        rec = read_source(path, scene.captured_steps())
    except SourceError as exc:
        _fail(scene, "training.source", str(exc))
    if not rec.steps:
        _fail(scene, "training.source", f"{str(path)!r} holds no recorded step yet")
    problem = _model_problem(scene, rec, model)
    if problem:
        _fail(scene, "training.source", problem)
    if scene.capture.data == "batch":
        last = scene.training.steps
        lacking = [s for s in scene.captured_steps() if min(s, last - 1) not in rec.batches]
        if lacking:
            _fail(scene, "capture.data", (
                f"'batch' measures each step on its mini-batch, but {str(path)!r} holds no mini-batch for steps "
                f"{_steps_text(lacking)}: record them with rec.step(step, batch=(x, y)) (llstudio.Recorder keeps "
                "them unless batches=False; checkpoints hold none), or use capture.data = 'eval'"))
    return rec


def source_trajectory(scene: Scene, model: torch.nn.Module, dtype: torch.dtype) -> Trajectory:
    """The recorded run at the scene's captured steps, its weights cast to ``dtype`` (CPU tensors, as training
    gives them), its buffers those of ``model`` that were recorded."""
    rec = check_source(scene, model)
    params = dict(model.named_parameters())
    buffer_names = [k for k, v in model.named_buffers() if v.is_floating_point()]
    at = {s: i for i, s in enumerate(rec.steps)}
    steps = scene.captured_steps()
    weights = [{k: rec.weights[at[s]][k].to(dtype) for k in params} for s in steps]
    buffers = []
    for s in steps:
        have = {**rec.buffers[at[s]], **{k: v for k, v in rec.weights[at[s]].items() if k in buffer_names}}
        buffers.append({k: have[k].to(dtype) for k in buffer_names if k in have})
    t = scene.training.steps
    loss = np.array([rec.loss.get(u, np.nan) for u in range(t)], dtype=np.float64)
    if not np.isfinite(loss).any():
        loss = np.zeros(0)  # nothing recorded (checkpoints): no loss curve rather than a curve of gaps
    batches = [rec.batches[min(s, t - 1)] for s in steps] if scene.capture.data == "batch" else []
    return Trajectory(np.array(steps), weights, loss, np.zeros((0, 0), dtype=np.int64), buffers, batches)
