"""The renderer stage: frames (values on the grid, a camera pose, a FrameState from the film) → RGB(A) images.

One off-screen pyvista Plotter per film (``SurfaceRenderer``), its layers built once and updated in place each
frame: the surface (``surface``), contour lines (``contours``), the training path (``trail``), the update arrow
(``arrows``), the minimiser marker and critical points (``markers``), further runs (``runs``), the VTK text
(``text``); then the 2D overlays drawn with Pillow (``overlay``: legend, loss inset, run key, cards, contact
sheets). ``backend`` is the only module that imports pyvista or VTK.
"""

from .backend import render_window_info
from .image import save_png
from .overlay import contact_sheet, draw_card, sheet_shape
from .plotter import SurfaceRenderer, resolve_anti_aliasing
from .surface import surface_colors
from .trail import clip_polyline, clip_segment
from .text import range_label

__all__ = ["SurfaceRenderer", "clip_polyline", "clip_segment", "contact_sheet", "draw_card", "range_label",
           "render_window_info", "resolve_anti_aliasing", "save_png", "sheet_shape", "surface_colors"]
