"""Every hash llstudio names a cached artifact by: canonical JSON → sha256, never Python's ``hash()``.

``capture_key`` names a capture directory by everything that determines its numbers; ``training_key`` names one
training run by what determines it alone. Both are pure functions of the scene (and of the contents of files the
scene names: checkpoints, a custom model's factory module), so "is it cached?" needs no torch work.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Optional

import torch

from ..config.scene import Scene
from ..errors import SceneError
from ..train.own_data import data_files
from ..train.recorder import SourceError, source_files
from ..train.runs import checkpoint_files, missing_checkpoint_message
from ..train.sources import source_path

FORMAT_VERSION = 3  # bump whenever what a capture directory holds changes: old entries are then not reused

# Sections of a scene that determine the captured numbers; the rest (look, camera, output...) does not.
CAPTURE_SECTIONS = ("data", "model", "training", "directions", "grid")


def canonical_hash(obj: Any) -> str:
    """sha256 of canonical JSON (sorted keys, no whitespace): stable across runs and machines."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read a megabyte at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def factory_source_sha256(factory: str) -> Optional[str]:
    """sha256 of the source file of a custom factory's module (``package.module:function``), found as the import
    would find it but without running the module (a dotted name's parent packages are imported, as an import
    does); None when it cannot be found (building the model then fails with the reason). Part of the cache keys,
    so that editing the factory does not reuse numbers of the old network. Only that file: a change in a module it
    imports is not seen."""
    try:
        spec = importlib.util.find_spec(factory.partition(":")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    return file_sha256(Path(spec.origin))


def _data_ident(scene: Scene, dump: dict) -> dict:
    """The [data] part of a key: not where a dataset lives (moving it must not invalidate the cache), and the keys
    of own data only when set, so that the built-in sets' keys stay as they were. Own data's numbers are in code
    or files, not in the scene: a data factory's module source and the files' contents are part of the key."""
    ident = {k: v for k, v in dump["data"].items() if k != "root"}
    for k in ("factory", "path", "eval_path"):
        if ident.get(k) is None:
            ident.pop(k, None)
    for k in ("path", "eval_path"):  # their contents count, not their names
        ident.pop(k, None)
    if scene.data.dataset == "custom":
        ident["factory_source"] = factory_source_sha256(scene.data.factory)
    for key, path in data_files(scene.data, scene.source).items():
        if not path.is_file():
            raise SceneError(scene.source or "<scene>", [(key, f"file {str(path)!r} does not exist (a relative "
                                                          "path is relative to the scene file)")])
        ident[key.split(".")[1] + "_sha256"] = file_sha256(path)
    return ident


def _training_ident(scene: Scene, dump: dict) -> dict:
    """The [training] part of a key: a run filmed from training.source is its files' contents (not the folder's
    name); absent otherwise, so that trained runs keep their keys."""
    ident = dict(dump["training"])
    if ident.get("source") is None:
        ident.pop("source", None)
        return ident
    ident.pop("source")
    path = source_path(scene)
    try:
        files = source_files(path)
    except SourceError as exc:
        raise SceneError(scene.source or "<scene>", [("training.source", str(exc))]) from None
    ident["source_sha256"] = canonical_hash([[p.name, file_sha256(p)] for p in files])
    return ident


def _versions() -> dict:
    return {"format": FORMAT_VERSION, "torch": torch.__version__.split("+")[0]}


def _capture_ident(scene: Scene, dump: dict) -> dict:
    """The [capture] part of a capture's identity: each optional setting only when on, so that captures made
    before it existed keep their keys."""
    cap = scene.capture
    ident = {"steps": scene.captured_steps(), "dtype": cap.dtype, "data": cap.data, "mode": cap.mode}
    if cap.mode == "recompute_bn":
        ident["bn_samples"] = cap.bn_samples
    if cap.dropout != "off":
        ident["dropout"] = cap.dropout
        ident["dropout_seed"] = cap.dropout_seed
    if cap.curvature_on:
        ident["curvature"] = dump["capture"]["curvature"]
    hessian = cap.curvature_on or scene.directions.kind == "hessian"
    if hessian and (cap.mode != "eval" or cap.data == "samples"):
        # Hessians follow capture.mode and the per-sample subset, as the loss does; they used eval BatchNorm on the
        # whole evaluation subset before, and such captures must not reuse those numbers.
        ident["hessian"] = "mode-and-samples"
    return ident


def capture_key(scene: Scene, device_type: str) -> str:
    """Hash of everything that determines the captured numbers (not camera, look, output, timeline)."""
    dump = scene.resolved_dump()
    ident = {s: dump[s] for s in CAPTURE_SECTIONS}
    if scene.grid.zoom == 1.0:  # absent without zoom, so scenes from before grid.zoom keep their keys
        ident["grid"].pop("zoom")
    ident["data"] = _data_ident(scene, dump)
    ident["training"] = _training_ident(scene, dump)
    ident["capture"] = _capture_ident(scene, dump)
    # A checkpoint endpoint's numbers are in its file, not in the scene: its contents are part of the key.
    ident["checkpoints"] = {k: _checkpoint_sha256(scene, k, p) for k, p in checkpoint_files(scene).items()}
    if scene.capture.data == "samples":
        ident["capture"]["samples"] = scene.capture.sample_indices()
    _add_factory_source(scene, ident)
    ident["device_type"] = device_type
    ident["versions"] = _versions()
    return canonical_hash(ident)[:24]


def training_key(scene: Scene, device_type: str) -> str:
    """Hash of everything that determines one training run's trajectory: ``scene`` is the run's own scene
    (``run_scene``). Not the directions, grid, capture mode or look: captures that differ only there share it."""
    dump = scene.resolved_dump()
    ident = {"data": _data_ident(scene, dump), "model": dump["model"], "training": _training_ident(scene, dump),
             "snapshots": scene.captured_steps(), "dtype": scene.capture.dtype,
             "device_type": device_type, "versions": _versions()}
    _add_factory_source(scene, ident)
    return canonical_hash(ident)[:24]


def _add_factory_source(scene: Scene, ident: dict) -> None:
    """A custom model's numbers depend on its factory's code, not only on its name (absent for built-in models,
    so their keys do not change)."""
    if scene.model.kind == "custom":
        ident["factory_source"] = factory_source_sha256(scene.model.factory)


def _checkpoint_sha256(scene: Scene, key: str, path: Path) -> str:
    if not path.is_file():
        raise SceneError(scene.source or "<scene>", [(key, missing_checkpoint_message(path))])
    return file_sha256(path)
