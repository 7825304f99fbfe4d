"""What a render will cost, from the scene alone (no torch work, no OpenGL): for ``llstudio check``."""

from __future__ import annotations

from typing import Optional

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
