"""Scene problems that show only once the data and the model are known, each a SceneError with its key path,
raised before any training."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..config.datasets import input_signature
from ..config.scene import Scene
from ..device import resolve_device
from ..errors import LLStudioError, MissingDependency, SceneError
from ..landscape.directions import check_weight_ref
from ..config.train_specs import OWN_DATASETS
from ..train.data import Dataset, check_available, load_dataset
from ..train.models import build_model, has_batch_norm, wants_images
from ..train.sources import check_source
from ..train.runs import checkpoint_path, endpoint_keys, endpoint_kind, load_checkpoint
from .cost import host_available_mib, memory_parts, memory_problem
from .render import check_output


class SceneNeedsData(SceneError):
    """Scene problems among which a missing dataset: exit 3, as render's MissingDependency."""

    exit_code = 3


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


def _checkpoint_endpoints(scene: Scene) -> dict:
    return {key: getattr(scene.directions, key) for key in endpoint_keys(scene)
            if endpoint_kind(getattr(scene.directions, key)) == "file"}


def check_weight_refs(scene: Scene, data: Dataset, dtype) -> torch.nn.Module:
    """The model must build, named weights (directions, starting values) must exist in it and checkpoint files must
    fit it: say so before any training, as a scene error with its key path."""
    # Built even without references: a model (or a factory) that cannot be built is refused before any training.
    # Built without training.init: the references are checked before they are used.
    with torch.random.fork_rng(devices=[]):  # the global RNG is left as it was, for whatever draws from it next
        model = build_model(scene.model, data.input_shape, data.n_classes, scene.source or "<scene>").to(dtype)
    problems = weight_ref_problems(scene, dict(model.named_parameters()))
    if problems:
        raise SceneError(scene.source or "<scene>", problems)
    return model


def weight_ref_problems(scene: Scene, params: dict) -> list[tuple[str, str]]:
    """(key path, message) of every named weight the model's ``params`` (name → tensor) lack and of every
    checkpoint file that is missing, unreadable with weights_only or does not fit them."""
    refs, files = _weight_refs(scene), _checkpoint_endpoints(scene)
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
    return problems


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


def check_data(scene: Scene, data: Dataset) -> None:
    """data.train_size and data.eval_size against the loaded training set, for a dataset smaller than the scene's
    check knew (a local torchvision folder with fewer samples): refused before any training, never capped."""
    n, d = len(data.x_train), scene.data
    problems = []
    if d.dataset in OWN_DATASETS:  # own data may be smaller than asked: capped, as the scene's docs say
        return
    if d.train_size is not None and d.train_size > n:
        problems.append(("data.train_size", f"{d.train_size:,} samples asked for, but '{d.dataset}' holds {n:,} "
                         f"training samples here: use at most {n:,}, or leave train_size out"))
    elif d.train_size is None and d.eval_size > n:
        problems.append(("data.eval_size", f"{d.eval_size:,} samples asked for, but '{d.dataset}' holds {n:,} "
                         f"training samples here, which the evaluation subset is drawn from: use at most {n:,}"))
    if problems:
        raise SceneError(scene.source or "<scene>", problems)


def data_signature(scene: Scene) -> tuple[tuple[int, ...], int]:
    """``(input_shape, n_classes)`` of the scene's samples: known without reading a built-in dataset; own data
    ('custom', 'files') are loaded for it (a failing factory or an unreadable file raises its SceneError)."""
    if scene.data.dataset in OWN_DATASETS:
        d = load_dataset(scene.data, wants_images(scene.model), scene.source or "<scene>")
        return d.input_shape, d.n_classes
    return input_signature(scene.data, wants_images(scene.model))


def scene_model(scene: Scene) -> torch.nn.Module:
    """The scene's model, randomly initialised, from the dataset's known shape (no built-in data read, no
    training); a failing factory (the model's or the data's) raises its SceneError."""
    shape, n_classes = data_signature(scene)
    return build_model(scene.model, shape, n_classes, scene.source or "<scene>").to(getattr(torch, scene.capture.dtype))


def memory_check(scene: Scene, device: torch.device, quality: Optional[str], n_params: int
                 ) -> tuple[dict, Optional[tuple[str, str]]]:
    """The memory estimate's parts (bytes) and the problem when its peak exceeds what the machine has: available
    RAM, and on a GPU also the GPU's free memory for the evaluator's batches and weights."""
    shape, _ = data_signature(scene)
    parts = memory_parts(scene, n_params, shape, device.type, quality)
    problem = memory_problem(scene, parts, host_available_mib())
    if problem is None and device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        itemsize = 8 if scene.capture.dtype == "float64" else 4
        gpu = {"batches": (scene.capture.memory_mb or 0) * 2**20, "training": 4 * n_params * itemsize}
        problem = memory_problem(scene, gpu, free // 2**20, "free GPU memory")
    return parts, problem


def _size(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_memory(scene: Scene, device: torch.device, quality: Optional[str] = None, force: bool = False) -> None:
    """render's pre-work check: refuse (exit 2) a capture whose estimated peak memory exceeds what the machine has,
    unless ``force``. Cheap: the formula only (the model is built for its size; no data, no calibration)."""
    if force:
        return
    n_params = max(_size(scene_model(one)) for one in (scene.panel_scenes() if scene.panels else [scene]))
    _parts, problem = memory_check(scene, device, quality, n_params)
    if problem:
        raise SceneError(scene.source or "<scene>", [problem])


def _one_scene_problems(scene: Scene, prefix: str = "") -> tuple[list, bool, Optional[torch.nn.Module]]:
    """(problems, dataset missing, model) of one scene without panels: data, device, model, weights, files."""
    problems, missing, model = [], False, None
    try:
        check_available(scene.data)
    except MissingDependency as exc:
        problems.append((prefix + "data.root", str(exc)))
        missing = True
    try:
        resolve_device(scene.capture.device)
    except LLStudioError as exc:
        problems.append((prefix + "capture.device", str(exc)))
    try:
        model = scene_model(scene)
    except SceneError as exc:
        return problems + [(prefix + loc, msg) for loc, msg in exc.problems], missing, None
    params = dict(model.named_parameters())
    problems += [(prefix + loc, msg) for loc, msg in weight_ref_problems(scene, params)]
    if scene.capture.mode == "recompute_bn" and not has_batch_norm(model):
        problems.append((prefix + "capture.mode", "'recompute_bn' recomputes BatchNorm statistics, but the model has "
                         "no BatchNorm layer; use capture.mode = 'eval'"))
    if scene.training.source is not None:
        try:
            check_source(scene, model)
        except SceneError as exc:
            problems += [(prefix + loc, msg) for loc, msg in exc.problems]
    return problems, missing, model


def check_scene(scene: Scene, quality: Optional[str] = None, force: bool = False) -> dict:
    """Everything render would refuse before its work, all at once: the output format's encoder, the datasets'
    files (never downloaded), the device, the model (its factory imports and builds), named weights and checkpoint
    files, and the estimated memory (unless ``force``). Raises a SceneError listing every problem (exit 2; exit 3
    when a dataset is missing); returns the built models by panel (or ``{"": model}``) and the memory parts."""
    problems, missing, models = [], False, {}
    try:
        check_output(scene)
    except LLStudioError as exc:
        problems.append(("output.format", str(exc)))
    scenes = [(f"panels[{i}].", ps) for i, ps in enumerate(scene.panel_scenes())] if scene.panels else [("", scene)]
    for prefix, one in scenes:
        p, m, model = _one_scene_problems(one, prefix)
        problems, missing = problems + p, missing or m
        if model is not None:
            models[prefix] = model
    parts = None
    if len(models) == len(scenes):
        n_params = max(_size(m) for m in models.values())
        bad_device = any(loc.endswith("capture.device") for loc, _ in problems)
        device = torch.device("cpu") if bad_device else resolve_device(scene.capture.device)
        parts, problem = memory_check(scene, device, quality, n_params)
        if problem and not force:
            problems.append(problem)
    if problems:
        raise (SceneNeedsData if missing else SceneError)(scene.source or "<scene>", problems)
    return {"models": models, "memory": parts}
