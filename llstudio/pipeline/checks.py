"""Scene problems that show only once the data and the model are known, each a SceneError with its key path,
raised before any training."""

from __future__ import annotations

import numpy as np
import torch

from ..config.scene import Scene
from ..errors import SceneError
from ..landscape.directions import check_weight_ref
from ..train.data import Dataset
from ..train.models import build_model
from ..train.runs import checkpoint_path, endpoint_keys, endpoint_kind, load_checkpoint


def _weight_refs(scene: Scene) -> list[tuple[str, str]]:
    """(key path, weight name) of every named weight in the scene."""
    refs = []
    if scene.directions.kind == "weights":
        refs += [(f"directions.weights[{i}]", ref) for i, ref in enumerate(scene.directions.weights)]
    refs += [(f'training.init."{ref}"', ref) for ref in scene.training.init or {}]
    refs += [(f"training.train_only[{i}]", ref) for i, ref in enumerate(scene.training.train_only or [])]
    for j, run in enumerate(scene.training.runs or []):
        refs += [(f'training.runs[{j}].init."{ref}"', ref) for ref in run.init or {}]
    return refs


def check_weight_refs(scene: Scene, data: Dataset, dtype) -> None:
    """The model must build, named weights (directions, starting values) must exist in it and checkpoint files must
    fit it: say so before any training, as a scene error with its key path."""
    refs = _weight_refs(scene)
    files = {key: getattr(scene.directions, key) for key in endpoint_keys(scene)
             if endpoint_kind(getattr(scene.directions, key)) == "file"}
    # Built even without references: a model (or a factory) that cannot be built is refused before any training.
    # Built without training.init: the references are checked before they are used.
    with torch.random.fork_rng(devices=[]):  # the global RNG is left as it was, for whatever draws from it next
        params = dict(build_model(scene.model, data.input_shape, data.n_classes, scene.source or "<scene>")
                      .to(dtype).named_parameters())
    problems = []
    for path, ref in refs:
        try:
            check_weight_ref(ref, params)
        except ValueError as exc:
            problems.append((path, str(exc)))
    # Checkpoint files are read before any training, so a wrong one costs nothing.
    for key, e in files.items():
        try:
            load_checkpoint(checkpoint_path(scene, e), params)
        except ValueError as exc:
            problems.append((f"directions.{key}", str(exc)))
    if problems:
        raise SceneError(scene.source or "<scene>", problems)


def sample_indices(scene: Scene, data: Dataset) -> np.ndarray:
    """Positions of the per-sample landscapes in the evaluation subset, which may be smaller than data.eval_size
    (a small train_size caps it): a scene error with its key path when one is past the end."""
    idx = np.asarray(scene.capture.sample_indices(), dtype=np.int64)
    n = len(data.y_eval)
    if idx.max() >= n:
        raise SceneError(scene.source or "<scene>", [(
            "capture.samples", f"position {int(idx.max())} is past the end of the evaluation subset, which holds "
            f"{n} samples here (data.eval_size = {scene.data.eval_size}, capped by the training set): use "
            f"positions 0 … {n - 1}")])
    return idx
