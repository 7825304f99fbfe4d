"""The directions stage: the two directions, the plane's centre, the grid's axes and every run's path on the plane,
computed once and stored (``directions`` entry), then reused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence

from ..config.scene import Scene
from ..errors import SceneError
from ..landscape.curvature import NonFiniteCurvature, hessian_directions
from ..landscape.directions import (interpolation_directions, pca_directions, project, random_directions,
                                    weight_directions, weight_values, zeros_like)
from ..store.codec import StoredPlane, decode_plane, encode_plane
from ..train.runs import checkpoint_path, endpoint_keys, endpoint_kind, load_checkpoint
from ..train.training import Trajectory, initial_model
from .coordinates import axes
from .context import CaptureContext
from .hessian import hessian_index, hessian_operator


@dataclass(frozen=True)
class Plane:
    """The stored directions entry plus the fixed frame's centre ``origin`` (None in the follow frame)."""

    stored: StoredPlane
    origin: Optional[dict]

    @property
    def d1(self) -> dict:
        return self.stored.d1

    @property
    def d2(self) -> dict:
        return self.stored.d2


def choose_plane(ctx: CaptureContext, trajs: dict[str, Trajectory]) -> Plane:
    """The plane of the capture: from the store when it holds it, else computed from the runs and stored."""
    scene = ctx.scene
    origin = _plane_center(ctx, trajs) if ctx.fixed else None
    stored = _stored_plane(ctx, trajs)
    if stored is not None:
        return Plane(stored, origin)
    traj = next(iter(trajs.values()))
    d1, d2, explained = _directions(ctx, trajs)
    eigenvalues = None
    if scene.directions.kind == "hessian":
        eigenvalues, explained = explained, None
    # Every run is projected onto the one plane (least squares), each with its own update arrows.
    paths = {n: _run_path(scene, t.weights, origin, d1, d2) for n, t in trajs.items()}
    updates = {n: _run_updates(scene, t.weights, d1, d2) for n, t in trajs.items()}
    alphas, betas = axes(scene, np.concatenate(list(paths.values())))
    stored = StoredPlane(d1, d2, alphas, betas, paths, updates, explained, eigenvalues)
    if explained is not None:
        ctx.progress.log(f"directions: PCA explains {explained[0]:.1%} and {explained[1]:.1%} of the trajectory's "
                         "variance")
    if eigenvalues is not None:
        manifest = ctx.cdir.read_manifest() or {}
        ctx.cdir.write_manifest({**manifest, "hessian_eigenvalues": [float(v) for v in eigenvalues],
                                 "hessian_step": int(traj.steps[hessian_index(scene, traj)])})
    ctx.cdir.save_arrays("directions", encode_plane(stored))
    return Plane(stored, origin)


def _stored_plane(ctx: CaptureContext, trajs: dict[str, Trajectory]) -> Optional[StoredPlane]:
    """The stored directions entry, or None when it is missing or corrupt (reported, quarantined: recomputed);
    directions that are not the model's weights or axes of another grid count as corrupt."""
    if not ctx.use_cache:
        return None
    names = ctx.scene.training.run_names()
    weights = {k: tuple(v.shape) for k, v in next(iter(trajs.values())).weights[-1].items()}

    def problem(z: dict) -> Optional[str]:
        for d in ("d1/", "d2/"):
            got = {k[len(d):]: tuple(v.shape) for k, v in z.items() if k.startswith(d)}
            if not got or any(weights.get(k) != shape for k, shape in got.items()):
                return f"wrong keys or shapes: {d[:2]} is not a direction in the model's weights"
        if (len(z["alphas"]), len(z["betas"])) != ctx.scene.grid.shape:
            return f"wrong shape: axes of {len(z['alphas'])}x{len(z['betas'])}, the grid is " \
                   f"{ctx.scene.grid.shape[0]}x{ctx.scene.grid.shape[1]}"
        missing = [n for n in names[1:] if f"run/{n}/path" not in z or f"run/{n}/updates" not in z]
        return f"wrong keys: no path of run {missing[0]}" if missing else None

    arrays = ctx.cdir.read_arrays("directions", problem)
    return None if arrays is None else decode_plane(arrays, names)


def initial_weights(scene: Scene, data, dtype) -> dict:
    return {k: v.detach().clone() for k, v in initial_model(scene, data, dtype).named_parameters()}


def _normalization_reference(ctx: CaptureContext, traj: Trajectory) -> dict:
    """The weights the directions are normalised against: the final weights, or the initial ones when asked or
    when the run diverged (weights blown up to inf/NaN would give directions of no use at any step)."""
    final = traj.weights[-1]
    if ctx.scene.directions.normalize_to == "final":
        if all(bool(torch.isfinite(v).all()) for v in final.values()):
            return final
        ctx.progress.log("warning: the final weights are not finite (the run diverged); the directions are "
                         "normalised against the initial weights instead")
    return start_weights(ctx, traj)


def start_weights(ctx: CaptureContext, traj: Trajectory) -> dict:
    """The run's weights at step 0: a run read from training.source has them recorded (a fresh model has other
    values); a trained run starts from the seeded initial model."""
    if ctx.scene.training.source is not None and len(traj.steps) and int(traj.steps[0]) == 0:
        return traj.weights[0]
    return initial_weights(ctx.scene, ctx.data, ctx.dtype)


def _plane_center(ctx: CaptureContext, trajs: dict) -> dict:
    """Centre of the fixed frame's plane: the initial, final or a captured step's weights of the (primary) run;
    for interpolation, the start point."""
    scene, traj = ctx.scene, next(iter(trajs.values()))
    if scene.directions.kind == "interpolation":
        return _endpoint(ctx, "start", trajs)
    c = scene.directions.center
    if c == "initial":
        return start_weights(ctx, traj)
    if c == "final":
        return traj.weights[-1]
    return traj.weights[list(traj.steps).index(c)]


def _endpoint(ctx: CaptureContext, key: str, trajs: dict) -> dict:
    """The weights an interpolation endpoint (``directions.<key>``) names. ``trajs``: run name → Trajectory,
    primary first. 'final' and 'run:NAME' are the weights at the last captured step."""
    scene = ctx.scene
    e = getattr(scene.directions, key)
    primary = next(iter(trajs.values()))
    kind = endpoint_kind(e)
    if kind == "initial":
        return start_weights(ctx, primary)
    if kind == "final":
        return primary.weights[-1]
    if kind == "step":
        return primary.weights[list(primary.steps).index(e)]
    if kind == "run":
        return trajs[e[len("run:"):]].weights[-1]
    try:
        return load_checkpoint(checkpoint_path(scene, e), initial_weights(scene, ctx.data, ctx.dtype))
    except ValueError as exc:
        raise SceneError(ctx.source(), [(f"directions.{key}", str(exc))]) from None


def _hessian_directions(ctx: CaptureContext, traj: Trajectory):
    """The top-2 Hessian eigenvectors at directions.hessian_step, and their eigenvalues."""
    spec = ctx.scene.directions
    at = hessian_index(ctx.scene, traj)
    op = hessian_operator(ctx.scene, ctx.data, ctx.device, ctx.dtype)
    op.set_buffers(traj.buffers[at] if traj.buffers else {})
    try:
        d1, d2, eigenvalues = hessian_directions(op, traj.weights[at], spec.hessian_which, seed=spec.seed)
    except (NonFiniteCurvature, ArpackNoConvergence) as exc:
        why = ("the loss or its Hessian is not finite there (the run diverged)" if isinstance(
            exc, NonFiniteCurvature) else "the eigenvalue solver did not converge there")
        raise SceneError(ctx.source(), [(
            "directions.hessian_step", f"no Hessian directions at step {int(traj.steps[at])}: {why}; choose an "
            "earlier captured step, or other directions")]) from None
    ctx.progress.log(f"directions: Hessian eigenvectors at step {int(traj.steps[at])}, eigenvalues "
                     f"{eigenvalues[0]:.4g} and {eigenvalues[1]:.4g} ({op.products} Hessian-vector products)")
    return d1, d2, eigenvalues


def _interpolation_directions(ctx: CaptureContext, trajs: dict):
    ends = {k: _endpoint(ctx, k, trajs) for k in endpoint_keys(ctx.scene)}
    try:
        return interpolation_directions(ends["start"], ends["end"], ends.get("via"), ctx.scene.directions,
                                        ctx.scene.grid.dimensions)
    except ValueError as exc:
        key = "directions.via" if "via" in str(exc) else "directions.end"
        raise SceneError(ctx.source(), [(key, str(exc))]) from None


def _directions(ctx: CaptureContext, trajs: dict):
    """(d1, d2, explained variance ratio, or the eigenvalues of 'hessian' directions, or None) as the scene asks,
    from the primary run (or, for PCA with ``directions.pca_runs = 'all'``, from every run). On a 1D grid d2 is
    zero."""
    spec = ctx.scene.directions
    traj = next(iter(trajs.values()))
    explained = None
    if spec.kind == "hessian":
        d1, d2, explained = _hessian_directions(ctx, traj)
    elif spec.kind == "weights":
        d1, d2 = weight_directions(spec.weights, traj.weights[-1])
    elif spec.kind == "interpolation":
        d1, d2, _ = _interpolation_directions(ctx, trajs)
    elif spec.kind == "pca":
        weights = traj.weights if spec.pca_runs == "primary" else [w for t in trajs.values() for w in t.weights]
        # PCA centres the differences on their mean, so the reference they are taken from does not matter.
        d1, d2, explained = pca_directions(weights, traj.weights[-1], spec.include_biases)
    else:
        d1, d2 = random_directions(spec, _normalization_reference(ctx, traj))
    if ctx.scene.grid.dimensions == 1:
        d2 = zeros_like(d1)
    return d1, d2, explained


def second_direction_note(scene: Scene) -> str:
    """How d2 is made, for the manifest (pure: from the scene alone)."""
    d = scene.directions
    if scene.grid.dimensions == 1:
        return "none: a 1D grid uses d1 only (d2 is zero, beta = 0)"
    if d.kind == "interpolation":
        if d.via is not None:
            return "via - start, orthogonalised against d1 (Gram-Schmidt), unnormalised: via lies at beta = 1"
        return (f"random (seed {d.seed}), {d.normalization}-normalised against the start weights, then "
                "orthogonalised against d1 (Gram-Schmidt)")
    return {"weights": "the second named weight", "pca": "the second principal component",
            "random": f"random (seed {d.seed}), {d.normalization}-normalised",
            "hessian": f"the Hessian eigenvector of the second {d.hessian_which} eigenvalue"}[d.kind]


def _run_path(scene: Scene, weights: list, origin: Optional[dict], d1: dict, d2: dict) -> np.ndarray:
    """(K, 2) coordinates of a run's weights on the plane: named weights' values, the least-squares projection
    (fixed frame), or zeros (follow frame: the grid moves with the weights)."""
    if scene.directions.kind == "weights":
        return weight_values(weights, scene.directions.weights)
    if scene.directions.frame == "fixed":
        return project(weights, origin, d1, d2 if scene.grid.dimensions == 2 else None)
    return np.zeros((len(weights), 2))


def _run_updates(scene: Scene, weights: list, d1: dict, d2: dict) -> np.ndarray:
    """(K, 2): each captured step's move to the next on the plane (zero after the last). Least squares is linear
    in the point, so differences of one projection are the projected differences."""
    updates = np.zeros((len(weights), 2))
    updates[:-1] = np.diff(project(weights, weights[0], d1, d2 if scene.grid.dimensions == 2 else None), axis=0)
    return updates
