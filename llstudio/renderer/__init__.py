"""The renderer stage: frames (values on the grid, a camera pose, a FrameState from the film) → RGB(A) images.

One off-screen pyvista Plotter per film (``SurfaceRenderer``), its layers built once and updated in place each
frame: the surface (``surface``) with its contour lines drawn by its shader (``contours``), the training path
(``trail``), the update arrow (``arrows``), the minimiser marker and critical points (``markers``), further runs
(``runs``); then the 2D overlays drawn with Pillow where ``layout`` puts them (``text``: title and info line;
``overlay``: legend, loss inset, run key, 1D axis, cards, contact sheets). ``backend`` is the only module that
imports pyvista or VTK; it also builds the meshes the exports write.
"""

from __future__ import annotations

import importlib

# Public name → the module that defines it. Loaded on first use (PEP 562): the CLI imports output.export, which
# needs only renderer.backend, at start-up, and the rest (scipy, matplotlib) would add most of a second to it.
_PUBLIC = {
    "SurfaceRenderer": "plotter", "resolve_anti_aliasing": "plotter", "render_window_info": "backend",
    "save_png": "image", "contact_sheet": "overlay", "draw_card": "overlay", "sheet_shape": "overlay",
    "clip_polyline": "trail", "clip_segment": "trail", "range_label": "text",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)


def __dir__():
    return sorted([*globals(), *_PUBLIC])
