"""What a render will cost, from the scene alone (no torch work, no OpenGL): for ``llstudio check``."""

from __future__ import annotations

import os
from typing import Optional

from ..config.datasets import training_size
from ..config.scene import Scene
from ..film.film import output_settings
from ..film.panels import gap_pixels, grid_shape, panel_size
from ..film.timeline import film_length


def estimate(scene: Scene, quality: Optional[str] = None) -> dict:
    """What a render will cost: captured steps, grid evaluations, frames (no torch, no OpenGL); for a scene with
    panels, each panel's cost and the film's frames (the longest panel's)."""
    if scene.panels:
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
    s = output_settings(scene, quality)
    duration, n_frames = film_length(len(steps), scene.timeline, s.fps, steps)
    return {
        # A run read from training.source is not trained.
        "training_steps": 0 if scene.training.source is not None else scene.training.steps * len(
            scene.training.run_names()),
        "runs": len(scene.training.run_names()), "captured_steps": len(steps),
        "grid": f"{nx}x{ny}" if scene.grid.dimensions == 2 else f"{nx} (1D)",
        "grid_evaluations": len(steps) * nx * ny,
        "eval_samples": len(scene.capture.sample_indices()) if scene.capture.data == "samples" else scene.data.eval_size,
        **({"curvature_points": len(steps) * scene.capture.curvature.shape[0] * scene.capture.curvature.shape[1]}
           if scene.capture.curvature_on else {}),
        "frames": n_frames, "duration_s": round(duration, 2),
        "resolution": f"{s.width}x{s.height}", "fps": s.fps,
    }


# The memory estimate: what a capture and its render hold at their peak, from the scene and the model's size alone
# (no calibration, no data), so that render can refuse a capture the machine cannot hold before any work.
MiB = 2**20
PROCESS_MIB = 600  # python, torch and VTK loaded, before any array (measured: about 550 MiB resident)
CPU_BATCH_MIB = 512  # LandscapeEvaluator.default_memory_mb on a CPU; on a GPU its batches live in GPU memory
RENDER_BYTES_PER_POINT = 200  # the VTK surface of one grid point: points, normals, scalars, colours, cells, copies


def memory_parts(scene: Scene, n_params: int, input_shape: tuple, device_type: str = "cpu",
                 quality: Optional[str] = None) -> dict:
    """Bytes a capture and its render hold at once, by part (an upper bound: every part is counted as if held at
    the same time): ``dataset`` (training samples, float32, raw and normalised), ``training`` (the captured weights
    of every run, the model and its optimizer state), ``batches`` (the evaluator's batch budget, capture.memory_mb,
    on a CPU), ``grids`` ((steps, nx, ny) float64, loaded and stacked at assemble time), ``samples`` ((steps, S, nx,
    ny) per-sample landscapes), ``curvature`` (three (steps, cx, cy) maps), ``rendering`` (the surface mesh and a
    frame's pixels) and ``process`` (the interpreter with torch and VTK). For a scene with panels: the panels'
    sums (they are held together), one process."""
    if scene.panels:
        parts = [memory_parts(p, n_params, input_shape, device_type, quality) for p in scene.panel_scenes()]
        out = {k: sum(p[k] for p in parts) for k in parts[0]}
        out["process"] = parts[0]["process"]
        return out
    itemsize = 8 if scene.capture.dtype == "float64" else 4
    steps = len(scene.captured_steps())
    nx, ny = scene.grid.shape
    features = 1
    for d in input_shape:
        features *= d
    known = training_size(scene.data)  # None for own data: estimated from the sizes the scene asks for
    n_train = (scene.data.train_size or scene.data.eval_size) if known is None else min(scene.data.train_size or known,
                                                                                        known)
    runs = len(scene.training.run_names())
    s = output_settings(scene, quality)
    ssaa = 4 if scene.look.anti_aliasing == "ssaa" else 1
    cx, cy = scene.capture.curvature.shape if scene.capture.curvature_on else (0, 0)
    n_samples = len(scene.capture.sample_indices()) if scene.capture.data == "samples" else 0
    return {
        "process": PROCESS_MIB * MiB,
        "dataset": 2 * n_train * features * 4,
        "training": n_params * itemsize * (runs * steps + 4),
        "batches": ((scene.capture.memory_mb or CPU_BATCH_MIB) * MiB if device_type == "cpu" else 0)
        + scene.data.eval_size * features * itemsize,
        "grids": 2 * steps * nx * ny * 8,
        "samples": 2 * steps * n_samples * nx * ny * 8,
        "curvature": 2 * 3 * steps * cx * cy * 8,
        "rendering": nx * ny * RENDER_BYTES_PER_POINT + 4 * 4 * s.width * s.height * ssaa,
    }


def host_available_mib() -> Optional[int]:
    """Memory this machine can still give a process: MemAvailable from /proc/meminfo (Linux), else the physical
    memory (sysconf), else None (unknown: nothing is refused)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MiB
    except (ValueError, OSError, AttributeError):
        return None


def _biggest(parts: dict) -> str:
    names = {"grids": "the loss grids", "samples": "the per-sample landscapes", "curvature": "the curvature maps",
             "training": "the captured weights", "batches": "the evaluator's batches", "dataset": "the dataset",
             "rendering": "the surface mesh", "process": "the process itself"}
    k = max(parts, key=parts.get)
    return f"{names[k]}: {parts[k] / MiB:,.0f} MiB"


def memory_problem(scene: Scene, parts: dict, available_mib: Optional[int], where: str = "available RAM"
                   ) -> Optional[tuple[str, str]]:
    """(key path, message) when the estimated peak exceeds ``available_mib``; None when it fits or is unknown."""
    peak = sum(parts.values()) / MiB
    if available_mib is None or peak <= available_mib:
        return None
    nx, ny = scene.grid.shape
    steps = len(scene.captured_steps())
    return ("grid.resolution", (
        f"this capture needs about {peak:,.0f} MiB at its peak, but the machine has {available_mib:,} MiB of "
        f"{where} (largest part, {_biggest(parts)}; {steps} captured steps of {nx}x{ny} points). Lower it with a "
        "coarser grid.resolution, fewer captured steps (a larger capture.every, or capture.steps), fewer "
        "capture.samples or a coarser capture.curvature.resolution, a smaller capture.memory_mb or data.eval_size, "
        "capture.dtype = 'float32'; or pass --force to render anyway"))
