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

from . import __version__
from .errors import UsageError
from .presets import QUALITIES
from .progress import Progress
from .scene import Scene
from .store import FORMAT_VERSION, CaptureStore, canonical_hash

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
        xr, yr = auto_range(path[:, 0]), auto_range(path[:, 1])
    else:
        xr = scene.grid.range
        yr = scene.grid.y_range or scene.grid.range
    return np.linspace(xr[0], xr[1], nx), np.linspace(yr[0], yr[1], ny)


def capture_key(scene: Scene, device_type: str) -> str:
    """Hash of everything that determines the captured numbers (not camera, look, output, timeline)."""
    import torch

    dump = scene.resolved_dump()
    ident = {s: dump[s] for s in CAPTURE_SECTIONS}
    ident["capture"] = {"steps": scene.captured_steps(), "dtype": scene.capture.dtype, "data": scene.capture.data}
    if scene.capture.data == "samples":
        ident["capture"]["samples"] = scene.capture.sample_indices()
    ident["device_type"] = device_type
    ident["versions"] = {"format": FORMAT_VERSION, "torch": torch.__version__.split("+")[0]}
    return canonical_hash(ident)[:24]


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
    Per-sample captures (``capture.data = 'samples'``) also hold ``sample_loss`` (steps, S, nx, ny), the loss of
    each chosen sample alone (``loss`` is their mean), ``sample_center_loss`` (steps, S) and ``sample_indices``
    (S,), the samples' positions in the fixed evaluation subset (``eval_data``).
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
    sample_loss: Optional[np.ndarray] = None
    sample_center_loss: Optional[np.ndarray] = None
    sample_indices: Optional[np.ndarray] = None

    @property
    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.alphas, self.betas

    @property
    def data(self):
        """The dataset, with the fixed evaluation subset the landscape was measured on (``x_eval``, ``y_eval``)."""
        from .data import load_dataset

        return load_dataset(self.scene.data)

    @property
    def eval_data(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return d.x_eval, d.y_eval

    def model(self, k: int = -1):
        """The model with the weights of captured step index ``k`` (default: the last), on the CPU."""
        import torch

        from .training import initial_model

        dtype = getattr(torch, self.scene.capture.dtype)
        m = initial_model(self.scene, self.data, dtype)
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.copy_(self.centers[k][name])
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
    from .training import initial_model

    return {k: v.detach().clone() for k, v in initial_model(scene, data, dtype).named_parameters()}


def _plane_center(scene: Scene, data, dtype, traj) -> dict:
    """Centre of the fixed frame's plane: the initial, final or a captured step's weights."""
    c = scene.directions.center
    if c == "initial":
        return _initial_weights(scene, data, dtype)
    if c == "final":
        return traj.weights[-1]
    return traj.weights[list(traj.steps).index(c)]


def _check_weight_refs(scene: Scene, data, dtype) -> None:
    """Named weights must exist in the model: say so before any training, as a scene error with its key path."""
    from .directions import check_weight_ref
    from .errors import SceneError

    if scene.directions.kind != "weights":
        return
    params = _initial_weights(scene, data, dtype)
    problems = []
    for i, ref in enumerate(scene.directions.weights):
        try:
            check_weight_ref(ref, params)
        except ValueError as exc:
            problems.append((f"directions.weights[{i}]", str(exc)))
    if problems:
        raise SceneError(scene.source or "<scene>", problems)


def _check_sample_indices(scene: Scene, data) -> np.ndarray:
    """Positions of the per-sample landscapes in the evaluation subset, which may be smaller than data.eval_size
    (a small train_size caps it): a scene error with its key path when one is past the end."""
    from .errors import SceneError

    idx = np.asarray(scene.capture.sample_indices(), dtype=np.int64)
    n = len(data.y_eval)
    if idx.max() >= n:
        raise SceneError(scene.source or "<scene>", [(
            "capture.samples", f"position {int(idx.max())} is past the end of the evaluation subset, which holds "
            f"{n} samples here (data.eval_size = {scene.data.eval_size}, capped by the training set): use "
            f"positions 0 … {n - 1}")])
    return idx


def _directions(scene: Scene, data, dtype, traj, progress: Progress):
    """(d1, d2, explained variance ratio or None) as the scene asks."""
    from .directions import pca_directions, random_directions, weight_directions

    spec = scene.directions
    if spec.kind == "weights":
        d1, d2 = weight_directions(spec.weights, traj.weights[-1])
        return d1, d2, None
    if spec.kind == "pca":
        # PCA centres the differences on their mean, so the reference they are taken from does not matter.
        return pca_directions(traj.weights, traj.weights[-1], spec.include_biases)
    d1, d2 = random_directions(spec, _normalization_reference(scene, data, dtype, traj, progress))
    return d1, d2, None


def capture_scene(scene: Scene, device=None, store: Optional[CaptureStore] = None, use_cache: bool = True,
                  progress: Optional[Progress] = None) -> Capture:
    """Train, choose directions and capture every sampled step, reusing whatever the store already holds."""
    import torch

    from .landscape import LandscapeEvaluator
    from .data import load_dataset
    from .device import resolve_device
    from .directions import cosine, project, weight_values, zero_entries
    from .models import loss_fn
    from .training import Trajectory, initial_model, train

    progress = progress or Progress("none")
    device = device if device is not None else resolve_device(scene.capture.device)
    device = torch.device(device)
    dtype = getattr(torch, scene.capture.dtype)
    store = store or CaptureStore()
    key = capture_key(scene, device.type)
    cdir = store.open(key)
    cdir.sweep()  # temporary files of killed runs; a concurrent run's are kept
    steps = scene.captured_steps()
    per_sample = scene.capture.data == "samples"
    if cdir.read_manifest() is None or not use_cache:
        dump = scene.resolved_dump()
        cdir.write_manifest({
            "key": key, "scene": scene.source, "sections": {s: dump[s] for s in CAPTURE_SECTIONS},
            "steps": steps, "device": device.type,
            "dtype": scene.capture.dtype, "capture_mode": "eval", "loss_on": scene.capture.data,
            **({"sample_indices": scene.capture.sample_indices()} if per_sample else {}),
            "llstudio": __version__,
            "torch": torch.__version__, "python": platform.python_version(), "format": FORMAT_VERSION,
        })
    data = load_dataset(scene.data)
    _check_weight_refs(scene, data, dtype)
    sample_idx = _check_sample_indices(scene, data) if per_sample else None

    # Training ------------------------------------------------------------------------------------------
    if use_cache and cdir.has("trajectory"):
        arrays = cdir.load_arrays("trajectory")
        names = [k[len("w0/"):] for k in arrays if k.startswith("w0/")]
        traj = Trajectory(arrays["steps"], [_to_torch({n: arrays[f"w{i}/{n}"] for n in names})
                                            for i in range(len(arrays["steps"]))],
                          arrays["train_loss"], arrays["batches"])
        progress.log(f"training: reused from cache {cdir.path}")
    else:
        with progress.stage("training", scene.training.steps, "steps") as advance:
            traj = train(scene, data, device, dtype, on_step=lambda s: advance(1))
        arrays = {"steps": traj.steps, "train_loss": traj.train_loss, "batches": traj.batches}
        for i, w in enumerate(traj.weights):
            arrays.update({f"w{i}/{n}": v for n, v in _to_numpy(w).items()})
        cdir.save_arrays("trajectory", arrays)
        if not np.all(np.isfinite(traj.train_loss)):
            progress.log("warning: the training loss became NaN/inf (the run diverged); the landscape shows it clipped")

    # Directions and the plane -------------------------------------------------------------------------
    if use_cache and cdir.has("directions"):
        arrays = cdir.load_arrays("directions")
        d1 = _to_torch({k[3:]: v for k, v in arrays.items() if k.startswith("d1/")})
        d2 = _to_torch({k[3:]: v for k, v in arrays.items() if k.startswith("d2/")})
        alphas, betas, path, updates = arrays["alphas"], arrays["betas"], arrays["path"], arrays["updates"]
        explained = arrays.get("explained_variance")
    else:
        d1, d2, explained = _directions(scene, data, dtype, traj, progress)
        if scene.directions.kind == "weights":
            path = weight_values(traj.weights, scene.directions.weights)
        elif scene.directions.frame == "fixed":
            path = project(traj.weights, _plane_center(scene, data, dtype, traj), d1, d2)
        else:
            path = np.zeros((len(steps), 2))
        alphas, betas = axes(scene, path)
        # Each captured step's update to the next, as (alpha, beta) on the plane: the arrows of the earthquake films.
        # Least squares is linear in the point, so differences of one projection are the projected differences.
        updates = np.zeros((len(steps), 2))
        updates[:-1] = np.diff(project(traj.weights, traj.weights[0], d1, d2), axis=0)
        arrays = {**{f"d1/{k}": v for k, v in _to_numpy(d1).items()},
                  **{f"d2/{k}": v for k, v in _to_numpy(d2).items()},
                  "alphas": alphas, "betas": betas, "path": path, "updates": updates}
        if explained is not None:
            arrays["explained_variance"] = explained
            progress.log(f"directions: PCA explains {explained[0]:.1%} and {explained[1]:.1%} of the trajectory's "
                         "variance")
        cdir.save_arrays("directions", arrays)

    # Capture -------------------------------------------------------------------------------------------
    todo = [k for k, s in enumerate(steps) if not (use_cache and cdir.has_step(s))]
    if todo:
        model = initial_model(scene, data, dtype)
        crit = loss_fn(scene.training.loss, data.n_classes)
        x_eval, y_eval = torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval)
        if per_sample:
            x_eval, y_eval = x_eval[sample_idx], y_eval[sample_idx]
        ev = LandscapeEvaluator(model, x_eval, y_eval, crit, d1, d2, device, dtype, scene.capture.memory_mb)
        fixed = scene.directions.frame == "fixed"
        # One plane serves every step only when neither the centre nor the data changes between steps.
        shared = fixed and scene.capture.data != "batch"
        loss_on = {"eval": "the fixed evaluation subset", "batch": "mini-batches",
                   "samples": f"{len(y_eval)} samples, one landscape each"}[scene.capture.data]
        progress.log(f"capture: {1 if shared else len(todo)} landscape(s) for {len(todo)} of {len(steps)} steps on "
                     f"{device} ({len(alphas)}x{len(betas)} grid, {ev.strategy} strategy, "
                     f"cos(d1, d2) = {cosine(d1, d2):+.3f}, {scene.directions.frame} frame, "
                     f"loss on {loss_on})")
        zero = torch.zeros(1, dtype=torch.float64)

        plane_center = _plane_center(scene, data, dtype, traj) if fixed else None

        def grid_center(k: Optional[int]) -> dict:
            """Weights at grid point (0, 0): the plane centre (fixed frame) or step k's weights; for named weights,
            with those two entries at zero so that the grid's coordinates are their values."""
            c = plane_center if fixed else traj.weights[k]
            return zero_entries(c, scene.directions.weights) if scene.directions.kind == "weights" else c

        def landscape(center: dict) -> tuple[np.ndarray, Optional[np.ndarray]]:
            """(loss (nx, ny), per-sample loss (S, nx, ny) or None): per-sample captures show the samples' mean."""
            if not per_sample:
                return ev.grid(center, alphas, betas), None
            each = ev.grid(center, alphas, betas, reduction="none")
            return each.mean(axis=0), each

        plane = plane_samples = None
        if shared:
            if use_cache and cdir.has("plane"):
                arrays = cdir.load_arrays("plane")
                plane, plane_samples = arrays["loss"], arrays.get("sample_loss")
            else:
                with progress.stage("capture", len(alphas) * len(betas), "points") as advance:
                    plane, plane_samples = landscape(grid_center(None))
                    advance(plane.size)
                cdir.save_arrays("plane", {"loss": plane, **({"sample_loss": plane_samples} if per_sample else {})})
        with progress.stage("path" if shared else "capture", len(todo) * (1 if shared else alphas.size * betas.size),
                            "points") as advance:
            for k in todo:
                if scene.capture.data == "batch":
                    batch = traj.batches[min(int(steps[k]), len(traj.batches) - 1)]
                    ev.set_data(torch.as_tensor(data.x_train[batch]), torch.as_tensor(data.y_train[batch]))
                grid, grid_samples = (plane, plane_samples) if shared else landscape(grid_center(k))
                # The loss at this step's own weights: the grid centre in the follow frame, the path point in the
                # fixed frame (off the plane in general, so not a value of the grid).
                if per_sample:
                    center_samples = ev.evaluate(traj.weights[k], zero, zero, reduction="none")[0].cpu().numpy()
                    center = float(center_samples.astype(np.float64).mean())
                    cdir.save_step(steps[k], grid, center, grid_samples, center_samples)
                else:
                    center = float(ev.evaluate(traj.weights[k], zero, zero)[0])
                    cdir.save_step(steps[k], grid, center)
                advance(1 if shared else grid.size)
    else:
        progress.log(f"capture: all {len(steps)} steps reused from cache {cdir.path}")

    loaded = [cdir.load_step(s) for s in steps]
    return Capture(
        scene=scene, key=key, path=cdir.path, alphas=alphas, betas=betas, steps=np.asarray(steps),
        loss=np.stack([z["loss"] for z in loaded]), center_loss=np.array([float(z["center_loss"]) for z in loaded]),
        train_loss=traj.train_loss, centers=traj.weights, directions=(d1, d2), device=device.type,
        plane_path=np.asarray(path), updates=np.asarray(updates), frame=scene.directions.frame,
        explained_variance=None if explained is None else np.asarray(explained),
        sample_loss=np.stack([z["sample_loss"] for z in loaded]) if per_sample else None,
        sample_center_loss=np.stack([z["sample_center_loss"] for z in loaded]) if per_sample else None,
        sample_indices=np.asarray(scene.capture.sample_indices()) if per_sample else None,
    )


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


class Film:
    """Timeline, camera path and renderer of one capture at one output setting."""

    def __init__(self, capture: Capture, settings: OutputSettings):
        from .camera import camera_path
        from .timeline import Timeline

        scene = capture.scene
        self.capture, self.settings = capture, settings
        self.timeline = Timeline(capture.steps, capture.loss, capture.center_loss, scene.timeline, scene.scaling,
                                 settings.fps, capture.plane_path, capture.updates)
        from .renderer import DISPLAY_EXTENT

        focal = (0.0, 0.0, 0.5 * scene.scaling.z_scale * DISPLAY_EXTENT)
        self.camera = camera_path(scene.camera, self.timeline.n_frames, focal, DISPLAY_EXTENT)

    @property
    def n_frames(self) -> int:
        return self.timeline.n_frames

    def renderer(self):
        from .renderer import SurfaceRenderer

        scene = self.capture.scene
        return SurfaceRenderer(self.capture.alphas, self.capture.betas, scene.look, self.settings.width,
                               self.settings.height, scene.scaling.z_scale, scene.title)

    def frame(self, renderer, index: int) -> np.ndarray:
        return renderer.render(self.timeline.frame(index), self.camera.pose(index))


def default_output(scene: Scene, suffix: str = ".mp4") -> Path:
    if scene.output.path:
        return Path(scene.output.path)
    return Path("renders") / f"{scene.name}{suffix}"


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
                frames: Optional[str] = None, progress: Optional[Progress] = None) -> Path:
    """Render and encode the film; returns its path. The film appears only when complete."""
    from .encode import FilmWriter
    from .files import atomic_write

    progress = progress or Progress("none")
    scene = capture.scene
    settings = output_settings(scene, quality)
    film = Film(capture, settings)
    selected = parse_frames(frames, film.n_frames)
    output = Path(output) if output is not None else default_output(scene)
    with film.renderer() as renderer, \
            FilmWriter(output, settings.width, settings.height, settings.fps, scene.output.crf,
                       scene.output.encoder_preset) as writer, \
            progress.stage("render", len(selected), "frames") as advance:
        with _deferred_interrupt() as interrupted:
            for i in selected:
                writer.write(film.frame(renderer, i))
                advance(1)
                if interrupted():
                    raise KeyboardInterrupt
    sidecar = {
        "film": output.name, "scene": scene.source, "resolved_scene": scene.resolved_dump(),
        "capture_key": capture.key, "capture_path": str(capture.path), "frames": [selected.start, selected.stop],
        "n_frames_total": film.n_frames, "width": settings.width, "height": settings.height, "fps": settings.fps,
        "llstudio": __version__,
    }
    text = json.dumps(sidecar, indent=2)
    atomic_write(output.with_suffix(".json"), lambda tmp: Path(tmp).write_text(text))
    return output


def render_still(capture: Capture, index: int, output: Optional[Path] = None, quality: Optional[str] = None) -> Path:
    """Render one frame of the film to a PNG."""
    from .renderer import save_png

    scene = capture.scene
    film = Film(capture, output_settings(scene, quality))
    if not -film.n_frames <= index < film.n_frames:
        raise UsageError(f"--frame {index}: the film has {film.n_frames} frames (0 … {film.n_frames - 1})")
    index %= film.n_frames
    output = Path(output) if output is not None else Path("renders") / f"{scene.name}_{index:05d}.png"
    with film.renderer() as renderer:
        img = film.frame(renderer, index)
    save_png(img, output)
    return output


def estimate(scene: Scene, quality: Optional[str] = None) -> dict:
    """What a render will cost: captured steps, grid evaluations, frames (no torch, no OpenGL)."""
    steps = scene.captured_steps()
    nx, ny = scene.grid.shape
    from .timeline import film_length

    s = output_settings(scene, quality)
    duration, n_frames = film_length(len(steps), scene.timeline, s.fps)
    return {
        "training_steps": scene.training.steps, "captured_steps": len(steps), "grid": f"{nx}x{ny}",
        "grid_evaluations": len(steps) * nx * ny,
        "eval_samples": len(scene.capture.sample_indices()) if scene.capture.data == "samples" else scene.data.eval_size,
        "frames": n_frames, "duration_s": round(duration, 2),
        "resolution": f"{s.width}x{s.height}", "fps": s.fps,
    }
