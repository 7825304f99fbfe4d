"""The layout of arrays inside cache files: what the pipeline stores, as flat ``name → array`` dicts for npz.

``trajectory``: ``steps`` (K,), ``train_loss`` (T,), ``batches`` (T, B), ``w<i>/<param>`` the weights and
``b<i>/<buffer>`` the BatchNorm running statistics at captured step ``i``.
``directions``: ``d1/<param>``, ``d2/<param>``, the axes ``alphas`` (nx,) and ``betas`` (ny,), the primary run's
``path`` and ``updates`` (K, 2), ``run/<name>/path`` and ``run/<name>/updates`` for each further run, and
``explained_variance`` or ``hessian_eigenvalues`` (2,) where the directions' kind gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..train.training import Trajectory


def to_numpy(d: dict) -> dict[str, np.ndarray]:
    """name → tensor as name → array, on the CPU."""
    return {k: v.detach().cpu().numpy() for k, v in d.items()}


def to_torch(d: dict) -> dict:
    """name → array as name → tensor (sharing memory)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in d.items()}


def _prefixed(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def encode_trajectory(traj: Trajectory) -> dict[str, np.ndarray]:
    arrays = {"steps": traj.steps, "train_loss": traj.train_loss, "batches": traj.batches}
    for i, w in enumerate(traj.weights):
        arrays.update({f"w{i}/{n}": v for n, v in to_numpy(w).items()})
    for i, b in enumerate(traj.buffers):  # BatchNorm running statistics, for eval-mode capture
        arrays.update({f"b{i}/{n}": v for n, v in to_numpy(b).items()})
    return arrays


def decode_trajectory(arrays: dict[str, np.ndarray]) -> Trajectory:
    n = len(arrays["steps"])
    return Trajectory(arrays["steps"], [to_torch(_prefixed(arrays, f"w{i}/")) for i in range(n)],
                      arrays["train_loss"], arrays["batches"], [to_torch(_prefixed(arrays, f"b{i}/")) for i in range(n)])


@dataclass(frozen=True)
class StoredPlane:
    """The directions entry: the two directions, the grid's axes, every run's path and update arrows on the plane
    (run name → (K, 2), primary first), and what the directions' kind reports (PCA ratios or eigenvalues)."""

    d1: dict
    d2: dict
    alphas: np.ndarray
    betas: np.ndarray
    paths: dict
    updates: dict
    explained_variance: Optional[np.ndarray] = None
    hessian_eigenvalues: Optional[np.ndarray] = None


def encode_plane(plane: StoredPlane) -> dict[str, np.ndarray]:
    primary, *others = list(plane.paths)
    arrays = {**{f"d1/{k}": v for k, v in to_numpy(plane.d1).items()},
              **{f"d2/{k}": v for k, v in to_numpy(plane.d2).items()},
              "alphas": plane.alphas, "betas": plane.betas, "path": plane.paths[primary],
              "updates": plane.updates[primary]}
    for n in others:
        arrays[f"run/{n}/path"], arrays[f"run/{n}/updates"] = plane.paths[n], plane.updates[n]
    if plane.explained_variance is not None:
        arrays["explained_variance"] = plane.explained_variance
    if plane.hessian_eigenvalues is not None:
        arrays["hessian_eigenvalues"] = plane.hessian_eigenvalues
    return arrays


def decode_plane(arrays: dict[str, np.ndarray], run_names: list[str]) -> StoredPlane:
    """``run_names``: every run, primary first (the primary run's path has the plain names)."""
    paths = {run_names[0]: arrays["path"], **{n: arrays[f"run/{n}/path"] for n in run_names[1:]}}
    updates = {run_names[0]: arrays["updates"], **{n: arrays[f"run/{n}/updates"] for n in run_names[1:]}}
    return StoredPlane(to_torch(_prefixed(arrays, "d1/")), to_torch(_prefixed(arrays, "d2/")), arrays["alphas"],
                       arrays["betas"], paths, updates, arrays.get("explained_variance"),
                       arrays.get("hessian_eigenvalues"))
