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
either the old state or the new one, never half a file; a rerun skips what exists.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import CacheError
from ..files import atomic_write, sweep_temp_files
from .locks import SUFFIX as LOCK_SUFFIX
from .locks import hold, sweep_locks




def default_root() -> Path:
    """``$LLSTUDIO_CACHE``, else ``$XDG_CACHE_HOME/llstudio``, else ``~/.cache/llstudio``."""
    env = os.environ.get("LLSTUDIO_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llstudio"


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    atomic_write(path, write)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CacheError(f"{path}: unreadable cache file ({exc}); run with --no-cache or 'llstudio cache clear'") from None


class CaptureDir:
    """One capture's directory."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def step_path(self, step: int) -> Path:
        return self.path / f"step_{step:07d}.npz"

    # manifest ------------------------------------------------------------------------------------------
    def write_manifest(self, manifest: dict) -> None:
        text = json.dumps(manifest, indent=2, sort_keys=True)
        atomic_write(self.path / "manifest.json", lambda tmp: Path(tmp).write_text(text))

    def read_manifest(self) -> Optional[dict]:
        p = self.path / "manifest.json"
        return json.loads(p.read_text()) if p.exists() else None

    # named arrays (trajectory, directions) -------------------------------------------------------------
    def has(self, name: str) -> bool:
        return (self.path / f"{name}.npz").exists()

    def save_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        _save_npz(self.path / f"{name}.npz", arrays)

    def load_arrays(self, name: str) -> dict[str, np.ndarray]:
        return _load_npz(self.path / f"{name}.npz")

    # captured steps ------------------------------------------------------------------------------------
    def has_step(self, step: int) -> bool:
        return self.step_path(step).exists()

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
        return _load_npz(self.step_path(step))

    # curvature maps (a companion file per captured step) ------------------------------------------------
    def curvature_path(self, step: int) -> Path:
        return self.path / f"curv_{step:07d}.npz"

    def save_curvature(self, step: int, arrays: dict[str, np.ndarray]) -> None:
        """``curv_min``, ``curv_max`` (cx, cy), NaN where not computed or not finite, and the masks ``done`` (points
        visited) and ``converged``. Saved after every row too, so a killed capture resumes mid-grid."""
        _save_npz(self.curvature_path(step), {k: np.asarray(arrays[k]) for k in
                                              ("curv_min", "curv_max", "done", "converged")})

    def load_curvature(self, step: int) -> Optional[dict[str, np.ndarray]]:
        """The step's curvature arrays (complete or partial), or None."""
        p = self.curvature_path(step)
        return _load_npz(p) if p.exists() else None

    def has_curvature(self, step: int) -> bool:
        """Whether the step's curvature map is complete."""
        z = self.load_curvature(step)
        return z is not None and bool(z["done"].all())

    def sweep(self) -> list[Path]:
        """Remove temporary files left by killed processes (never one a live process is writing)."""
        return sweep_temp_files(self.path)


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

    def open(self, key: str) -> CaptureDir:
        d = CaptureDir(self.captures / key)
        d.path.mkdir(parents=True, exist_ok=True)
        return d

    def open_training(self, key: str) -> CaptureDir:
        """The directory of one training run's trajectory (shared by the captures of that run)."""
        d = CaptureDir(self.trainings / key)
        d.path.mkdir(parents=True, exist_ok=True)
        return d

    def training_usage(self) -> tuple[int, int]:
        """(number of stored training runs, their size in bytes)."""
        dirs = [d for d in self.trainings.iterdir() if d.is_dir()] if self.trainings.exists() else []
        return len(dirs), sum(f.stat().st_size for d in dirs for f in d.iterdir() if f.is_file())

    def list(self) -> list[tuple[str, Optional[dict], int]]:
        """(key, manifest, size in bytes) of every capture, newest first."""
        if not self.captures.exists():
            return []
        out = []
        for d in sorted(self.captures.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
            if d.is_dir():
                size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
                out.append((d.name, CaptureDir(d).read_manifest(), size))
        return out

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
