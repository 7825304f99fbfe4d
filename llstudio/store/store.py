"""The capture store: one directory per capture, named by a hash of everything that determines its numbers.

Layout of ``<root>/captures/<key>/``::

    manifest.json        what was captured and how (scene sections, axes, versions)
    trajectory.npz       training losses, batch order, weights at the captured steps
    directions.npz       the two directions, by parameter name
    step_000120.npz      the loss grid of one captured step (nx, ny), NaN where not finite
    curv_000120.npz      with [capture.curvature]: its min/max Hessian eigenvalue maps (cx, cy) and done-mask
    trajectory_<run>.npz  with several [[training.runs]]: each further run's trajectory (the primary run's is
                         trajectory.npz); directions.npz then also holds run/<run>/path and run/<run>/updates
    run_<run>.npz        each further run's loss at its own weights per captured step (center_loss)

``<root>/trainings/<key>/trajectory.npz`` holds one training run's trajectory, named by a hash of what determines
it alone (data, model, training, the captured steps, dtype, device; see ``store.keys.training_key``): captures that
differ only in how they look at a run (directions, grid, capture mode, panels) train it once. Each capture still
keeps its own copy, so a capture directory stands on its own.

Every file is written to a temporary name in the same directory and renamed into place, so a killed run leaves
either the old state or the new one, never half a file; a rerun skips what exists. Every file carries a checksum
of its contents; one that fails to read or verify is moved to ``.quarantine/`` and recomputed (``integrity``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..files import atomic_write, sweep_temp_files
from .integrity import (CorruptEntry, Finding, discard, layout_problem, load_npz, manifest_text,
                        parse_manifest, verify_dir, with_checksum)
from .locks import SUFFIX as LOCK_SUFFIX
from .locks import hold, sweep_locks

Log = Optional[Callable[[str], None]]


def default_root() -> Path:
    """``$LLSTUDIO_CACHE``, else ``$XDG_CACHE_HOME/llstudio``, else ``~/.cache/llstudio``."""
    env = os.environ.get("LLSTUDIO_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llstudio"


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays and their checksum (one more array, see ``integrity``) in one atomic write."""
    arrays = with_checksum(arrays)

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    atomic_write(path, write)


class CaptureDir:
    """One capture's directory (or one training run's). ``log`` says that a corrupt file was found and moved
    aside (default: standard error)."""

    def __init__(self, path: Path, log: Log = None):
        self.path = Path(path)
        self.log = log

    def step_path(self, step: int) -> Path:
        return self.path / f"step_{step:07d}.npz"

    def read(self, filename: str, check: Optional[Callable[[dict], Optional[str]]] = None) -> Optional[dict]:
        """The verified arrays of npz ``filename``, or None when it is missing or corrupt: unreadable, not its
        checksum, without the keys its kind has, or failing ``check`` (arrays → what is wrong, or None). A corrupt
        file is reported once and quarantined, so the caller recomputes it."""
        p = self.path / filename
        try:
            arrays = load_npz(p)
        except FileNotFoundError:
            return None
        except CorruptEntry as exc:
            discard(p, exc.reason, self.log)
            return None
        problem = layout_problem(filename, arrays) or (check(arrays) if check else None)
        if problem:
            discard(p, problem, self.log)
            return None
        return arrays

    # manifest ------------------------------------------------------------------------------------------
    def write_manifest(self, manifest: dict) -> None:
        text = manifest_text(manifest)
        atomic_write(self.path / "manifest.json", lambda tmp: Path(tmp).write_text(text))

    def inspect_manifest(self) -> tuple[Optional[dict], Optional[str]]:
        """(manifest, None), (None, None) when there is none, or (None, what is wrong): changes nothing."""
        p = self.path / "manifest.json"
        try:
            return parse_manifest(p, p.read_text(errors="replace")), None
        except FileNotFoundError:
            return None, None
        except CorruptEntry as exc:
            return None, exc.reason
        except OSError as exc:
            return None, f"unreadable: {exc}"

    def read_manifest(self) -> Optional[dict]:
        """The manifest, or None when there is none or it is corrupt (then reported once and quarantined: the
        capture writes a new one, from the scene)."""
        manifest, problem = self.inspect_manifest()
        if problem:
            discard(self.path / "manifest.json", problem, self.log)
        return manifest

    # named arrays (trajectory, directions) -------------------------------------------------------------
    def has(self, name: str) -> bool:
        """Whether the entry ``name`` exists (not whether it is sound: see :meth:`read`)."""
        return (self.path / f"{name}.npz").exists()

    def save_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        _save_npz(self.path / f"{name}.npz", arrays)

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        """The verified arrays of ``name``; raises :class:`~llstudio.store.integrity.CorruptEntry` (a CacheError)
        when it is corrupt, FileNotFoundError when it is missing."""
        return load_npz(self.path / f"{name}.npz")

    def read_arrays(self, name: str, check: Optional[Callable[[dict], Optional[str]]] = None) -> Optional[dict]:
        """:meth:`read` of entry ``name``: None when missing or corrupt (then quarantined)."""
        return self.read(f"{name}.npz", check)

    # captured steps ------------------------------------------------------------------------------------
    def read_step(self, step: int, shape: Optional[tuple] = None, samples: Optional[int] = None) -> Optional[dict]:
        """The step's verified arrays, or None when missing or corrupt; with ``shape`` (nx, ny) a grid of another
        shape, and with ``samples`` (S) one without S per-sample grids, counts as corrupt."""
        def check(z: dict) -> Optional[str]:
            problem = None if shape is None else _shape_problem(z, "loss", shape)
            if problem or samples is None:
                return problem
            if "sample_loss" not in z or "sample_center_loss" not in z:
                return "wrong keys: no per-sample losses"
            got, want = tuple(z["sample_loss"].shape), (samples, *z["loss"].shape)
            return None if got == want else f"wrong shape: sample_loss is {got}, expected {want}"
        return self.read(self.step_path(step).name, check)

    def has_step(self, step: int, shape: Optional[tuple] = None, samples: Optional[int] = None) -> bool:
        """Whether the step's file is there and sound (see :meth:`read_step`; a corrupt one is quarantined)."""
        return self.read_step(step, shape, samples) is not None

    def save_step(self, step: int, loss: np.ndarray, center_loss: float, sample_loss: Optional[np.ndarray] = None,
                  sample_center_loss: Optional[np.ndarray] = None) -> None:
        """``loss`` (nx, ny) with NaN for non-finite values, plus a done-mask of what is finite; for per-sample
        captures also ``sample_loss`` (S, nx, ny) and ``sample_center_loss`` (S,), NaN where not finite."""
        loss = np.where(np.isfinite(loss), loss, np.nan)
        arrays = {"loss": loss, "finite": np.isfinite(loss), "center_loss": np.array(center_loss)}
        if sample_loss is not None:
            arrays["sample_loss"] = np.where(np.isfinite(sample_loss), sample_loss, np.nan)
        if sample_center_loss is not None:
            arrays["sample_center_loss"] = np.where(np.isfinite(sample_center_loss), sample_center_loss, np.nan)
        _save_npz(self.step_path(step), arrays)

    def load_step(self, step: int) -> dict[str, np.ndarray]:
        """The step's verified arrays; raises CorruptEntry or FileNotFoundError."""
        return load_npz(self.step_path(step))

    # curvature maps (a companion file per captured step) ------------------------------------------------
    def curvature_path(self, step: int) -> Path:
        return self.path / f"curv_{step:07d}.npz"

    def save_curvature(self, step: int, arrays: dict[str, np.ndarray]) -> None:
        """``curv_min``, ``curv_max`` (cx, cy), NaN where not computed or not finite, and the masks ``done`` (points
        visited) and ``converged``. Saved after every row too, so a killed capture resumes mid-grid."""
        _save_npz(self.curvature_path(step), {k: np.asarray(arrays[k]) for k in
                                              ("curv_min", "curv_max", "done", "converged")})

    def load_curvature(self, step: int, shape: Optional[tuple] = None) -> Optional[dict[str, np.ndarray]]:
        """The step's curvature arrays (complete or partial), or None when missing or corrupt (a map of another
        shape than ``shape`` (cx, cy) too; a corrupt one is quarantined)."""
        check = None if shape is None else (lambda z: _shape_problem(z, "curv_min", shape))
        return self.read(self.curvature_path(step).name, check)

    def has_curvature(self, step: int, shape: Optional[tuple] = None) -> bool:
        """Whether the step's curvature map is complete (and sound)."""
        z = self.load_curvature(step, shape)
        return z is not None and bool(z["done"].all())

    def sweep(self) -> list[Path]:
        """Remove temporary files left by killed processes (never one a live process is writing)."""
        return sweep_temp_files(self.path)


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def _size(p: Path) -> int:
    try:
        return p.stat().st_size if p.is_file() else 0
    except OSError:  # removed meanwhile
        return 0


def _shape_problem(arrays: dict, key: str, shape: tuple) -> Optional[str]:
    got = tuple(arrays[key].shape)
    return None if got == tuple(shape) else f"wrong shape: {key} is {got}, expected {tuple(shape)}"


class CaptureStore:
    """All captures under one root directory."""

    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root) if root is not None else default_root()

    @property
    def captures(self) -> Path:
        return self.root / "captures"

    @property
    def trainings(self) -> Path:
        return self.root / "trainings"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def lock(self, kind: str, key: str, log=None, what: str = ""):
        """``with store.lock('capture', key, log):`` holds the lock of one capture (or training run, 'training')
        while another process with the same key waits (see ``store.locks.hold``); yields whether it waited."""
        return hold(self.locks / f"{kind}-{key}{LOCK_SUFFIX}", log=log, what=what or kind)

    def open(self, key: str, log: Log = None) -> CaptureDir:
        """The capture's directory; ``log`` reports corrupt files found in it."""
        d = CaptureDir(self.captures / key, log)
        d.path.mkdir(parents=True, exist_ok=True)
        return d

    def open_training(self, key: str, log: Log = None) -> CaptureDir:
        """The directory of one training run's trajectory (shared by the captures of that run)."""
        d = CaptureDir(self.trainings / key, log)
        d.path.mkdir(parents=True, exist_ok=True)
        return d

    def training_usage(self) -> tuple[int, int]:
        """(number of stored training runs, their size in bytes)."""
        dirs = [d for d in self.trainings.iterdir() if d.is_dir()] if self.trainings.exists() else []
        return len(dirs), sum(f.stat().st_size for d in dirs for f in d.iterdir() if f.is_file())

    def list(self) -> list[tuple[str, Optional[dict], int, Optional[str]]]:
        """(key, manifest, size in bytes, what is wrong with its manifest or None) of every capture, newest first;
        changes nothing (``verify`` repairs)."""
        if not self.captures.exists():
            return []
        out = []
        for d in sorted(self.captures.iterdir(), key=_mtime, reverse=True):
            if d.is_dir():
                manifest, problem = CaptureDir(d).inspect_manifest()
                out.append((d.name, manifest, sum(_size(f) for f in d.iterdir()), problem))
        return out

    def verify(self, key: Optional[str] = None) -> tuple[int, int, list[Finding]]:
        """Check every file of every capture and training run (or of the one ``key`` names), quarantining the
        corrupt ones so that the next render recomputes them: (entries checked, files checked, findings)."""
        dirs = [(p, top == self.captures) for top in (self.captures, self.trainings) if top.exists()
                for p in sorted(top.iterdir()) if p.is_dir() and (key is None or p.name == key)]
        files, findings = 0, []
        for d, capture in dirs:
            n, found = verify_dir(d, capture)
            files += n
            findings += found
        return len(dirs), files, findings

    def sweep(self) -> list[Path]:
        """Remove stale temporary files and lock files (left by killed processes) from every capture; returns those
        removed."""
        return [p for top in (self.captures, self.trainings) if top.exists()
                for d in sorted(top.iterdir()) if d.is_dir() for p in CaptureDir(d).sweep()] + sweep_locks(self.locks)

    def clear(self, key: Optional[str] = None) -> int:
        """Remove one capture (or all captures and stored training runs); returns how many captures were removed.

        A key that names a stored training run instead removes that run (and counts it)."""
        if key:
            targets = [self.captures / key, self.trainings / key]
        else:
            targets = [p for top in (self.captures, self.trainings) if top.exists() for p in top.iterdir()]
        n = 0
        for t in targets:
            if t.is_dir():
                shutil.rmtree(t)
                n += t.parent == self.captures or bool(key)
        return n
