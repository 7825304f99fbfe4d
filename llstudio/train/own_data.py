"""A scene's own data: ``data.dataset = 'custom'`` (a factory function it names) and ``'files'`` (arrays ``x`` and
``y`` in .npz or .pt files, read without pickle). Both give plain arrays, from which :func:`data.load_dataset`
draws the training subset and the fixed evaluation subset exactly as for the built-in sets. Every failure is a
:class:`SceneError` on the key that named the data (exit 2), raised before anything is written."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config.scene import DataSpec
from .factories import fail, import_callable

Arrays = tuple[np.ndarray, np.ndarray]


def scene_relative(path: str, source: Optional[str]) -> Path:
    """``path`` as a scene names it: a relative path is relative to the scene file's folder (as checkpoint files
    are; to the working directory for a scene made in Python, whose source is '<scene>')."""
    p = Path(path).expanduser()
    if not p.is_absolute() and source:
        p = Path(source).resolve().parent / p
    return p


def data_files(spec: DataSpec, source: Optional[str]) -> dict[str, Path]:
    """``{'data.path': file, 'data.eval_path': file}`` of a 'files' scene (empty for other datasets)."""
    if spec.dataset != "files":
        return {}
    keys = {"data.path": spec.path, "data.eval_path": spec.eval_path}
    return {k: scene_relative(v, source) for k, v in keys.items() if v is not None}


def load_own(spec: DataSpec, source: str = "<scene>") -> tuple[Arrays, Optional[Arrays]]:
    """((x, y) training samples, (x, y) evaluation samples or None), x float32 (n, *features), y int64 (n,)."""
    if spec.dataset == "custom":
        return _from_factory(spec.factory, source)
    files = data_files(spec, source)
    train = _from_file(files["data.path"], "data.path", source)
    ev = _from_file(files["data.eval_path"], "data.eval_path", source) if "data.eval_path" in files else None
    return train, ev


def _from_factory(ref: str, source: str) -> tuple[Arrays, Optional[Arrays]]:
    load = import_callable(ref, "data.factory", source)
    try:
        out = load()
    except Exception as exc:
        fail(source, "data.factory", f"calling {ref}() failed: {type(exc).__name__}: {exc}")
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        fail(source, "data.factory", f"{ref}() returned {type(out).__name__}; it must return (train, eval), each an "
             "(x, y) pair or a torch.utils.data.Dataset (eval may be None)")
    train = _samples(out[0], f"{ref}()'s train", "data.factory", source)
    ev = None if out[1] is None else _samples(out[1], f"{ref}()'s eval", "data.factory", source)
    return train, ev


def _samples(part, what: str, key: str, source: str) -> Arrays:
    """An (x, y) pair of tensors/arrays or a Dataset of (x, y) samples as checked float32/int64 arrays."""
    if isinstance(part, torch.utils.data.Dataset) and hasattr(part, "__len__"):
        try:
            items = [part[i] for i in range(len(part))]
            x = torch.stack([torch.as_tensor(s[0]) for s in items]) if items else None
            y = torch.as_tensor([int(s[1]) for s in items])
        except Exception as exc:
            fail(source, key, f"{what} Dataset does not give (x, y) samples of one shape: {type(exc).__name__}: "
                 f"{exc}")
    elif isinstance(part, (tuple, list)) and len(part) == 2:
        x, y = part
    else:
        fail(source, key, f"{what} is {type(part).__name__}; give an (x, y) pair of tensors or arrays, or a "
             "torch.utils.data.Dataset of (x, y) samples")
    return _checked(x, y, what, key, source)


def _checked(x, y, what: str, key: str, source: str) -> Arrays:
    try:
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
        y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    except Exception as exc:
        fail(source, key, f"{what}: x and y must be tensors or numeric arrays ({type(exc).__name__}: {exc})")
    problems = []
    if x.ndim < 2 or len(x) == 0 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        problems.append(f"x must be a numeric array of n >= 1 samples, (n, *features); got {x.dtype} {x.shape}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        problems.append(f"y must be (n,) integer classes 0 … C-1; got {y.dtype} {y.shape}")
    elif x.ndim >= 1 and len(y) != len(x):
        problems.append(f"x has {len(x)} samples but y {len(y)}")
    if problems:
        fail(source, key, f"{what}: " + "; ".join(problems))
    return x.astype(np.float32), y.astype(np.int64)


def _from_file(path: Path, key: str, source: str) -> Arrays:
    """x and y from an .npz (``allow_pickle=False``) or .pt (``weights_only=True``) file: no code in a data file
    is ever run."""
    if not path.is_file():
        fail(source, key, f"file {str(path)!r} does not exist (a relative path is relative to the scene file); save "
             "your arrays with numpy.savez(path, x=x, y=y) or torch.save({'x': x, 'y': y}, path)")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as exc:  # numpy's words for an object array: "Object arrays cannot be loaded ..."
            fail(source, key, f"{str(path)!r} holds pickled objects, which are never loaded ({exc}); save plain "
                 "numeric arrays: numpy.savez(path, x=x.astype('float32'), y=y.astype('int64'))")
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            fail(source, key, f"{str(path)!r} is not a readable .npz file ({type(exc).__name__}: {exc})")
    else:
        try:
            arrays = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, AttributeError, TypeError) as exc:
            fail(source, key, f"{str(path)!r} cannot be read with torch.load(weights_only=True), which loads tensors "
                 f"only, never pickled objects ({str(exc).splitlines()[0]}); save torch.save({{'x': x, 'y': y}}, "
                 "path) with x and y tensors")
    if not isinstance(arrays, dict) or "x" not in arrays or "y" not in arrays:
        has = ", ".join(map(str, arrays)) if isinstance(arrays, dict) else type(arrays).__name__
        fail(source, key, f"{str(path)!r} must hold arrays 'x' and 'y'; it holds {has or 'nothing'}")
    return _checked(arrays["x"], arrays["y"], str(path), key, source)
