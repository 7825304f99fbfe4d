"""Several training runs on one landscape, and the checkpoints an interpolation runs between.

A scene's ``[[training.runs]]`` are overrides of ``[training]``; each run is trained as if it were the only one, from
its own scene (:func:`run_scene`). Interpolation endpoints (``directions.start`` / ``end`` / ``via``) name the
initial or final weights, a captured step, another run's final weights or a checkpoint file; this module says which
(:func:`endpoint_kind`) and reads checkpoint files safely (``torch.load(weights_only=True)``: a scene never runs
code it did not name as a model factory).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Optional, Union

import torch

from ..config.scene import Scene

Endpoint = Union[int, str]


def run_scene(scene: Scene, name: Optional[str] = None) -> Scene:
    """The scene of one run: ``[training]`` with run ``name``'s overrides (the primary run when None), no runs."""
    return scene.model_copy(update={"training": scene.training.for_run(name)})


def endpoint_kind(e: Endpoint) -> str:
    """'step', 'initial', 'final', 'run' ('run:NAME') or 'file' (anything else is a checkpoint path)."""
    if isinstance(e, int):
        return "step"
    if e in ("initial", "final"):
        return e
    if e.startswith("run:"):
        return "run"
    return "file"


def endpoint_keys(scene: Scene) -> list[str]:
    """The directions keys that name an interpolation endpoint in this scene: 'start', 'end' and maybe 'via'."""
    d = scene.directions
    if d.kind != "interpolation":
        return []
    return ["start", "end"] + (["via"] if d.via is not None else [])


def checkpoint_path(scene: Scene, e: str) -> Path:
    """A checkpoint endpoint's file: relative paths are relative to the scene file's folder."""
    p = Path(e).expanduser()
    if not p.is_absolute() and scene.source:
        p = Path(scene.source).resolve().parent / p
    return p


def checkpoint_files(scene: Scene) -> dict[str, Path]:
    """``{'directions.start': path, ...}`` for every endpoint that is a checkpoint file."""
    out = {}
    for key in endpoint_keys(scene):
        e = getattr(scene.directions, key)
        if endpoint_kind(e) == "file":
            out[f"directions.{key}"] = checkpoint_path(scene, e)
    return out


def missing_checkpoint_message(path: Path) -> str:
    return (f"checkpoint file {str(path)!r} does not exist (a relative path is relative to the scene file); "
            "otherwise use 'initial', 'final', a captured step number or 'run:NAME'")


def load_checkpoint(path: Path, reference: dict) -> dict:
    """A state dict saved with ``torch.save(model.state_dict(), path)``, checked against the model's parameters
    ``reference`` (name → tensor): same names and shapes, cast to the reference dtype, on the CPU. Entries that are
    not parameters (BatchNorm running statistics) are ignored. Raises ValueError saying what does not match."""
    if not path.is_file():
        raise ValueError(missing_checkpoint_message(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"checkpoint file {str(path)!r} cannot be read as a state dict with "
                         f"torch.load(weights_only=True): {str(exc).splitlines()[0]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"checkpoint file {str(path)!r} is not a state dict (name → tensor): save it with "
                         "torch.save(model.state_dict(), path)")
    missing = [k for k in reference if k not in state]
    if missing:
        raise ValueError(f"checkpoint file {str(path)!r} lacks the model's parameters {', '.join(missing[:6])}"
                         f"{' ...' if len(missing) > 6 else ''}; it has {', '.join(list(state)[:6])}"
                         f"{' ...' if len(state) > 6 else ''}")
    wrong = [f"{k} {tuple(state[k].shape)} (the model's is {tuple(v.shape)})" for k, v in reference.items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise ValueError(f"checkpoint file {str(path)!r} does not fit the model: {'; '.join(wrong[:4])}")
    return {k: state[k].detach().to(dtype=v.dtype).clone() for k, v in reference.items()}
