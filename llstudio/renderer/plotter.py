"""The renderer of one film: one off-screen Plotter per film, its layers built once and updated in place.

SurfaceRenderer composes the layers (surface, contours, trail, arrow, markers, runs, critical points, text, in
that order of adding: it sets what is drawn over what) and the 2D overlays drawn after the frame is grabbed. It
knows frames (values on a grid, a camera pose), not torch; pyvista and VTK are reached through ``backend``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import Image

from ..config.scene import TRANSPARENT, LookSpec
from ..film.timeline import FrameState
from .arrows import ArrowLayer
from .backend import FrameGrabber, open_plotter, render_window_info
from .contours import ContourLayer
from .display import DisplaySquare
from .image import save_png, unpremultiply
from .markers import CRITICAL_COLORS, CriticalLayer, MarkerLayer
from .overlay import FrameOverlays, draw_card, run_color, veil
from .runs import RunsLayer
from .surface import SurfaceLayer, apply_lighting, material
from .text import TextLayer, range_label
from .trail import TrailLayer, clip_polyline, clip_segment

# Height from which anti_aliasing = 'auto' supersamples: qualities h, p and k.
SSAA_FROM_HEIGHT = 1080


def resolve_anti_aliasing(mode: str, height: int) -> str:
    """'auto' → 'ssaa' from 1080 lines up (h, p, k), 'msaa' below (l, m); any other mode as given."""
    if mode == "auto":
        return "ssaa" if height >= SSAA_FROM_HEIGHT else "msaa"
    return mode


class SurfaceRenderer:
    """Renders a loss surface over (alpha, beta) with contour lines, a minimiser marker and text.

    ``alphas`` (nx,), ``betas`` (ny,): the grid axes, shown as a square of side ``DISPLAY_EXTENT`` centred on the
    origin; heights are ``(value - vmin) / (vmax - vmin)`` times ``z_scale`` times that side, so the surface keeps
    its proportions whatever the ranges and the loss. In a zoom film the axes of a frame are ``alphas`` and
    ``betas`` times its ``FrameState.scale`` and still fill the square: what is drawn in (alpha, beta) units is
    divided by the scale first, and what then falls outside the square is hidden (markers, critical points) or cut
    at its edge (paths, arrows). ``show_range`` adds the current range to the info text.
    """

    CRITICAL_COLORS = CRITICAL_COLORS

    def __init__(self, alphas: np.ndarray, betas: np.ndarray, look: LookSpec, width: int, height: int,
                 z_scale: float, title: str = "", log_values: bool = False, show_range: bool = False,
                 card_text: bool = True):
        self.look, self.width, self.height = look, int(width), int(height)
        self.square = sq = DisplaySquare(alphas, betas)
        self.alphas, self.betas, self.extent = sq.alphas, sq.betas, sq.extent
        # A 1D capture (one beta) is drawn as a curve over alpha; 'contours' is a flat top-down map.
        self.one_d = sq.one_d
        self.flat = look.view == "contours" and not self.one_d
        self.show_range = show_range
        self.anti_aliasing = resolve_anti_aliasing(look.anti_aliasing, self.height)
        # SSAA: the window renders ss x ss pixels for every output pixel and the grabber averages each block (a box
        # filter). Everything VTK draws in pixels (text, line widths, margins) is sized for the window, ss times
        # the output; the 2D overlays drawn afterwards (legend, inset, key, cards) for the output.
        # VTK's own vtkSSAAPass renders sqrt(5)^2 = 5 pixels per output pixel and filters them in two more
        # full-screen passes: on llvmpipe at 1920x1080 that took 1.8x as long as this (benchmarks/render.py).
        self.ss = 2 if self.anti_aliasing == "ssaa" else 1
        self.win_w, self.win_h = self.ss * self.width, self.ss * self.height
        self.z_height = z_scale * self.extent
        self.transparent = look.background == TRANSPARENT
        self.plotter = open_plotter(self.win_w, self.win_h, look.lighting in ("studio", "soft"))
        self._set_up_window()
        apply_lighting(self.plotter, "flat" if self.flat else look.lighting)
        self._add_layers(title)
        self._grabber = FrameGrabber(self.plotter.ren_win, self.win_w, self.win_h, self.transparent, self.ss)
        # A panel of a multi-panel film leaves the card's text to the film, which draws it once across all panels.
        self.card_text = card_text
        self._background = None
        self.overlays = FrameOverlays(look, self.width, self.height, log_values,
                                      "black" if self.transparent else look.background)
        if self.flat or (self.one_d and look.view == "contours"):
            self._flat_camera()

    def _set_up_window(self) -> None:
        """Transparency passes, multisampling and the background (an alpha channel when transparent)."""
        p, look = self.plotter, self.look
        # Order-independent transparency (VTK's default when depth peeling is off) costs extra full-screen passes
        # for every translucent actor: on llvmpipe at 1920x1080, 19 of a frame's 36 ms went to the contour lines
        # alone. Our translucent actors are lines lying on an opaque surface and, for a 1D curve, one strip, where
        # the order of blending makes no visible difference (benchmarks/render.py; stills compared).
        p.renderer.SetUseOIT(False)
        p.ren_win.SetMultiSamples(4 if self.anti_aliasing == "msaa" else 0)
        # A transparent background: an alpha channel in the framebuffer, cleared to alpha 0 (we never enable FXAA,
        # which would drop it; MSAA keeps it).
        if self.transparent:
            p.ren_win.SetAlphaBitPlanes(1)
            p.set_background("black")
            p.renderer.SetBackgroundAlpha(0.0)
        else:
            p.set_background(look.background, top=look.background_top)

    def _add_layers(self, title: str) -> None:
        """The layers the look asks for, in the order their actors are added."""
        p, look, sq, ss = self.plotter, self.look, self.square, self.ss
        self.surface = SurfaceLayer(p, sq, look, self.flat, self.z_height, ss)
        self.contour_layer = ContourLayer(p, look, self.extent, ss) if look.contours > 0 and not self.one_d else None
        self.trail_layer = TrailLayer(p, sq, look, self.height, ss) if look.trail else None
        self.arrow_layer = ArrowLayer(p, sq, look) if look.arrows else None
        self.marker_layer = MarkerLayer(p, sq, look) if look.marker else None
        self.text = TextLayer(p, look, title, self.height, self.win_w, self.win_h, ss) if look.overlay else None
        # Made on the first frame that has several runs, or critical points to mark.
        self.runs: Optional[RunsLayer] = None
        self.critical: Optional[CriticalLayer] = None

    # What callers and tests inspect, from the layer that owns it.
    grid = property(lambda self: self.surface.grid, doc="The surface's StructuredGrid.")
    curve = property(lambda self: self.surface.curve, doc="A 1D capture's curve (a tube); None in 2D.")
    contours = property(lambda self: self.contour_layer.lines if self.contour_layer else None,
                        doc="The contour lines (PolyData); None without contours.")
    contour_actor = property(lambda self: self.contour_layer.actor if self.contour_layer else None)
    marker_actor = property(lambda self: self.marker_layer.actor if self.marker_layer else None)
    title_actor = property(lambda self: self.text.title_actor if self.text else None)
    info_actor = property(lambda self: self.text.info_actor if self.text else None)

    def _flat_camera(self) -> None:
        """A fixed orthographic camera: top-down on the contour map, side-on on a 1D curve (a plain chart)."""
        self.plotter.enable_parallel_projection()  # before the scale: enabling it resets the camera
        cam = self.plotter.camera
        half = 0.5 * self.extent
        if self.one_d:
            zmid = 0.5 * self.z_height
            cam.position, cam.focal_point, cam.up = (0.0, -10.0, zmid), (0.0, 0.0, zmid), (0.0, 0.0, 1.0)
            cam.parallel_scale = 1.4 * max(zmid, half * self.height / self.width)
        else:
            cam.position, cam.focal_point, cam.up = (0.0, 0.0, 10.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)
            cam.parallel_scale = 1.2 * half  # a margin for the text and insets around the map

    def display_coords(self, v, axis: int, scale: float = 1.0):
        """Grid coordinate (alpha or beta) → display coordinate, in [-extent/2, extent/2] on the grid of a frame
        whose zoom is ``scale``."""
        return self.square.coords(v, axis, scale)

    def inside(self, xy: np.ndarray) -> np.ndarray:
        """(M,) whether display points (M, 2) lie on the square the surface fills."""
        return self.square.inside(xy)

    def run_color(self, i: int) -> str:
        """Colour of run ``i`` (0: the primary run, drawn in marker_color)."""
        return run_color(self.look, i)

    def render(self, state: FrameState, pose) -> np.ndarray:
        """One frame as an (height, width, 3) uint8 RGB array ((height, width, 4) RGBA with straight alpha when the
        background is transparent): the 3D scene, then the 2D overlays (legend, inset), then
        a card's veil and text when the frame belongs to a title or end card."""
        card = state.card
        if card is not None and card.veil >= 1.0:
            img = self.background_image().copy()  # nothing of the scene shows through: skip rendering it
        else:
            img = self.overlays.draw(self._render_scene(state, pose), state, self._info_height)
            if card is not None:
                img = veil(img, self.background_image(), card.veil)
        if card is not None and card.opacity > 0 and self.card_text:
            pil = Image.fromarray(img)
            draw_card(pil, card.text, card.subtitle, card.opacity, self.look.text_color)
            img = np.asarray(pil)
        return img

    def _info_height(self) -> Optional[int]:
        """Pixels the step/loss text takes at the bottom left, with a margin above it; None without overlay text."""
        return self.text.info_height() if self.text is not None else None

    def background_image(self) -> np.ndarray:
        """The background alone (plain or gradient), (height, width, 3): what a card's veil fades to. Rendered
        once with every actor hidden, so it matches the scene's background to the pixel."""
        if self._background is None:
            actors = list(self.plotter.renderer.GetViewProps())
            shown = [a.GetVisibility() for a in actors]
            for a in actors:
                a.SetVisibility(0)
            try:
                self._background = self._grabber.grab()
            finally:
                for a, v in zip(actors, shown):
                    a.SetVisibility(v)
        return self._background

    def _draped_layers(self, state: FrameState) -> list:
        """The layers drawn over the surface in this frame; the runs' and critical points' are made (their actors
        added) on the first frame that needs them."""
        layers = [layer for layer in (self.marker_layer, self.trail_layer, self.arrow_layer) if layer is not None]
        if len(state.runs) > 1:
            if self.runs is None:
                if self.trail_layer is not None:
                    # Several runs: each path in its run's colour, the primary one in the marker's.
                    self.trail_layer.set_color(self.look.marker_color)
                self.runs = RunsLayer(self.plotter, self.square, self.look, len(state.runs), self.height, self.ss)
            layers.append(self.runs)
        if self.look.critical_points:
            if self.critical is None:
                self.critical = CriticalLayer(self.plotter, self.square, self.height, self.ss)
            layers.append(self.critical)
        return layers

    def _render_scene(self, state: FrameState, pose) -> np.ndarray:
        z = self.surface.update(state)
        if self.contour_layer is not None:
            self.contour_layer.update(self.surface.grid)
        layers = self._draped_layers(state)
        if layers:
            surface = self.square.height_function(z)
            for layer in layers:
                layer.update(state, surface)
        if self.text is not None:
            self.text.update(state, range_label(self.alphas, self.betas, state.scale) if self.show_range else None)
        if not (self.flat or (self.one_d and self.look.view == "contours")):
            position, focal, up = pose
            cam = self.plotter.camera
            cam.position, cam.focal_point, cam.up = position, focal, up
        self.plotter.renderer.ResetCameraClippingRange()
        return self._grabber.grab()

    def close(self) -> None:
        """Close the Plotter and give back VTK's process-wide settings this film changed."""
        self.surface.close()
        self.plotter.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["SurfaceRenderer", "clip_polyline", "clip_segment", "material", "range_label", "render_window_info",
           "resolve_anti_aliasing", "save_png", "unpremultiply"]
