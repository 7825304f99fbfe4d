"""The renderer of one film: one off-screen Plotter per film, its layers built once and updated in place.

SurfaceRenderer composes the layers (surface with its shader's contours, trail, arrow, markers, runs, critical
points, in that order of adding: it sets what is drawn over what; the ghosts of paths and markers on a layer over
them all) and the 2D overlays, placed by ``layout`` and drawn after the frame is grabbed. It
knows frames (values on a grid, a camera pose), not torch; pyvista and VTK are reached through ``backend``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
from PIL import Image

from ..config.colors import gradient_top
from ..config.scene import TRANSPARENT, LookSpec
from ..errors import RenderError
from ..film.timeline import FrameState
from .arrows import ArrowLayer
from .backend import FrameGrabber, open_plotter, render_window_info, top_layer
from .contours import ContourLayer
from .display import DisplaySquare
from .image import save_png, unpremultiply
from .markers import CRITICAL_COLORS, CriticalLayer, MarkerLayer
from .layout import OverlaySpec, PanelLayout, look_overlays, panel_layout
from .overlay import FrameOverlays, draw_card, run_color, veil
from .runs import RunsLayer
from .surface import SurfaceLayer, apply_lighting, material
from .text import range_label
from .trail import TrailLayer, clip_polyline, clip_segment

# Height from which anti_aliasing = 'auto' supersamples: qualities h, p and k.
SSAA_FROM_HEIGHT = 1080


def resolve_anti_aliasing(mode: str, height: int) -> str:
    """'auto' → 'ssaa' from 1080 lines up (h, p, k), 'msaa' below (l, m); any other mode as given.

    'fxaa' (VTK's post-process pass over the finished image) was measured against both at 1920x1080 on llvmpipe
    (benchmarks/render.py, PSNR against a 4x4-supersampled reference of the same frames): it smooths silhouettes
    but blurs everything else and scores no better than no anti-aliasing, for two thirds of SSAA's extra time,
    so 'auto' does not choose it."""
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

    ``overlays``: what is drawn over the frame (by default what the look and ``title`` ask for, with a run key
    as soon as a frame has several runs); ``frame_height``: the whole film's, when this renders one of its panels
    (text is sized by it). ``layout``: where every overlay goes and the free rectangle they leave the surface.
    """

    CRITICAL_COLORS = CRITICAL_COLORS

    def __init__(self, alphas: np.ndarray, betas: np.ndarray, look: LookSpec, width: int, height: int,
                 z_scale: float, title: str = "", log_values: bool = False, show_range: bool = False,
                 card_text: bool = True, overlays: Optional[OverlaySpec] = None,
                 frame_height: Optional[int] = None, supersample: Optional[int] = None):
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
        # ``supersample`` overrides it (benchmarks/render.py's 4x4 reference frame).
        self.ss = supersample or (2 if self.anti_aliasing == "ssaa" else 1)
        self.win_w, self.win_h = self.ss * self.width, self.ss * self.height
        self.z_height = z_scale * self.extent
        self.transparent = look.background == TRANSPARENT
        if self.transparent and self.anti_aliasing == "fxaa":
            raise RenderError("anti_aliasing = 'fxaa' drops the alpha channel a transparent background needs; use "
                              "'ssaa', 'msaa' or 'none'")
        self.plotter = open_plotter(self.win_w, self.win_h)
        self._set_up_window()
        apply_lighting(self.plotter, "flat" if self.flat else look.lighting)
        self.frame_height = frame_height or self.height
        self._log = log_values
        self._auto_runs = overlays is None
        self._lay_out(overlays if overlays is not None else look_overlays(look, title, self.one_d, z_scale=z_scale))
        self._add_layers()
        self._grabber = FrameGrabber(self.plotter.ren_win, self.win_w, self.win_h, self.transparent, self.ss)
        # A panel of a multi-panel film leaves the card's text to the film, which draws it once across all panels.
        self.card_text = card_text
        self._background = None
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
        p.renderer.SetUseFXAA(self.anti_aliasing == "fxaa")
        # A transparent background: an alpha channel in the framebuffer, cleared to alpha 0 (FXAA would drop it,
        # and is refused with one; MSAA keeps it).
        if self.transparent:
            p.ren_win.SetAlphaBitPlanes(1)
            p.set_background("black")
            p.renderer.SetBackgroundAlpha(0.0)
        else:
            p.set_background(look.background, top=gradient_top(look.background, look.background_top))

    def _lay_out(self, spec: OverlaySpec) -> None:
        """Place the overlays of ``spec`` (the layout) and make what draws them."""
        self.spec = spec
        self.layout: PanelLayout = panel_layout(spec, self.width, self.height, self.frame_height)
        self.overlays = FrameOverlays(self.look, spec, self.layout, self._log,
                                      "black" if self.transparent else self.look.background)

    def _add_layers(self) -> None:
        """The layers the look asks for, in the order their actors are added."""
        p, look, sq, ss = self.plotter, self.look, self.square, self.ss
        self.surface = SurfaceLayer(p, sq, look, self.flat, self.z_height, ss)
        self.contour_layer = (ContourLayer(self.surface.actor, look, self.surface.relief, ss)
                              if look.contours > 0 and not self.one_d else None)
        # Paths and markers that a fold of the surface hides show through as ghosts drawn over the scene; a flat
        # map hides nothing.
        self.top = (top_layer(p) if (look.trail or look.marker or look.arrows or look.critical_points)
                    and not self.flat else None)
        self.trail_layer = TrailLayer(p, sq, look, self.height, ss, self.top) if look.trail else None
        self.arrow_layer = ArrowLayer(p, sq, look, self.top) if look.arrows else None
        self.marker_layer = (MarkerLayer(p, sq, look, self.top, glow=not (self.flat or self.one_d))
                             if look.marker else None)
        # Made on the first frame that has several runs, or critical points to mark.
        self.runs: Optional[RunsLayer] = None
        self.critical: Optional[CriticalLayer] = None

    # What callers and tests inspect, from the layer that owns it.
    grid = property(lambda self: self.surface.grid, doc="The surface's StructuredGrid.")
    curve = property(lambda self: self.surface.curve, doc="A 1D capture's curve (a tube); None in 2D.")
    contour_actor = property(lambda self: self.contour_layer.actor if self.contour_layer else None)
    marker_actor = property(lambda self: self.marker_layer.actor if self.marker_layer else None)
    info_text = property(lambda self: self.overlays.text.info_text if self.overlays.text else None,
                         doc="The info line of the last frame, its lines broken where the panel would clip it.")

    def _flat_camera(self) -> None:
        """A fixed orthographic camera: top-down on the contour map, side-on on a 1D curve (a plain chart), the map
        or chart fitted into the free rectangle the overlays leave (``layout.free``)."""
        self.plotter.enable_parallel_projection()  # before the scale: enabling it resets the camera
        cam = self.plotter.camera
        free, w, h = self.layout.free, self.width, self.height
        cx, cy = (free.x0 + free.x1) / 2, (free.y0 + free.y1) / 2
        if self.one_d:
            zmid = 0.5 * self.z_height
            px = 0.92 * min(free.w / self.extent, free.h / max(self.z_height, 1e-9))  # pixels per display unit
            fx, fz = (w / 2 - cx) / px, zmid + (cy - h / 2) / px
            cam.position, cam.focal_point, cam.up = (fx, -10.0, fz), (fx, 0.0, fz), (0.0, 0.0, 1.0)
        else:
            px = 0.97 * min(free.w, free.h) / self.extent
            fx, fy = (w / 2 - cx) / px, (cy - h / 2) / px
            cam.position, cam.focal_point, cam.up = (fx, fy, 10.0), (fx, fy, 0.0), (0.0, 1.0, 0.0)
        cam.parallel_scale = 0.5 * h / px

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
            img = self._render_scene(state, pose)
            img = self.overlays.draw(img, state, *self._axis(state))
            if card is not None:
                img = veil(img, self.background_image(), card.veil)
        if card is not None and card.opacity > 0 and self.card_text:
            pil = Image.fromarray(img)
            draw_card(pil, card.text, card.subtitle, card.opacity, self.look.text_color)
            img = np.asarray(pil)
        return img

    def _axis(self, state: FrameState) -> tuple:
        """(alphas → pixel columns of a 1D curve's floor as this frame's camera sees it, the alpha span) for the
        axis under the curve; () in 2D."""
        if not self.one_d:
            return ()
        ren = self.plotter.renderer

        def x_of(alphas: np.ndarray) -> np.ndarray:
            out = []
            for x in self.square.coords(np.asarray(alphas, dtype=np.float64), 0, state.scale):
                ren.SetWorldPoint(float(x), 0.0, 0.0, 1.0)
                ren.WorldToDisplay()
                out.append(ren.GetDisplayPoint()[0] / self.ss)
            return np.array(out)
        return x_of, (float(self.alphas[0]) * state.scale, float(self.alphas[-1]) * state.scale)

    def background_image(self) -> np.ndarray:
        """The background alone (plain or gradient), (height, width, 3): what a card's veil fades to. Rendered
        once with every actor hidden, so it matches the scene's background to the pixel."""
        if self._background is None:
            actors = list(self.plotter.renderer.GetViewProps()) + \
                (list(self.top.GetViewProps()) if self.top is not None else [])
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
                self.runs = RunsLayer(self.plotter, self.square, self.look, len(state.runs), self.height, self.ss,
                                      self.top)
            layers.append(self.runs)
        if self.look.critical_points:
            if self.critical is None:
                self.critical = CriticalLayer(self.plotter, self.square, self.height, self.ss, self.top)
            layers.append(self.critical)
        return layers

    def _render_scene(self, state: FrameState, pose) -> np.ndarray:
        z = self.surface.update(state)
        layers = self._draped_layers(state)
        if layers:
            surface = self.square.height_function(z)
            for layer in layers:
                layer.update(state, surface)
        runs = tuple(name for name, _, _ in state.runs)
        if self._auto_runs and len(runs) > 1 and runs != self.spec.runs and self.look.overlay:
            self._lay_out(dataclasses.replace(self.spec, runs=runs))  # once: the runs of a film do not change
        if self.overlays.text is not None:
            self.overlays.text.update(state, range_label(self.alphas, self.betas, state.scale)
                                      if self.show_range else None)
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
