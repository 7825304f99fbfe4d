"""The pipeline: the only package that knows the order of the stages, opens the store and wires stages together.

scene (config) → training (train) → directions and loss grids (landscape) → cache (store) → timeline and camera
(film) → off-screen frames (renderer) → encoded film, exports (output)

``capture.py`` runs capture as a few named stages over a :class:`~llstudio.pipeline.context.CaptureContext`;
``render.py`` makes films and renders them; ``cost.py`` says what a render will cost. The names below are
imported on first use, so that ``llstudio check`` (which builds models but renders nothing) does not load VTK.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "capture_scene": "capture", "manifest": "capture",
    "render_film": "render", "render_still": "render", "render_contact_sheet": "render", "make_film": "render",
    "check_output": "render", "plan_render": "render", "encode_frames": "render", "check_render": "render",
    "still_index": "render",
    "write_sidecar": "render", "RenderPlan": "render", "film_format": "render", "default_output": "render", "contact_frames": "render",
    "estimate": "cost",
    "axes": "coordinates", "auto_range": "coordinates", "zoom_scales": "coordinates",
    "curvature_axes": "coordinates",
    "second_direction_note": "plane",
    "default_root": "..store.store",
    "capture_key": "..store.keys", "training_key": "..store.keys", "CAPTURE_SECTIONS": "..store.keys",
    "Capture": "..landscape.result", "PanelCapture": "..landscape.result", "RunRecord": "..landscape.result",
    "Film": "..film.film", "OutputSettings": "..film.film", "output_settings": "..film.film",
    "parse_frames": "..film.film", "PanelFilm": "..film.panels",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    where = _EXPORTS[name]
    module = importlib.import_module(where if where.startswith("..") else "." + where, __name__)
    return getattr(module, name)
