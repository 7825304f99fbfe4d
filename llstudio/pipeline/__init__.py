"""The only module that knows the order of the stages and where the cache is checked.

scene → training → directions → capture → store → timeline → camera → render → encode
"""

from __future__ import annotations

import contextlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .. import __version__
from ..errors import UsageError
from ..config.presets import ALPHA_FORMATS, FORMATS, QUALITIES
from ..progress import Progress
from ..train.runs import checkpoint_files, endpoint_keys, endpoint_kind, run_scene
from ..config.scene import TRANSPARENT, Scene
from ..store.store import FORMAT_VERSION, CaptureStore, canonical_hash

# Sections of a scene that determine the captured numbers; the rest (look, camera, output...) does not.
CAPTURE_SECTIONS = ("data", "model", "training", "directions", "grid")


def auto_range(values: np.ndarray, margin: float = 0.25) -> list[float]:
    """[min, max] covering ``values`` and 0 (the centre) with ``margin`` of the span on each side."""
    lo, hi = min(float(np.min(values)), 0.0), max(float(np.max(values)), 0.0)
    span = hi - lo if hi > lo else 1.0
    return [lo - margin * span, hi + margin * span]


def axes(scene: Scene, path: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """The grid's alpha (nx,) and beta (ny,) coordinates; an 'auto' range is fitted to ``path`` (K, 2)."""
    nx, ny = scene.grid.shape
    if scene.grid.range == "auto":
        if path is None:
            raise ValueError("an 'auto' grid range needs the projected path")
        finite = path[np.all(np.isfinite(path), axis=1)]
        finite = finite if len(finite) else np.zeros((1, 2))
        xr, yr = auto_range(finite[:, 0]), auto_range(finite[:, 1])
    else:
        xr = scene.grid.range
        yr = scene.grid.y_range or scene.grid.range
    if scene.grid.dimensions == 1:
        # The 1D contract: one beta, zero, so loss is (steps, nx, 1) and every point lies on the line of d1.
        return np.linspace(xr[0], xr[1], nx), np.array([0.0])
    return np.linspace(xr[0], xr[1], nx), np.linspace(yr[0], yr[1], ny)


def zoom_scales(steps, zoom: float) -> np.ndarray:
    """(steps,) factor each captured step's grid axes are multiplied by (``grid.zoom``): 1 at the first step,
    ``zoom`` at the last, geometric in between by step number. Exactly 1 everywhere without zoom (or with a
    single captured step)."""
    steps = np.asarray(steps, dtype=np.float64)
    if zoom == 1.0 or len(steps) < 2 or steps[-1] == steps[0]:
        return np.ones(len(steps))
    scales = float(zoom) ** ((steps - steps[0]) / (steps[-1] - steps[0]))
    scales[0], scales[-1] = 1.0, float(zoom)  # exact at both ends, whatever the rounding of the power
    return scales


def capture_key(scene: Scene, device_type: str) -> str:
    """Hash of everything that determines the captured numbers (not camera, look, output, timeline)."""
    import torch

    dump = scene.resolved_dump()
    ident = {s: dump[s] for s in CAPTURE_SECTIONS}
    if scene.grid.zoom == 1.0:  # absent without zoom, so scenes from before grid.zoom keep their keys
        ident["grid"].pop("zoom")
    # Where the dataset lives does not change the numbers: moving it must not invalidate the cache.
    ident["data"].pop("root", None)
    ident["capture"] = {"steps": scene.captured_steps(), "dtype": scene.capture.dtype, "data": scene.capture.data,
                        "mode": scene.capture.mode}
    if scene.capture.mode == "recompute_bn":
        ident["capture"]["bn_samples"] = scene.capture.bn_samples
    if scene.capture.dropout != "off":  # absent otherwise, so scenes without dropout masks keep their keys
        ident["capture"]["dropout"] = scene.capture.dropout
        ident["capture"]["dropout_seed"] = scene.capture.dropout_seed
    if scene.capture.curvature_on:  # absent otherwise, so scenes without curvature keep their keys
        ident["capture"]["curvature"] = dump["capture"]["curvature"]
    hessian = scene.capture.curvature_on or scene.directions.kind == "hessian"
    if hessian and (scene.capture.mode != "eval" or scene.capture.data == "samples"):
        # Hessians follow capture.mode and the per-sample subset, as the loss does; they used eval BatchNorm on the
        # whole evaluation subset before, and such captures must not reuse those numbers.
        ident["capture"]["hessian"] = "mode-and-samples"
    # A checkpoint endpoint's numbers are in its file, not in the scene: its contents are part of the key.
    ident["checkpoints"] = {k: _checkpoint_sha256(scene, k, p) for k, p in checkpoint_files(scene).items()}
    if scene.capture.data == "samples":
        ident["capture"]["samples"] = scene.capture.sample_indices()
    _add_factory_source(scene, ident)
    ident["device_type"] = device_type
    ident["versions"] = {"format": FORMAT_VERSION, "torch": torch.__version__.split("+")[0]}
    return canonical_hash(ident)[:24]


def _add_factory_source(scene: Scene, ident: dict) -> None:
    """A custom model's numbers depend on its factory's code, not only on its name (absent for built-in models,
    so their keys do not change)."""
    if scene.model.kind == "custom":
        from ..train.models import factory_source_sha256

        ident["factory_source"] = factory_source_sha256(scene.model.factory)


def training_key(scene: Scene, device_type: str) -> str:
    """Hash of everything that determines one training run's trajectory: ``scene`` is the run's own scene
    (``run_scene``). Not the directions, grid, capture mode or look: captures that differ only there share it."""
    import torch

    dump = scene.resolved_dump()
    ident = {"data": {k: v for k, v in dump["data"].items() if k != "root"}, "model": dump["model"],
             "training": dump["training"], "snapshots": scene.captured_steps(), "dtype": scene.capture.dtype,
             "device_type": device_type,
             "versions": {"format": FORMAT_VERSION, "torch": torch.__version__.split("+")[0]}}
    _add_factory_source(scene, ident)
    return canonical_hash(ident)[:24]


def _checkpoint_sha256(scene: Scene, key: str, path: Path) -> str:
    from ..errors import SceneError
    from ..train.runs import file_sha256, missing_checkpoint_message

    if not path.is_file():
        raise SceneError(scene.source or "<scene>", [(key, missing_checkpoint_message(path))])
    return file_sha256(path)


@dataclass(frozen=True)
class RunRecord:
    """One training run on the shared plane. ``plane_path`` (steps, 2): least-squares (alpha, beta) of its weights
    at each captured step; ``center_loss`` (steps,): the loss at those weights (on the evaluation subset);
    ``train_loss`` (training steps,): its mini-batch losses; ``updates`` (steps, 2): the move from each captured
    step to the next on the plane (zero after the last)."""

    name: str
    plane_path: np.ndarray
    center_loss: np.ndarray
    train_loss: np.ndarray
    updates: np.ndarray


@dataclass
class Capture:
    """A captured film's numbers, for the renderer and for notebook users.

    ``loss`` is (steps, nx, ny) with 'ij' indexing: ``loss[k, i, j]`` is the loss at ``c_k + alphas[i] * d1
    + betas[j] * d2``, where ``c_k`` is ``centers[k]`` in the follow frame and the one plane centre in the fixed
    frame (every step then has the same grid). ``directions`` are two dicts ``name → tensor`` shaped like the
    model's parameters. ``center_loss`` (steps,) is the loss at each captured step's own weights; ``plane_path``
    (steps, 2) their least-squares (alpha, beta) coordinates on the plane (zeros in the follow frame), and
    ``updates`` (steps, 2) the move from each captured step to the next in the same coordinates.
    ``explained_variance`` holds the PCA ratio of each direction for 'pca' directions.

    With ``[capture.curvature]``: ``curv_min`` and ``curv_max`` (steps, cx, cy) are the minimum and maximum
    eigenvalue of the Hessian (all parameters) at ``c_k + curvature_alphas[i] * d1 + curvature_betas[j] * d2``
    (a coarser grid over the same range), NaN where not finite or not converged; ``convexity`` their ratio.
    ``hessian_eigenvalues`` (2,) are the eigenvalues of 'hessian' directions.
    On a 1D grid (``grid.dimensions = 1``) ``betas`` is ``[0.0]``, ``loss`` is (steps, nx, 1) and d2 is zero.
    ``runs`` lists every training run on the plane, primary first (one record, named 'main', without
    ``[[training.runs]]``); the single-run fields above describe the primary run. ``center_buffers[k]`` are
    the BatchNorm running statistics (name → tensor) at captured step ``k`` (empty dicts without BatchNorm).
    Per-sample captures (``capture.data = 'samples'``) also hold ``sample_loss`` (steps, S, nx, ny), the loss of
    each chosen sample alone (``loss`` is their mean), ``sample_center_loss`` (steps, S) and ``sample_indices``
    (S,), the samples' positions in the fixed evaluation subset (``eval_data``).
    ``scales`` (steps,): with ``grid.zoom``, captured step ``k`` is evaluated on ``alphas * scales[k]`` and
    ``betas * scales[k]`` (its curvature map likewise), so ``loss[k, i, j]`` is the loss at ``c_k + alphas[i] *
    scales[k] * d1 + betas[j] * scales[k] * d2``; ``alphas`` and ``betas`` stay the first step's (scale 1) axes.
    Ones without zoom. ``plane_path`` and ``updates`` are in unscaled (alpha, beta) units.
    """

    scene: Scene
    key: str
    path: Path
    alphas: np.ndarray
    betas: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    center_loss: np.ndarray
    train_loss: np.ndarray
    centers: list = field(repr=False)
    directions: tuple = field(repr=False)
    device: str = "cpu"
    plane_path: Optional[np.ndarray] = None
    updates: Optional[np.ndarray] = None
    frame: str = "follow"
    explained_variance: Optional[np.ndarray] = None
    curvature_alphas: Optional[np.ndarray] = None
    curvature_betas: Optional[np.ndarray] = None
    curv_min: Optional[np.ndarray] = None
    curv_max: Optional[np.ndarray] = None
    hessian_eigenvalues: Optional[np.ndarray] = None
    sample_loss: Optional[np.ndarray] = None
    sample_center_loss: Optional[np.ndarray] = None
    sample_indices: Optional[np.ndarray] = None
    runs: list = field(default_factory=list)
    center_buffers: list = field(default_factory=list, repr=False)
    scales: Optional[np.ndarray] = None

    def __post_init__(self):
        if self.scales is None:
            self.scales = np.ones(len(self.steps))

    @property
    def convexity(self) -> Optional[np.ndarray]:
        """(steps, cx, cy) ``|curv_min / curv_max|``: near 0 where the surface is locally convex; None without
        curvature maps."""
        if self.curv_min is None:
            return None
        from ..landscape.curvature import convexity_ratio

        return convexity_ratio(self.curv_min, self.curv_max)

    @property
    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.alphas, self.betas

    @property
    def data(self):
        """The dataset, with the fixed evaluation subset the landscape was measured on (``x_eval``, ``y_eval``)."""
        from ..train.data import load_dataset
        from ..train.models import wants_images

        return load_dataset(self.scene.data, images=wants_images(self.scene.model))

    @property
    def eval_data(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return d.x_eval, d.y_eval

    def model(self, k: int = -1):
        """The model with the weights of captured step index ``k`` (default: the last), on the CPU."""
        import torch

        from ..train.training import initial_model

        dtype = getattr(torch, self.scene.capture.dtype)
        m = initial_model(self.scene, self.data, dtype)
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.copy_(self.centers[k][name])
            if self.center_buffers:
                for name, b in m.named_buffers():
                    if name in self.center_buffers[k]:
                        b.copy_(self.center_buffers[k][name])
        return m.eval()


def _to_numpy(d: dict) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in d.items()}


def _to_torch(d: dict) -> dict:
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in d.items()}


def _normalization_reference(scene: Scene, data, dtype, traj, progress: Progress) -> dict:
    """The weights the directions are normalised against: the final weights, or the initial ones when asked or
    when the run diverged (weights blown up to inf/NaN would give directions of no use at any step)."""
    import torch

    final = traj.weights[-1]
    if scene.directions.normalize_to == "final":
        if all(bool(torch.isfinite(v).all()) for v in final.values()):
            return final
        progress.log("warning: the final weights are not finite (the run diverged); the directions are normalised "
                     "against the initial weights instead")
    return _initial_weights(scene, data, dtype)


def _initial_weights(scene: Scene, data, dtype) -> dict:
    from ..train.training import initial_model

    return {k: v.detach().clone() for k, v in initial_model(scene, data, dtype).named_parameters()}


def _plane_center(scene: Scene, data, dtype, traj, trajs: Optional[dict] = None) -> dict:
    """Centre of the fixed frame's plane: the initial, final or a captured step's weights of the (primary) run;
    for interpolation, the start point."""
    if scene.directions.kind == "interpolation":
        return _endpoint(scene, "start", data, dtype, trajs or {scene.training.run_names()[0]: traj})
    c = scene.directions.center
    if c == "initial":
        return _initial_weights(scene, data, dtype)
    if c == "final":
        return traj.weights[-1]
    return traj.weights[list(traj.steps).index(c)]


def _endpoint(scene: Scene, key: str, data, dtype, trajs: dict) -> dict:
    """The weights an interpolation endpoint (``directions.<key>``) names. ``trajs``: run name → Trajectory,
    primary first. 'final' and 'run:NAME' are the weights at the last captured step."""
    from ..errors import SceneError
    from ..train.runs import checkpoint_path, load_checkpoint

    e = getattr(scene.directions, key)
    primary = trajs[scene.training.run_names()[0]]
    kind = endpoint_kind(e)
    if kind == "initial":
        return _initial_weights(scene, data, dtype)
    if kind == "final":
        return primary.weights[-1]
    if kind == "step":
        return primary.weights[list(primary.steps).index(e)]
    if kind == "run":
        return trajs[e[len("run:"):]].weights[-1]
    try:
        return load_checkpoint(checkpoint_path(scene, e), _initial_weights(scene, data, dtype))
    except ValueError as exc:
        raise SceneError(scene.source or "<scene>", [(f"directions.{key}", str(exc))]) from None


def _check_weight_refs(scene: Scene, data, dtype) -> None:
    """Named weights (directions, starting values) must exist in the model and checkpoint files must fit it: say so
    before any training, as a scene error with its key path."""
    from ..landscape.directions import check_weight_ref
    from ..errors import SceneError

    from ..train.runs import checkpoint_path, load_checkpoint

    refs = []
    if scene.directions.kind == "weights":
        refs += [(f"directions.weights[{i}]", ref) for i, ref in enumerate(scene.directions.weights)]
    refs += [(f'training.init."{ref}"', ref) for ref in scene.training.init or {}]
    refs += [(f"training.train_only[{i}]", ref) for i, ref in enumerate(scene.training.train_only or [])]
    for j, run in enumerate(scene.training.runs or []):
        refs += [(f'training.runs[{j}].init."{ref}"', ref) for ref in run.init or {}]
    files = {key: getattr(scene.directions, key) for key in endpoint_keys(scene)
             if endpoint_kind(getattr(scene.directions, key)) == "file"}
    if not refs and not files:
        return
    from ..train.models import build_model

    # Built without training.init: the references are checked before they are used.
    params = dict(build_model(scene.model, data.input_shape, data.n_classes).to(dtype).named_parameters())
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


def _hessian_operator(scene: Scene, data, device, dtype, sample_idx=None):
    """Hessian-vector products of the loss the landscape shows, on the capture's device: on the fixed evaluation
    subset (its ``sample_idx`` samples with capture.data = 'samples', whose mean is the film's landscape), with
    BatchNorm as capture.mode says."""
    import torch

    from ..landscape.curvature import HessianOperator
    from ..train.data import bn_subset
    from ..train.models import loss_fn
    from ..train.training import initial_model

    mode = scene.capture.mode
    bn_x = (torch.as_tensor(bn_subset(data, scene.capture.bn_samples, scene.data.eval_seed))
            if mode == "recompute_bn" else None)
    x, y = torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval)
    if sample_idx is not None:
        x, y = x[sample_idx], y[sample_idx]
    return HessianOperator(initial_model(scene, data, dtype), x, y, loss_fn(scene.training.loss, data.n_classes),
                           device, dtype, mode=mode, bn_x=bn_x)


def _hessian_index(scene: Scene, traj) -> int:
    """Index into the captured steps of directions.hessian_step."""
    h = scene.directions.hessian_step
    return len(traj.steps) - 1 if h == "final" else list(traj.steps).index(h)


def _check_sample_indices(scene: Scene, data) -> np.ndarray:
    """Positions of the per-sample landscapes in the evaluation subset, which may be smaller than data.eval_size
    (a small train_size caps it): a scene error with its key path when one is past the end."""
    from ..errors import SceneError

    idx = np.asarray(scene.capture.sample_indices(), dtype=np.int64)
    n = len(data.y_eval)
    if idx.max() >= n:
        raise SceneError(scene.source or "<scene>", [(
            "capture.samples", f"position {int(idx.max())} is past the end of the evaluation subset, which holds "
            f"{n} samples here (data.eval_size = {scene.data.eval_size}, capped by the training set): use "
            f"positions 0 … {n - 1}")])
    return idx


def _directions(scene: Scene, data, dtype, traj, progress: Progress, trajs: Optional[dict] = None, device=None):
    """(d1, d2, explained variance ratio, or the eigenvalues of 'hessian' directions, or None) as the scene asks,
    from the primary run ``traj`` (or, for PCA with ``directions.pca_runs = 'all'``, from every run in ``trajs``).
    On a 1D grid d2 is zero."""
    import torch

    from scipy.sparse.linalg import ArpackNoConvergence

    from ..landscape.curvature import NonFiniteCurvature, hessian_directions
    from ..landscape.directions import (interpolation_directions, pca_directions, random_directions, weight_directions,
                             zeros_like)
    from ..errors import SceneError

    spec = scene.directions
    trajs = trajs or {scene.training.run_names()[0]: traj}
    explained = None
    if spec.kind == "hessian":
        at = _hessian_index(scene, traj)
        op = _hessian_operator(scene, data, device or torch.device("cpu"), dtype)
        op.set_buffers(traj.buffers[at] if traj.buffers else {})
        try:
            d1, d2, explained = hessian_directions(op, traj.weights[at], spec.hessian_which, seed=spec.seed)
        except (NonFiniteCurvature, ArpackNoConvergence) as exc:
            why = ("the loss or its Hessian is not finite there (the run diverged)" if isinstance(
                exc, NonFiniteCurvature) else "the eigenvalue solver did not converge there")
            raise SceneError(scene.source or "<scene>", [(
                "directions.hessian_step", f"no Hessian directions at step {int(traj.steps[at])}: {why}; choose an "
                "earlier captured step, or other directions")]) from None
        progress.log(f"directions: Hessian eigenvectors at step {int(traj.steps[at])}, eigenvalues "
                     f"{explained[0]:.4g} and {explained[1]:.4g} ({op.products} Hessian-vector products)")
    elif spec.kind == "weights":
        d1, d2 = weight_directions(spec.weights, traj.weights[-1])
    elif spec.kind == "interpolation":
        ends = {k: _endpoint(scene, k, data, dtype, trajs) for k in endpoint_keys(scene)}
        try:
            d1, d2, _ = interpolation_directions(ends["start"], ends["end"], ends.get("via"), spec,
                                                 scene.grid.dimensions)
        except ValueError as exc:
            key = "directions.via" if "via" in str(exc) else "directions.end"
            raise SceneError(scene.source or "<scene>", [(key, str(exc))]) from None
    elif spec.kind == "pca":
        weights = traj.weights if spec.pca_runs == "primary" else [w for t in trajs.values() for w in t.weights]
        # PCA centres the differences on their mean, so the reference they are taken from does not matter.
        d1, d2, explained = pca_directions(weights, traj.weights[-1], spec.include_biases)
    else:
        d1, d2 = random_directions(spec, _normalization_reference(scene, data, dtype, traj, progress))
    if scene.grid.dimensions == 1:
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


def _run_path(scene: Scene, weights: list, plane_center: Optional[dict], d1: dict, d2: dict) -> np.ndarray:
    """(K, 2) coordinates of a run's weights on the plane: named weights' values, the least-squares projection
    (fixed frame), or zeros (follow frame: the grid moves with the weights)."""
    from ..landscape.directions import project, weight_values

    if scene.directions.kind == "weights":
        return weight_values(weights, scene.directions.weights)
    if scene.directions.frame == "fixed":
        return project(weights, plane_center, d1, d2 if scene.grid.dimensions == 2 else None)
    return np.zeros((len(weights), 2))


def _run_updates(scene: Scene, weights: list, d1: dict, d2: dict) -> np.ndarray:
    """(K, 2): each captured step's move to the next on the plane (zero after the last). Least squares is linear
    in the point, so differences of one projection are the projected differences."""
    from ..landscape.directions import project

    updates = np.zeros((len(weights), 2))
    updates[:-1] = np.diff(project(weights, weights[0], d1, d2 if scene.grid.dimensions == 2 else None), axis=0)
    return updates


def _trajectory(scene: Scene, cdir, name: str, data, device, dtype, use_cache: bool, progress: Progress, label: str,
                store: CaptureStore):
    """Train one run (``scene`` is its own scene), or load it: from the capture's store entry ``name``, else from
    the store's trainings (another capture of the same run trained it), copied into the capture then."""
    from ..train.training import Trajectory, train

    arrays = None
    if use_cache and cdir.has(name):
        arrays = cdir.load_arrays(name)
        progress.log(f"{label}: reused from cache {cdir.path}")
    else:
        # Opened (and so created) only when the capture lacks the run: a cache hit leaves the store as it was.
        tdir = store.open_training(training_key(scene, device.type))
        if use_cache and tdir.has("trajectory"):
            arrays = tdir.load_arrays("trajectory")
            cdir.save_arrays(name, arrays)
            progress.log(f"{label}: reused the same run's training from cache {tdir.path}")
    if arrays is not None:
        names = [k[len("w0/"):] for k in arrays if k.startswith("w0/")]
        bnames = [k[len("b0/"):] for k in arrays if k.startswith("b0/")]
        return Trajectory(arrays["steps"], [_to_torch({n: arrays[f"w{i}/{n}"] for n in names})
                                            for i in range(len(arrays["steps"]))],
                          arrays["train_loss"], arrays["batches"],
                          [_to_torch({n: arrays[f"b{i}/{n}"] for n in bnames}) for i in range(len(arrays["steps"]))])
    with progress.stage(label, scene.training.steps, "steps") as advance:
        traj = train(scene, data, device, dtype, on_step=lambda s: advance(1))
    arrays = {"steps": traj.steps, "train_loss": traj.train_loss, "batches": traj.batches}
    for i, w in enumerate(traj.weights):
        arrays.update({f"w{i}/{n}": v for n, v in _to_numpy(w).items()})
    for i, b in enumerate(traj.buffers):  # BatchNorm running statistics, for eval-mode capture
        arrays.update({f"b{i}/{n}": v for n, v in _to_numpy(b).items()})
    tdir.save_arrays("trajectory", arrays)
    cdir.save_arrays(name, arrays)
    if not np.all(np.isfinite(traj.train_loss)):
        progress.log(f"warning: the training loss of {label} became NaN/inf (the run diverged); the landscape shows "
                     "it clipped")
    return traj


def capture_scene(scene: Scene, device=None, store: Optional[CaptureStore] = None, use_cache: bool = True,
                  progress: Optional[Progress] = None) -> Capture:
    """Train, choose directions and capture every sampled step, reusing whatever the store already holds.

    A scene with panels gives a :class:`llstudio.panels.PanelCapture`: one capture per panel scene."""
    import torch

    if scene.panels:
        return _capture_panels(scene, device, store, use_cache, progress)

    from ..landscape.dropout import UnsupportedDropout, mask_seed
    from ..landscape.evaluator import LandscapeEvaluator
    from ..train.data import load_dataset
    from ..device import resolve_device
    from ..landscape.directions import cosine, zero_entries
    from ..train.data import bn_subset
    from ..train.models import has_batch_norm, loss_fn, state_buffers, wants_images
    from ..train.training import initial_model

    progress = progress or Progress("none")
    device = device if device is not None else resolve_device(scene.capture.device)
    device = torch.device(device)
    dtype = getattr(torch, scene.capture.dtype)
    store = store or CaptureStore()
    key = capture_key(scene, device.type)
    cdir = store.open(key)
    cdir.sweep()  # temporary files of killed runs; a concurrent run's are kept
    steps = scene.captured_steps()
    scales = zoom_scales(steps, scene.grid.zoom)
    per_sample = scene.capture.data == "samples"
    if cdir.read_manifest() is None or not use_cache:
        dump = scene.resolved_dump()
        cdir.write_manifest({
            "key": key, "scene": scene.source, "sections": {s: dump[s] for s in CAPTURE_SECTIONS},
            "steps": steps, "scales": scales.tolist(), "device": device.type,
            "dtype": scene.capture.dtype, "capture_mode": scene.capture.mode, "loss_on": scene.capture.data,
            "dropout": scene.capture.dropout,
            **({"dropout_seed": scene.capture.dropout_seed} if scene.capture.dropout != "off" else {}),
            **({"sample_indices": scene.capture.sample_indices()} if per_sample else {}),
            "llstudio": __version__,
            "torch": torch.__version__, "python": platform.python_version(), "format": FORMAT_VERSION,
            "dimensions": scene.grid.dimensions, "second_direction": second_direction_note(scene),
            "runs": scene.training.run_names(),
            "checkpoints": {k: str(p) for k, p in checkpoint_files(scene).items()},
        })
    data = load_dataset(scene.data, images=wants_images(scene.model))
    _check_weight_refs(scene, data, dtype)
    run_names = scene.training.run_names()
    multi = scene.training.runs is not None
    sample_idx = _check_sample_indices(scene, data) if per_sample else None

    # Training: every run from its own scene; the primary run keeps the single-run store entry --------------
    trajs = {}
    for i, name in enumerate(run_names):
        trajs[name] = _trajectory(run_scene(scene, name if multi else None), cdir,
                                  "trajectory" if i == 0 else f"trajectory_{name}", data, device, dtype, use_cache,
                                  progress, f"training {name}" if multi else "training", store)
    traj = trajs[run_names[0]]

    # Directions and the plane -------------------------------------------------------------------------
    fixed = scene.directions.frame == "fixed"
    plane_center = _plane_center(scene, data, dtype, traj, trajs) if fixed else None
    if use_cache and cdir.has("directions"):
        arrays = cdir.load_arrays("directions")
        d1 = _to_torch({k[3:]: v for k, v in arrays.items() if k.startswith("d1/")})
        d2 = _to_torch({k[3:]: v for k, v in arrays.items() if k.startswith("d2/")})
        alphas, betas = arrays["alphas"], arrays["betas"]
        paths = {n: arrays[f"run/{n}/path"] for n in run_names[1:]}
        run_updates = {n: arrays[f"run/{n}/updates"] for n in run_names[1:]}
        paths[run_names[0]], run_updates[run_names[0]] = arrays["path"], arrays["updates"]
        explained = arrays.get("explained_variance")
        eigenvalues = arrays.get("hessian_eigenvalues")
    else:
        d1, d2, explained = _directions(scene, data, dtype, traj, progress, trajs, device)
        eigenvalues = None
        if scene.directions.kind == "hessian":
            eigenvalues, explained = explained, None
        # Every run is projected onto the one plane (least squares), each with its own update arrows.
        paths = {n: _run_path(scene, trajs[n].weights, plane_center, d1, d2) for n in run_names}
        run_updates = {n: _run_updates(scene, trajs[n].weights, d1, d2) for n in run_names}
        alphas, betas = axes(scene, np.concatenate(list(paths.values())))
        arrays = {**{f"d1/{k}": v for k, v in _to_numpy(d1).items()},
                  **{f"d2/{k}": v for k, v in _to_numpy(d2).items()},
                  "alphas": alphas, "betas": betas, "path": paths[run_names[0]],
                  "updates": run_updates[run_names[0]]}
        for n in run_names[1:]:
            arrays[f"run/{n}/path"], arrays[f"run/{n}/updates"] = paths[n], run_updates[n]
        if explained is not None:
            arrays["explained_variance"] = explained
            progress.log(f"directions: PCA explains {explained[0]:.1%} and {explained[1]:.1%} of the trajectory's "
                         "variance")
        if eigenvalues is not None:
            arrays["hessian_eigenvalues"] = eigenvalues
            manifest = cdir.read_manifest() or {}
            cdir.write_manifest({**manifest, "hessian_eigenvalues": [float(v) for v in eigenvalues],
                                 "hessian_step": int(traj.steps[_hessian_index(scene, traj)])})
        cdir.save_arrays("directions", arrays)
    path, updates = paths[run_names[0]], run_updates[run_names[0]]

    # Capture -------------------------------------------------------------------------------------------
    todo = [k for k, s in enumerate(steps) if not (use_cache and cdir.has_step(s))]
    # The other runs' losses at their own weights: one small store entry per run, resumable like the steps.
    runs_todo = [n for n in run_names[1:] if not (use_cache and cdir.has(f"run_{n}"))]
    ev = None
    if todo or runs_todo:
        model = initial_model(scene, data, dtype)
        crit = loss_fn(scene.training.loss, data.n_classes)
        mode = scene.capture.mode
        if mode == "recompute_bn" and not has_batch_norm(model):  # a custom model: known only once built
            from ..errors import SceneError

            raise SceneError(scene.source or "<scene>", [("capture.mode", "'recompute_bn' recomputes BatchNorm "
                             "statistics, but the model has no BatchNorm layer; use capture.mode = 'eval'")])
        bn_x = (torch.as_tensor(bn_subset(data, scene.capture.bn_samples, scene.data.eval_seed))
                if mode == "recompute_bn" else None)
        initial_buffers = state_buffers(model)
        x_eval, y_eval = torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval)
        if per_sample:
            x_eval, y_eval = x_eval[sample_idx], y_eval[sample_idx]
        try:
            ev = LandscapeEvaluator(model, x_eval, y_eval, crit, d1, d2, device, dtype, scene.capture.memory_mb,
                                    mode=mode, bn_x=bn_x, dropout=scene.capture.dropout)
        except UnsupportedDropout as exc:
            from ..errors import SceneError

            raise SceneError(scene.source or "<scene>", [("capture.dropout", f"{exc}; use capture.dropout = "
                                                          "'off'")]) from None
        if scene.capture.dropout == "fixed" and not ev.has_dropout:
            progress.log("warning: capture.dropout = 'fixed', but the model has no dropout layer: the landscape is "
                         "the same as with 'off'")
    zero = torch.zeros(1, dtype=torch.float64)
    # One plane serves every step only when neither the centre, the data nor the range (zoom) changes between steps.
    shared = fixed and scene.capture.data != "batch" and scene.grid.zoom == 1.0

    def masks(k: Optional[int]) -> dict:
        """Dropout masks of captured step index ``k``, or of the shared plane (``k`` None); {} without dropout."""
        return ev.dropout_masks(mask_seed(scene.capture.dropout_seed, "plane" if k is None else int(steps[k])))

    if todo:
        loss_on = {"eval": "the fixed evaluation subset", "batch": "mini-batches",
                   "samples": f"{len(y_eval)} samples, one landscape each"}[scene.capture.data]
        progress.log(f"capture: {1 if shared else len(todo)} landscape(s) for {len(todo)} of {len(steps)} steps on "
                     f"{device} ({len(alphas)}x{len(betas)} grid, {ev.strategy} strategy, {mode} mode, "
                     f"{'fixed dropout masks' if ev.has_dropout else 'dropout off'}, "
                     f"cos(d1, d2) = {cosine(d1, d2):+.3f}, {scene.directions.frame} frame, "
                     f"loss on {loss_on}" + (f", zoom x{scene.grid.zoom:g}" if scene.grid.zoom != 1.0 else "")
                     + ")")

        def step_buffers(k: Optional[int]) -> dict:
            return _buffers_at(scene, traj, k, initial_buffers)

        def grid_center(k: Optional[int]) -> dict:
            """Weights at grid point (0, 0): the plane centre (fixed frame) or step k's weights; for named weights,
            with those entries at zero so that the grid's coordinates are their values."""
            c = plane_center if fixed else traj.weights[k]
            return zero_entries(c, scene.directions.weights) if scene.directions.kind == "weights" else c

        def landscape(center: dict, buffers: dict, scale: float, drop: dict) -> tuple[np.ndarray, Optional[np.ndarray]]:
            """(loss (nx, ny), per-sample loss (S, nx, ny) or None) on the axes times ``scale`` (the zoom), with the
            dropout masks ``drop``; per-sample captures show the samples' mean."""
            a, b = alphas * scale, betas * scale
            if not per_sample:
                return ev.grid(center, a, b, buffers, masks=drop), None
            each = ev.grid(center, a, b, buffers, reduction="none", masks=drop)
            return each.mean(axis=0), each

        plane = plane_samples = None
        if shared:
            if use_cache and cdir.has("plane"):
                arrays = cdir.load_arrays("plane")
                plane, plane_samples = arrays["loss"], arrays.get("sample_loss")
            else:
                with progress.stage("capture", len(alphas) * len(betas), "points") as advance:
                    plane, plane_samples = landscape(grid_center(None), step_buffers(None), 1.0, masks(None))
                    advance(plane.size)
                cdir.save_arrays("plane", {"loss": plane, **({"sample_loss": plane_samples} if per_sample else {})})
        with progress.stage("path" if shared else "capture", len(todo) * (1 if shared else alphas.size * betas.size),
                            "points") as advance:
            for k in todo:
                if scene.capture.data == "batch":
                    batch = traj.batches[min(int(steps[k]), len(traj.batches) - 1)]
                    ev.set_data(torch.as_tensor(data.x_train[batch]), torch.as_tensor(data.y_train[batch]))
                # The masks of the landscape this step shows: the shared plane's, or the step's own.
                drop = masks(None if shared else k)
                grid, grid_samples = ((plane, plane_samples) if shared
                                      else landscape(grid_center(k), step_buffers(None if fixed else k), scales[k],
                                                     drop))
                # The loss at this step's own weights: the grid centre in the follow frame, the path point in the
                # fixed frame (off the plane in general, so not a value of the grid).
                if per_sample:
                    center_samples = ev.evaluate(traj.weights[k], zero, zero, step_buffers(k),
                                                 reduction="none", masks=drop)[0].cpu().numpy()
                    center = float(center_samples.astype(np.float64).mean())
                    cdir.save_step(steps[k], grid, center, grid_samples, center_samples)
                else:
                    center = float(ev.evaluate(traj.weights[k], zero, zero, step_buffers(k), masks=drop)[0])
                    cdir.save_step(steps[k], grid, center)
                advance(1 if shared else grid.size)
    else:
        progress.log(f"capture: all {len(steps)} steps reused from cache {cdir.path}")
    if runs_todo:
        # Several runs imply the evaluation subset (scene cross-check), which the evaluator holds unless a
        # mini-batch capture above replaced it.
        ev.set_data(torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval))
        drop = masks(None)  # runs share one fixed plane on the evaluation subset: its masks
        for n in runs_todo:
            t = trajs[n]
            losses = np.array([float(ev.evaluate(w, zero, zero, t.buffers[k] if t.buffers else {}, masks=drop)[0])
                               for k, w in enumerate(t.weights)])
            cdir.save_arrays(f"run_{n}", {"center_loss": losses})

    curvature = _capture_curvature(scene, cdir, steps, traj, data, d1, d2, alphas, betas, scales, plane_center,
                                   device, dtype, progress, use_cache, sample_idx) if scene.capture.curvature_on else {}

    loaded = [cdir.load_step(s) for s in steps]
    center_loss = np.array([float(z["center_loss"]) for z in loaded])
    runs = [RunRecord(name=n, plane_path=np.asarray(paths[n]),
                      center_loss=center_loss if i == 0 else cdir.load_arrays(f"run_{n}")["center_loss"],
                      train_loss=np.asarray(trajs[n].train_loss), updates=np.asarray(run_updates[n]))
            for i, n in enumerate(run_names)]
    return Capture(
        scene=scene, key=key, path=cdir.path, alphas=alphas, betas=betas, steps=np.asarray(steps),
        loss=np.stack([z["loss"] for z in loaded]), center_loss=center_loss,
        train_loss=traj.train_loss, centers=traj.weights, directions=(d1, d2), device=device.type,
        plane_path=np.asarray(path), updates=np.asarray(updates), frame=scene.directions.frame,
        explained_variance=None if explained is None else np.asarray(explained), runs=runs,
        hessian_eigenvalues=None if eigenvalues is None else np.asarray(eigenvalues), **curvature,
        center_buffers=list(traj.buffers),
        sample_loss=np.stack([z["sample_loss"] for z in loaded]) if per_sample else None,
        sample_center_loss=np.stack([z["sample_center_loss"] for z in loaded]) if per_sample else None,
        sample_indices=np.asarray(scene.capture.sample_indices()) if per_sample else None, scales=scales,
    )


def curvature_axes(scene: Scene, alphas: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The curvature grid's (cx,) and (cy,) coordinates: the loss grid's range at the curvature resolution."""
    cx, cy = scene.capture.curvature.shape
    return np.linspace(alphas[0], alphas[-1], cx), np.linspace(betas[0], betas[-1], cy)


def _buffers_at(scene: Scene, traj, k: Optional[int], initial_buffers: dict) -> dict:
    """BatchNorm running statistics at captured step ``k``, or at the fixed plane's centre (``k`` None)."""
    if k is not None:
        return traj.buffers[k] if traj.buffers else {}
    c = scene.directions.center
    if c == "initial" or not traj.buffers:
        return initial_buffers
    return traj.buffers[-1 if c == "final" else list(traj.steps).index(c)]


def _capture_curvature(scene: Scene, cdir, steps, traj, data, d1, d2, alphas, betas, scales, plane_center, device,
                       dtype, progress: Progress, use_cache: bool, sample_idx=None) -> dict:
    """Min/max Hessian eigenvalue maps of every captured step, resuming partial ones; Capture's curvature fields.
    ``plane_center``: the fixed frame's centre, as the loss capture computed it (None in the follow frame);
    ``scales`` (steps,): each step's zoom, applied to the curvature axes as to the loss grid's."""
    import torch

    from ..landscape.curvature import curvature_grid
    from ..landscape.directions import zero_entries

    spec = scene.capture.curvature
    ca, cb = curvature_axes(scene, alphas, betas)
    fixed = scene.directions.frame == "fixed"
    # As for the loss: one map serves every step when neither the centre, the data nor the range changes between
    # steps.
    shared = fixed and scene.capture.data == "eval" and scene.grid.zoom == 1.0

    def center(k: int) -> dict:
        c = plane_center if fixed else traj.weights[k]
        return zero_entries(c, scene.directions.weights) if scene.directions.kind == "weights" else c

    todo = [k for k, s in enumerate(steps) if not (use_cache and cdir.has_curvature(s))]
    if todo:
        op = _hessian_operator(scene, data, device, dtype, sample_idx)
        initial_buffers = dict(op.buffers)
        progress.log(f"curvature: {1 if shared else len(todo)} map(s) of {len(ca)}x{len(cb)} points for {len(todo)} "
                     f"of {len(steps)} steps ({op.n_params:,} parameters, tolerance {spec.tolerance:g})")
        done_map = None
        if shared:  # a complete map of any step is the map of all of them
            done_map = next((cdir.load_curvature(s) for s in steps if use_cache and cdir.has_curvature(s)), None)
        with progress.stage("curvature", (1 if shared else len(todo)) * len(ca) * len(cb), "points") as advance:
            for k in todo:
                step = int(steps[k])
                if done_map is None:
                    if scene.capture.data == "batch":
                        batch = traj.batches[min(step, len(traj.batches) - 1)]
                        op.set_data(torch.as_tensor(data.x_train[batch]), torch.as_tensor(data.y_train[batch]))
                    # The step's own BatchNorm statistics (eval mode), as the loss capture uses.
                    op.set_buffers(_buffers_at(scene, traj, None if fixed else k, initial_buffers))
                    partial = cdir.load_curvature(step) if use_cache else None
                    if partial is not None and partial["done"].shape != (len(ca), len(cb)):
                        partial = None
                    result = curvature_grid(op, center(k), d1, d2, ca * scales[k], cb * scales[k], spec.tolerance,
                                            spec.max_iterations, seed=scene.directions.seed, state=partial,
                                            on_point=lambda: advance(1),
                                            on_row=lambda st, s=step: cdir.save_curvature(s, st))
                    if shared:
                        done_map = result
                else:
                    result = done_map
                cdir.save_curvature(step, result)
                bad = int((~result["converged"]).sum())
                if bad:
                    progress.log(f"warning: curvature at step {step}: {bad} of {result['done'].size} points did not "
                                 "converge or are not finite; they are NaN (raise max_iterations or tolerance)")
    else:
        progress.log(f"curvature: all {len(steps)} maps reused from cache {cdir.path}")
    loaded = [cdir.load_curvature(int(s)) for s in steps]
    return {"curvature_alphas": ca, "curvature_betas": cb,
            "curv_min": np.stack([z["curv_min"] for z in loaded]),
            "curv_max": np.stack([z["curv_max"] for z in loaded])}


def _capture_panels(scene: Scene, device, store: Optional[CaptureStore], use_cache: bool,
                    progress: Optional[Progress]):
    """Capture every panel scene; panels with the same capture key are captured (and loaded) once."""
    import dataclasses

    import torch

    from ..device import resolve_device
    from ..film.panels import PanelCapture

    progress = progress or Progress("none")
    done: dict[str, Capture] = {}
    captures = []
    panels = scene.panel_scenes()
    for i, ps in enumerate(panels):
        dev = torch.device(device if device is not None else resolve_device(ps.capture.device))
        key = capture_key(ps, dev.type)
        progress.log(f"panel {i + 1}/{len(panels)}: {ps.title or ps.name}")
        if key in done:
            progress.log(f"capture: same as panel {list(done).index(key) + 1}'s capture, reused")
            captures.append(dataclasses.replace(done[key], scene=ps))
            continue
        done[key] = capture_scene(ps, device=dev, store=store, use_cache=use_cache, progress=progress)
        captures.append(done[key])
    return PanelCapture(scene, captures)


# ------------------------------------------------------------------------------------------------- film


@dataclass(frozen=True)
class OutputSettings:
    width: int
    height: int
    fps: int


def output_settings(scene: Scene, quality: Optional[str] = None) -> OutputSettings:
    """-q wins over the scene: a preset's size and fps; otherwise the scene's preset, with its fps override."""
    if quality is not None:
        if quality not in QUALITIES:
            raise UsageError(f"unknown quality '{quality}': choose one of {', '.join(QUALITIES)}")
        q = QUALITIES[quality]
        return OutputSettings(q.width, q.height, q.fps)
    q = QUALITIES[scene.output.quality]
    return OutputSettings(q.width, q.height, scene.output.fps or q.fps)


def parse_frames(spec: Optional[str], n_frames: int) -> range:
    """'A:B' → frames A … B-1 (either side may be empty, negatives count from the end); None → all."""
    if spec is None:
        return range(n_frames)
    try:
        a, _, b = spec.partition(":")
        if not _:
            raise ValueError
        sl = slice(int(a) if a.strip() else None, int(b) if b.strip() else None)
    except ValueError:
        raise UsageError(f"--frames {spec!r}: expected A:B, e.g. 0:120") from None
    r = range(n_frames)[sl]
    if len(r) == 0:
        raise UsageError(f"--frames {spec!r} selects no frame: the film has {n_frames} frames (0:{n_frames})")
    return r


def _surface_colors(capture: Capture) -> Optional[np.ndarray]:
    """(steps, nx, ny) colour values of the surface when look.color_by asks for them: the convexity ratio,
    interpolated from the curvature grid onto the loss grid, look.convexity_range mapped to [0, 1] and clipped
    there; None for 'loss'."""
    if capture.scene.look.color_by != "convexity" or capture.curv_min is None:
        return None
    from ..landscape.curvature import resample

    ratio = resample(capture.convexity, capture.curvature_alphas, capture.curvature_betas, capture.alphas,
                     capture.betas)
    lo, hi = capture.scene.look.convexity_range
    return np.clip((ratio - lo) / (hi - lo), 0.0, 1.0)


class Film:
    """Timeline, camera path and renderer of one capture at one output setting."""

    def __init__(self, capture: Capture, settings: OutputSettings):
        from ..film.camera import camera_path
        from ..film.geometry import DISPLAY_EXTENT, to_display
        from ..film.timeline import Timeline

        scene = capture.scene
        self.capture, self.settings = capture, settings
        look = scene.look
        curve = None
        if look.loss_inset and capture.train_loss is not None and len(capture.train_loss):
            curve = (np.arange(len(capture.train_loss)), np.asarray(capture.train_loss))
        loss, center_loss = capture.loss, capture.center_loss
        if look.sample is not None:  # one sample's own landscape instead of the mean (validated by the scene)
            loss, center_loss = capture.sample_loss[:, look.sample], capture.sample_center_loss[:, look.sample]
        self.timeline = Timeline(capture.steps, loss, center_loss, scene.timeline, scene.scaling,
                                 settings.fps, capture.plane_path, capture.updates, curve=curve,
                                 colors=_surface_colors(capture),
                                 runs=tuple((r.name, r.plane_path) for r in capture.runs)
                                 if len(capture.runs) > 1 else (),
                                 critical=look.critical_points and len(capture.betas) > 1,
                                 alphas=capture.alphas, betas=capture.betas, scales=capture.scales,
                                 steps_per_epoch=self._steps_per_epoch() if look.epoch and look.overlay else None)
        sc = self.timeline.schedule
        # The camera moves over the film's body only: cards hold its first and last pose.
        self.body = (sc.body_start, max(sc.body_end - sc.body_start, 1))
        focal = (0.0, 0.0, 0.5 * scene.scaling.z_scale * DISPLAY_EXTENT)
        spec = scene.camera
        from ..config.scene import CameraKey, CameraSpec

        if len(capture.betas) == 1 and spec == CameraSpec():
            # A 1D film is a curve over alpha: look at it from the side (the -beta side), slightly from above.
            spec = CameraSpec(keyframes=[CameraKey(at=0.0, azimuth=-100.0, elevation=14.0, distance=2.3),
                                         CameraKey(at=1.0, azimuth=-80.0, elevation=10.0, distance=2.3)])
        track = None
        if spec.follow > 0:
            body = slice(sc.body_start, sc.body_start + self.body[1])
            ab, zoom = self.timeline.marker_track()[body], self.timeline.scale_track()[body]
            # In a zoom film the marker can leave the square, where it is hidden: follow it to the square's edge.
            track = np.clip(np.column_stack([to_display(ab[:, 0], capture.alphas, DISPLAY_EXTENT, zoom),
                                             to_display(ab[:, 1], capture.betas, DISPLAY_EXTENT, zoom)]),
                            -DISPLAY_EXTENT / 2, DISPLAY_EXTENT / 2)
        self.camera = camera_path(spec, self.body[1], focal, DISPLAY_EXTENT, track, settings.fps)

    def _steps_per_epoch(self) -> Optional[float]:
        """Optimizer steps per epoch (training.batch_order drops the last partial batch), or None if unknown."""
        try:
            n = len(self.capture.data.x_train)
        except Exception:  # a dataset that cannot be loaded here only costs the epoch label
            return None
        return float(max(n // self.capture.scene.training.batch_size, 1))

    @property
    def n_frames(self) -> int:
        return self.timeline.n_frames

    def pose(self, index: int):
        """Camera pose of frame ``index`` (card frames hold the body's first or last pose)."""
        start, n = self.body
        return self.camera.pose(int(np.clip(index - start, 0, n - 1)))

    def renderer(self):
        from ..renderer.plotter import SurfaceRenderer

        scene = self.capture.scene
        return SurfaceRenderer(self.capture.alphas, self.capture.betas, scene.look, self.settings.width,
                               self.settings.height, scene.scaling.z_scale, scene.title, log_values=scene.scaling.log,
                               show_range=scene.grid.zoom != 1.0)

    def frame(self, renderer, index: int) -> np.ndarray:
        return renderer.render(self.timeline.frame(index), self.pose(index))


def make_film(capture, settings: OutputSettings):
    """The film of a capture: a :class:`Film`, or a :class:`llstudio.panels.PanelFilm` for a scene with panels."""
    if capture.scene.panels:
        from ..film.panels import PanelFilm

        return PanelFilm(capture, settings)
    return Film(capture, settings)


def default_output(scene: Scene, fmt: Optional[str] = None) -> Path:
    """The scene's output.path or renders/<name>, with the suffix of ``fmt`` (default: the scene's format)."""
    suffix = FORMATS[fmt or scene.output.format].suffix
    if scene.output.path:
        return Path(scene.output.path).with_suffix(suffix)
    return Path("renders") / f"{scene.name}{suffix}"


def film_format(scene: Scene, output: Optional[Path] = None, fmt: Optional[str] = None) -> str:
    """The output format: ``fmt`` (--format), else the one an explicit output's suffix names (``-o f.webm``),
    else the scene's output.format. Checked against the output's suffix and against a transparent background."""
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")
    by_suffix = {f.suffix: k for k, f in FORMATS.items() if f.suffix}
    if fmt is None and output is not None:
        fmt = by_suffix.get(Path(output).suffix)
    fmt = fmt or scene.output.format
    if output is not None and Path(output).suffix != FORMATS[fmt].suffix:
        want = FORMATS[fmt].suffix
        raise UsageError(f"output {str(output)!r} does not fit format '{fmt}', which writes "
                         + (f"a '{want}' file" if want else "a directory of PNG frames (give a path without suffix)"))
    if scene.look.background == TRANSPARENT and not FORMATS[fmt].alpha:
        raise UsageError(f"look.background is 'transparent', which needs a format with alpha "
                         f"({' or '.join(ALPHA_FORMATS)}), not '{fmt}'")
    return fmt


def check_output(scene: Scene, output: Optional[Path] = None, fmt: Optional[str] = None) -> str:
    """Everything about the film's output that can fail, checked before any training: the format and its
    encoder. Returns the format."""
    from ..output.encode import require_format

    fmt = film_format(scene, output, fmt)
    require_format(fmt, alpha=scene.look.background == TRANSPARENT)
    return fmt


@contextlib.contextmanager
def _deferred_interrupt():
    """Turn Ctrl-C into a flag checked between frames: VTK swallows a KeyboardInterrupt raised inside its
    callbacks and would go on to publish the film."""
    import signal
    import threading

    hit = [False]
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum, frame):
        hit[0] = True

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: hit[0]
    finally:
        signal.signal(signal.SIGINT, old)


def render_film(capture: Capture, output: Optional[Path] = None, quality: Optional[str] = None,
                frames: Optional[str] = None, progress: Optional[Progress] = None,
                format: Optional[str] = None) -> Path:
    """Render and encode the film; returns its path (a directory for a PNG sequence). The film appears only when
    complete, with NAME.json beside it: the resolved scene, the capture key and the output settings."""
    from ..output.encode import FilmWriter, output_frames, output_size
    from ..files import atomic_write

    progress = progress or Progress("none")
    scene = capture.scene
    fmt = check_output(scene, output, format)
    settings = output_settings(scene, quality)
    film = make_film(capture, settings)
    selected = parse_frames(frames, film.n_frames)
    output = Path(output) if output is not None else default_output(scene, fmt)
    alpha = scene.look.background == TRANSPARENT
    with film.renderer() as renderer, \
            FilmWriter(output, settings.width, settings.height, settings.fps, scene.output.crf,
                       scene.output.encoder_preset, format=fmt, alpha=alpha) as writer, \
            progress.stage("render", len(selected), "frames") as advance:
        with _deferred_interrupt() as interrupted:
            for i in selected:
                writer.write(film.frame(renderer, i))
                advance(1)
                if interrupted():
                    raise KeyboardInterrupt
    n_file, fps_file = output_frames(fmt, len(selected), settings.fps)
    sidecar = {
        "film": output.name, "scene": scene.source, "resolved_scene": scene.resolved_dump(),
        "capture_key": capture.key, "capture_path": str(capture.path), "frames": [selected.start, selected.stop],
        "n_frames_total": film.n_frames, "width": settings.width, "height": settings.height, "fps": settings.fps,
        "format": fmt, "alpha": alpha, "file": {"frames": n_file, "fps": fps_file,
                                                 "size": list(output_size(fmt, settings.width, settings.height))},
        "llstudio": __version__,
    }
    text = json.dumps(sidecar, indent=2)
    atomic_write(output.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return output


def render_still(capture: Capture, index: int, output: Optional[Path] = None, quality: Optional[str] = None) -> Path:
    """Render one frame of the film to a PNG."""
    from ..renderer.plotter import save_png

    scene = capture.scene
    film = make_film(capture, output_settings(scene, quality))
    if not -film.n_frames <= index < film.n_frames:
        raise UsageError(f"--frame {index}: the film has {film.n_frames} frames (0 … {film.n_frames - 1})")
    index %= film.n_frames
    output = Path(output) if output is not None else Path("renders") / f"{scene.name}_{index:05d}.png"
    with film.renderer() as renderer:
        img = film.frame(renderer, index)
    save_png(img, output)
    return output


def contact_frames(n_frames: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over a film of ``n_frames`` frames, first and last included (fewer
    when the film is shorter)."""
    if count < 1:
        raise UsageError(f"--contact-sheet {count}: needs at least one still")
    return sorted(set(int(round(f)) for f in np.linspace(0, n_frames - 1, count)))


def render_contact_sheet(capture: Capture, count: int, output: Optional[Path] = None,
                         quality: Optional[str] = None) -> Path:
    """One PNG grid of ``count`` stills spread over the film, each labelled with its frame number and time: a
    preview of the camera path and the look. The sheet is about the size of one frame of the film: every still is
    rendered at a fraction of the output size (and overlays scale with it)."""
    from ..renderer.overlay import contact_sheet, sheet_shape
    from ..renderer.plotter import save_png

    scene = capture.scene
    settings = output_settings(scene, quality)
    frames = contact_frames(make_film(capture, settings).n_frames, count)
    rows, cols = sheet_shape(len(frames), settings.width / settings.height)
    scale = max(rows, cols)
    w = max(64, settings.width // scale // 2 * 2)
    h = max(36, settings.height // scale // 2 * 2)
    film = make_film(capture, OutputSettings(w, h, settings.fps))
    images, labels = [], []
    with film.renderer() as renderer:
        for f in frames:
            images.append(film.frame(renderer, f))
            labels.append(f"#{f}  {f / settings.fps:.2f} s")
    output = Path(output) if output is not None else Path("renders") / f"{scene.name}_contact.png"
    save_png(contact_sheet(images, labels, cols=cols), output)
    return output


def estimate(scene: Scene, quality: Optional[str] = None) -> dict:
    """What a render will cost: captured steps, grid evaluations, frames (no torch, no OpenGL); for a scene with
    panels, each panel's cost and the film's frames (the longest panel's)."""
    if scene.panels:
        from ..film.panels import gap_pixels, grid_shape, panel_size

        s = output_settings(scene, quality)
        cols, rows = grid_shape(len(scene.panels), scene.layout.columns)
        pw, ph = panel_size(s.width, s.height, cols, rows, gap_pixels(scene.layout, s.height))
        per = [{"name": p.name, "title": p.title,
                **{k: v for k, v in estimate(p, quality).items() if k not in ("resolution", "fps")}}
               for p in scene.panel_scenes()]
        longest = max(per, key=lambda e: e["frames"])
        return {
            "panels": per, "layout": f"{cols}x{rows}", "panel_resolution": f"{pw}x{ph}",
            "grid_evaluations": sum(e["grid_evaluations"] for e in per), "frames": longest["frames"],
            "duration_s": longest["duration_s"], "resolution": f"{s.width}x{s.height}", "fps": s.fps,
        }
    steps = scene.captured_steps()
    nx, ny = scene.grid.shape
    from ..film.timeline import film_length

    s = output_settings(scene, quality)
    duration, n_frames = film_length(len(steps), scene.timeline, s.fps, steps)
    return {
        "training_steps": scene.training.steps * len(scene.training.run_names()),
        "runs": len(scene.training.run_names()), "captured_steps": len(steps),
        "grid": f"{nx}x{ny}" if scene.grid.dimensions == 2 else f"{nx} (1D)",
        "grid_evaluations": len(steps) * nx * ny,
        "eval_samples": len(scene.capture.sample_indices()) if scene.capture.data == "samples" else scene.data.eval_size,
        **({"curvature_points": len(steps) * scene.capture.curvature.shape[0] * scene.capture.curvature.shape[1]}
           if scene.capture.curvature_on else {}),
        "frames": n_frames, "duration_s": round(duration, 2),
        "resolution": f"{s.width}x{s.height}", "fps": s.fps,
    }
