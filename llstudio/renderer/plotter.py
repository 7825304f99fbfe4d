"""Off-screen rendering with pyvista: one Plotter per film, meshes built once and updated in place.

This is the only module that imports pyvista/VTK. It knows frames (values on a grid, a camera pose), not torch.
"""

from __future__ import annotations

import os
from typing import Optional


import numpy as np

from ..errors import MissingDependency, RenderError
from ..config.scene import TRANSPARENT, LookSpec
from ..film.timeline import FrameState
from ..film.geometry import DISPLAY_EXTENT, to_display
from .backend import pyvista, render_window_info


def _empty(pv):
    """A one-point PolyData with no cells: draws nothing (pyvista would give bare points a vertex each, visible as
    a dot at the origin of a flat contour map)."""
    pd = pv.PolyData()
    pd.points = np.zeros((1, 3))
    return pd


def _fmt_loss(v: float) -> str:
    if not np.isfinite(v):
        return "diverged"
    return f"{v:.4g}"



def clip_segment(p, q, half: float):
    """Liang-Barsky: the parameters (t0, t1), 0 <= t0 <= t1 <= 1, of the part of the segment p → q (display x, y)
    inside the square [-half, half]², or None when it misses the square."""
    p, d = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64) - np.asarray(p, dtype=np.float64)
    t0, t1 = 0.0, 1.0
    for k in (0, 1):
        for pk, qk in ((-d[k], p[k] + half), (d[k], half - p[k])):
            if pk == 0.0:
                if qk < 0.0:  # parallel to this side and outside it
                    return None
            elif pk < 0.0:
                t0 = max(t0, qk / pk)
            else:
                t1 = min(t1, qk / pk)
    return (t0, t1) if t0 <= t1 else None


def clip_polyline(xy: np.ndarray, half: float, values: np.ndarray | None = None) -> list[tuple]:
    """The pieces of the polyline ``xy`` (M, 2) inside the square [-half, half]², cut where it crosses the edge: a
    list of (points (m, 2), values (m,) or None), each of at least two points; ``values`` (M,) are interpolated
    along the cut segments. A zoom film's trail leaves the square as the view closes in."""
    xy = np.asarray(xy, dtype=np.float64)
    pieces, pts, vals = [], [], []

    def at(a, i, t):  # a[i] → a[i + 1] at t, the ends exactly
        return a[i] if t == 0.0 else a[i + 1] if t == 1.0 else a[i] + t * (a[i + 1] - a[i])
    open_end = False  # whether the current piece ends at the start of the next segment

    def close():
        if len(pts) >= 2:
            pieces.append((np.array(pts), None if values is None else np.array(vals)))
        pts.clear()
        vals.clear()

    for i in range(len(xy) - 1):
        t = clip_segment(xy[i], xy[i + 1], half)
        if t is None:
            close()
            open_end = False
            continue
        t0, t1 = t
        if not (open_end and t0 == 0.0):
            close()
            pts.append(at(xy, i, t0))
            if values is not None:
                vals.append(at(values, i, t0))
        pts.append(at(xy, i, t1))
        if values is not None:
            vals.append(at(values, i, t1))
        open_end = t1 == 1.0
    close()
    return pieces


def range_label(alphas: np.ndarray, betas: np.ndarray, scale: float) -> str:
    """The grid's current range for the info text, e.g. 'range ±0.25' (alpha and beta alike, symmetric) or
    'alpha [-0.05, 0.15]  beta ±0.1'."""
    def span(ax):
        lo, hi = float(ax[0]) * scale, float(ax[-1]) * scale
        return f"±{hi:.3g}" if np.isclose(lo, -hi) else f"[{lo:.3g}, {hi:.3g}]"

    a = span(alphas)
    if len(betas) == 1 or np.allclose(alphas[[0, -1]], betas[[0, -1]]):
        return f"range {a}"
    return f"alpha {a}  beta {span(betas)}"

# Height from which anti_aliasing = 'auto' supersamples: qualities h, p and k.
SSAA_FROM_HEIGHT = 1080


def resolve_anti_aliasing(mode: str, height: int) -> str:
    """'auto' → 'ssaa' from 1080 lines up (h, p, k), 'msaa' below (l, m); any other mode as given."""
    if mode == "auto":
        return "ssaa" if height >= SSAA_FROM_HEIGHT else "msaa"
    return mode


def material(look: LookSpec) -> dict:
    """add_mesh keywords of the surface's material for the look's lighting preset and PBR settings."""
    if look.lighting == "flat":
        # Unlit: the colours are exactly the colormap's, as on a printed contour map.
        return dict(ambient=1.0, diffuse=0.0, specular=0.0)
    if look.pbr:
        return dict(pbr=True, metallic=look.metallic, roughness=look.roughness)
    kw = dict(specular=look.specular, specular_power=30.0)
    if look.lighting == "soft":
        kw.update(ambient=0.28, diffuse=0.75, specular=0.5 * look.specular, specular_power=12.0)
    elif look.lighting == "dramatic":
        kw.update(ambient=0.1, diffuse=1.0, specular=min(1.0, look.specular + 0.25), specular_power=45.0)
    return kw


def _apply_lighting(pv, plotter, preset: str) -> None:
    """Lights of a preset; 'studio' and 'soft' start from the light kit the Plotter was made with."""
    if preset == "soft":
        for light in plotter.renderer.lights:
            light.intensity *= 0.8
    elif preset == "dramatic":
        plotter.remove_all_lights()
        # A low key light raking across the surface from one side makes every ridge cast a highlight and a shadow
        # side; a faint cool fill keeps the far side from going black.
        plotter.add_light(pv.Light(position=(-4.0, -2.5, 2.4), focal_point=(0.0, 0.0, 0.3), intensity=1.6,
                                   light_type="scene light"))
        plotter.add_light(pv.Light(position=(3.0, 2.0, 2.5), focal_point=(0.0, 0.0, 0.3), intensity=0.18,
                                   color=(0.75, 0.82, 1.0), light_type="scene light"))
    elif preset == "flat":
        plotter.remove_all_lights()


class SurfaceRenderer:
    """Renders a loss surface over (alpha, beta) with contour lines, a minimiser marker and text.

    ``alphas`` (nx,), ``betas`` (ny,): the grid axes, shown as a square of side ``DISPLAY_EXTENT`` centred on the
    origin; heights are ``(value - vmin) / (vmax - vmin)`` times ``z_scale`` times that side, so the surface keeps
    its proportions whatever the ranges and the loss. In a zoom film the axes of a frame are ``alphas`` and
    ``betas`` times its ``FrameState.scale`` and still fill the square: what is drawn in (alpha, beta) units is
    divided by the scale first, and what then falls outside the square is hidden (markers, critical points) or cut
    at its edge (paths, arrows). ``show_range`` adds the current range to the info text.
    """

    def __init__(self, alphas: np.ndarray, betas: np.ndarray, look: LookSpec, width: int, height: int,
                 z_scale: float, title: str = "", log_values: bool = False, show_range: bool = False):
        pv = pyvista()
        self.pv = pv
        self.look, self.width, self.height = look, int(width), int(height)
        self.alphas, self.betas = np.asarray(alphas, float), np.asarray(betas, float)
        # A 1D capture (one beta) is drawn as a curve over alpha; 'contours' is a flat top-down map.
        self.one_d = len(self.betas) == 1
        self.flat = look.view == "contours" and not self.one_d
        self.log_values = log_values
        self.anti_aliasing = resolve_anti_aliasing(look.anti_aliasing, self.height)
        # SSAA: the window renders ss x ss pixels for every output pixel and _grab averages each block (a box
        # filter). Everything VTK draws in pixels (text, line widths, margins) is sized for the window, ss times
        # the output; the 2D overlays drawn afterwards (legend, inset, key, cards) for the output.
        # VTK's own vtkSSAAPass renders sqrt(5)^2 = 5 pixels per output pixel and filters them in two more
        # full-screen passes: on llvmpipe at 1920x1080 that took 1.8x as long as this (benchmarks/render.py).
        self.ss = 2 if self.anti_aliasing == "ssaa" else 1
        self.win_w, self.win_h = self.ss * self.width, self.ss * self.height
        # The grid is shown as a square of side DISPLAY_EXTENT whatever its ranges, like a plot whose two axes are
        # scaled independently: a PCA plane can be a hundred times longer than it is wide.
        self.extent = DISPLAY_EXTENT
        # Half the square's side, with room for rounding: a path point on the grid's edge is inside.
        self._half = 0.5 * self.extent * (1.0 + 1e-9)
        self.show_range = show_range
        self.x = self.display_coords(self.alphas, 0)
        self.y = self.display_coords(self.betas, 1)
        self.z_height = z_scale * self.extent
        try:
            self.plotter = pv.Plotter(off_screen=True, window_size=(self.win_w, self.win_h),
                                      lighting="light kit" if look.lighting in ("studio", "soft") else "none")
        except Exception as exc:  # VTK raises plain RuntimeErrors when no context can be made
            raise MissingDependency(
                f"no off-screen OpenGL context ({exc}). On a headless Linux machine install Mesa's EGL "
                "(Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri) or OSMesa, or set "
                "VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow; 'llstudio doctor' reports what is in use."
            ) from None
        p = self.plotter
        # Order-independent transparency (VTK's default when depth peeling is off) costs extra full-screen passes
        # for every translucent actor: on llvmpipe at 1920x1080, 19 of a frame's 36 ms went to the contour lines
        # alone. Our translucent actors are lines lying on an opaque surface and, for a 1D curve, one strip, where
        # the order of blending makes no visible difference (benchmarks/render.py; stills compared).
        p.renderer.SetUseOIT(False)
        p.ren_win.SetMultiSamples(4 if self.anti_aliasing == "msaa" else 0)
        # A transparent background: an alpha channel in the framebuffer, cleared to alpha 0 (we never enable FXAA,
        # which would drop it; MSAA keeps it).
        self.transparent = look.background == TRANSPARENT
        self.channels = 4 if self.transparent else 3
        if self.transparent:
            p.ren_win.SetAlphaBitPlanes(1)
            p.set_background("black")
            p.renderer.SetBackgroundAlpha(0.0)
        else:
            p.set_background(look.background, top=look.background_top)
        _apply_lighting(pv, p, "flat" if self.flat else look.lighting)
        mat = material(look.model_copy(update={"lighting": "flat"}) if self.flat else look)

        X, Y = np.meshgrid(self.x, self.y, indexing="ij")
        if self.one_d:
            # The curve's 'curtain': a strip from the floor up to the curve, so it reads as a filled chart.
            X, Y = np.repeat(self.x[:, None], 2, axis=1), np.zeros((len(self.x), 2))
        self.grid = pv.StructuredGrid(X, Y, np.zeros_like(X))
        self.grid["values"] = np.zeros(X.size)
        # In the contour view, as many colour bands as contour intervals: filled contours.
        bands = dict(n_colors=look.contours + 1) if self.flat and look.contours > 0 else {}
        # color_by = 'convexity' colours by the frame's own colour array (FrameState.colors), on a fixed 0..1 range.
        self.color_by = look.color_by
        self.grid["colors"] = np.zeros(self.grid.n_points)
        self.surface_actor = p.add_mesh(
            self.grid, scalars="values" if self.color_by == "loss" else "colors",
            cmap=look.colormap if self.color_by == "loss" else look.convexity_colormap,
            clim=(0.0, 1.0), smooth_shading=look.smooth_shading,
            show_scalar_bar=False, name="surface", opacity=0.45 if self.one_d else 1.0, **mat, **bands,
        )
        self.curve = self.curve_actor = None
        if self.one_d:
            self.curve = _empty(pv)
            self.curve["values"] = np.zeros(1)
            self.curve_actor = p.add_mesh(self.curve, scalars="values", cmap=look.colormap, clim=(0.0, 1.0),
                                          smooth_shading=True, show_scalar_bar=False, name="curve",
                                          reset_camera=False, **material(look))
        if look.wireframe or self.flat:
            # Push the surface's polygons back a little in depth so lines lying on it win the depth test instead
            # of stippling in and out of it.
            self.surface_actor.mapper.SetResolveCoincidentTopologyToPolygonOffset()
            self.surface_actor.mapper.SetRelativeCoincidentTopologyPolygonOffsetParameters(2.0, 2.0)
        self.wire_actor = None
        if look.wireframe and not self.one_d:
            # Same dataset as the surface: its points move with it at no cost.
            self.wire_actor = p.add_mesh(self.grid, style="wireframe", color=look.wireframe_color, opacity=0.28,
                                         line_width=1.0 * self.ss, name="wireframe", reset_camera=False, lighting=False)
        # A point without cells draws nothing but lets the actor exist before the first frame's lines.
        self.contours = _empty(pv)
        self.contour_actor = None
        if look.contours > 0 and not self.one_d:
            self.contour_actor = p.add_mesh(self.contours, color=look.contour_color, line_width=1.2 * self.ss,
                                            opacity=0.55, name="contours", reset_camera=False)
        self.trail = _empty(pv)
        self.trail_actor = None
        if look.trail:
            if look.trail_coloring == "loss":
                self.trail["loss"] = np.zeros(1)
                self.trail_actor = p.add_mesh(self.trail, scalars="loss", cmap=look.trail_colormap, clim=(0.0, 1.0),
                                              line_width=max(3.0, self.height / 270) * self.ss,
                                              show_scalar_bar=False,
                                              name="trail", reset_camera=False, lighting=False)
            else:
                self.trail_actor = p.add_mesh(self.trail, color=look.trail_color,
                                              line_width=max(2.0, self.height / 360) * self.ss, name="trail",
                                              reset_camera=False)
        self.arrow = _empty(pv)
        self.arrow_actor = None
        if look.arrows:
            self.arrow_actor = p.add_mesh(self.arrow, color=look.arrow_color, smooth_shading=True,
                                          name="arrow", reset_camera=False)
        self.marker_actor = None
        if look.marker:
            sphere = pv.Sphere(radius=0.022 * self.extent, theta_resolution=24, phi_resolution=24)
            self.marker_actor = p.add_mesh(sphere, color=look.marker_color, smooth_shading=True, specular=0.6,
                                           name="marker", reset_camera=False)
        self.title_actor = self.info_actor = None
        if look.overlay:
            # Pixel positions give plain text actors (SetInput) with a margin, unlike corner annotations.
            # In window pixels (ss times the output's).
            size = max(8, int(self.height / 42)) * self.ss
            margin = int(0.025 * self.height) * self.ss
            self._text_room = self.win_w - 3 * margin  # what a line of text may span
            if title:
                self.title_actor = p.add_text(title, position=(margin * 1.5, self.win_h - margin - 1.4 * size),
                                              font_size=size, color=look.text_color, name="title")
                self._fit_title(margin)
            self.info_actor = p.add_text(" ", position=(margin * 1.5, margin), font_size=int(size * 0.8),
                                         color=look.text_color, name="info")
        self._buffer = None
        self._run_actors = None
        # A panel of a multi-panel film leaves the card's text to the film, which draws it once across all panels.
        self.card_text = True
        self._critical = None
        self._background = None
        self._inset = self._inset_for = self._inset_room = None
        self._legend = None
        if look.legend:
            from .overlay import Legend

            self._legend = Legend(look.colormap, self.width, self.height, log_values, look.text_color)
        if self.flat or (self.one_d and look.view == "contours"):
            self._flat_camera()

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

    def _update_arrow(self, state: FrameState, surface) -> None:
        if state.arrow is None:
            self.arrow.copy_from(_empty(self.pv))
            return
        start, end = self.display_xy(np.asarray(state.arrow, dtype=np.float64), state.scale)
        end = start + self.look.arrow_scale * (end - start)
        # An update that starts outside the (zoomed) square is not shown; one that leaves it ends at its edge.
        if not self.inside(start)[0]:
            self.arrow.copy_from(_empty(self.pv))
            return
        t1 = clip_segment(start, end, self._half)[1]
        if t1 < 1.0:
            end = start + t1 * (end - start)
        lift = 0.02 * self.extent
        p0 = np.array([*start, surface([start])[0] + lift])
        p1 = np.array([*end, surface([end])[0] + lift])
        length = float(np.linalg.norm(p1 - p0))
        if length < 1e-9:
            self.arrow.copy_from(_empty(self.pv))
            return
        # Thickness in display units, not relative to the length: short updates stay visible as arrows.
        arrow = self.pv.Arrow(start=p0, direction=p1 - p0, scale=length, tip_length=min(0.35, 0.08 / length),
                              tip_radius=min(0.15, 0.025 / length), shaft_radius=min(0.05, 0.009 / length))
        self.arrow.copy_from(arrow)

    def _fit_title(self, margin: int) -> None:
        """Shrink the title's font until it fits the frame's width (a narrow panel would clip it), down to 10
        points. (pyvista's add_text sets twice the font size it is given: these are VTK's own sizes.)"""
        bbox = [0.0] * 4
        actor, prop = self.title_actor, self.title_actor.GetTextProperty()
        size, floor = prop.GetFontSize(), 10 * self.ss
        while size > floor:
            actor.GetBoundingBox(self.plotter.renderer, bbox)
            if bbox[1] - bbox[0] <= self._text_room:
                break
            size = max(floor, int(size * 0.9))
            prop.SetFontSize(size)
            actor.SetPosition(margin * 1.5, self.win_h - margin - 0.7 * size)

    def _info_height(self) -> Optional[int]:
        """Pixels the step/loss text takes at the bottom left, with a margin above it; None without overlay text."""
        if self.info_actor is None:
            return None
        bbox = [0.0] * 4
        self.info_actor.GetBoundingBox(self.plotter.renderer, bbox)
        return int((bbox[3] - bbox[2]) / self.ss + 0.03 * self.height)

    def _set_text(self, actor, parts: list[str]) -> None:
        """Show ``parts`` on one line, four spaces apart, or broken into as few lines as fit the frame's width
        (a narrow panel would clip the end of the line)."""
        bbox = [0.0] * 4

        def width(text: str) -> float:
            actor.SetInput(text)
            actor.GetBoundingBox(self.plotter.renderer, bbox)
            return bbox[1] - bbox[0]

        lines = [parts[0]]
        for part in parts[1:]:
            joined = f"{lines[-1]}    {part}"
            if width(joined) <= self._text_room:
                lines[-1] = joined
            else:
                lines.append(part)
        actor.SetInput("\n".join(lines))

    def display_coords(self, v, axis: int, scale: float = 1.0):
        """Grid coordinate (alpha or beta) → display coordinate, in [-extent/2, extent/2] on the grid of a frame
        whose zoom is ``scale``."""
        return to_display(v, self.alphas if axis == 0 else self.betas, self.extent, scale)

    def display_xy(self, ab: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """(M, 2) (alpha, beta) → (M, 2) display (x, y) at zoom ``scale``."""
        ab = np.asarray(ab, dtype=np.float64).reshape(-1, 2)
        return np.column_stack([self.display_coords(ab[:, 0], 0, scale), self.display_coords(ab[:, 1], 1, scale)])

    def inside(self, xy: np.ndarray) -> np.ndarray:
        """(M,) whether display points (M, 2) lie on the square the surface fills."""
        return np.all(np.abs(np.asarray(xy, dtype=np.float64).reshape(-1, 2)) <= self._half, axis=1)

    def _draped_path(self, ab: np.ndarray, scale: float, surface, values: np.ndarray | None = None):
        """A path (M, 2) in (alpha, beta) as line segments draped over the surface, lifted a little so the surface
        does not swallow it, cut where it leaves the square; with ``values`` (M,) a point array 'loss' of them. None
        when nothing of it is inside."""
        pieces = clip_polyline(self.display_xy(ab, scale), self._half, values)
        if not pieces:
            return None
        xy = np.concatenate([p for p, _ in pieces])
        cells, start = [], 0
        for p, _ in pieces:  # segments, as pyvista's lines_from_points makes them
            cells += [c for j in range(start, start + len(p) - 1) for c in (2, j, j + 1)]
            start += len(p)
        line = self.pv.PolyData(np.column_stack([xy, surface(xy) + 0.006 * self.extent]), lines=np.array(cells))
        if values is not None:
            line["loss"] = np.concatenate([v for _, v in pieces])
        return line

    def _heights(self, state: FrameState) -> np.ndarray:
        span = state.vmax - state.vmin
        unit = (state.values - state.vmin) / span if span > 0 else np.zeros_like(state.values)
        return unit

    def render(self, state: FrameState, pose) -> np.ndarray:
        """One frame as an (height, width, 3) uint8 RGB array ((height, width, 4) RGBA with straight alpha when the
        background is transparent): the 3D scene, then the 2D overlays (legend, inset), then
        a card's veil and text when the frame belongs to a title or end card."""
        card = state.card
        if card is not None and card.veil >= 1.0:
            img = self.background_image().copy()  # nothing of the scene shows through: skip rendering it
        else:
            img = self._overlays(self._render_scene(state, pose), state)
            if card is not None:
                from .overlay import veil

                img = veil(img, self.background_image(), card.veil)
        if card is not None and card.opacity > 0 and self.card_text:
            from PIL import Image

            from .overlay import draw_card

            pil = Image.fromarray(img)
            draw_card(pil, card.text, card.subtitle, card.opacity, self.look.text_color)
            img = np.asarray(pil)
        return img

    def _overlays(self, img: np.ndarray, state: FrameState) -> np.ndarray:
        keyed = len(state.runs) > 1 and self.look.overlay
        if self._legend is None and not (self.look.loss_inset and state.curve is not None) and not keyed:
            return img
        from PIL import Image

        pil = Image.fromarray(img)
        if self._legend is not None:
            self._legend.draw(pil, state.vmin, state.vmax)
        inset = self.look.loss_inset and state.curve is not None
        if inset:
            room = self._info_height() if "left" in self.look.inset_corner else None
            if self._inset is None or self._inset_for is not state.curve or room != self._inset_room:
                from .overlay import LossInset

                self._inset_for, self._inset_room = state.curve, room
                self._inset = LossInset(state.curve[0], state.curve[1], self.width, self.height,
                                        self.look.inset_corner, self.log_values, self.look.text_color,
                                        self.look.marker_color,
                                        "black" if self.transparent else self.look.background, room)
            self._inset.draw(pil, state.step)
        if keyed:
            from .overlay import draw_run_key

            # Above an inset in the same corner rather than over it.
            bottom = (self._inset.y0 - int(0.02 * self.height)
                      if inset and self.look.inset_corner == "bottom_right" else None)
            draw_run_key(pil, [(name, self.run_color(i)) for i, (name, _, _) in enumerate(state.runs)], self.width,
                         self.height, self.look.text_color, bottom)
        return np.asarray(pil)

    def background_image(self) -> np.ndarray:
        """The background alone (plain or gradient), (height, width, 3): what a card's veil fades to. Rendered
        once with every actor hidden, so it matches the scene's background to the pixel."""
        if self._background is None:
            actors = list(self.plotter.renderer.GetViewProps())
            shown = [a.GetVisibility() for a in actors]
            for a in actors:
                a.SetVisibility(0)
            try:
                self._background = self._grab()
            finally:
                for a, v in zip(actors, shown):
                    a.SetVisibility(v)
        return self._background

    def _height_function(self, z: np.ndarray):
        """Display (x, y) points → height of the surface (or of the 1D curve) there."""
        if self.one_d:
            zline = z[:, 0]
            return lambda xy: np.interp(np.asarray(xy, dtype=float).reshape(-1, 2)[:, 0], self.x, zline)
        from scipy.interpolate import RegularGridInterpolator

        return RegularGridInterpolator((self.x, self.y), z, bounds_error=False, fill_value=None)

    def _render_scene(self, state: FrameState, pose) -> np.ndarray:
        unit = self._heights(state)
        z = np.zeros_like(unit) if self.flat else unit * self.z_height
        if self.one_d:
            # The curtain: floor (j = 0) and curve (j = 1), both coloured by the value.
            self.grid.points[:, 2] = np.column_stack([np.zeros(len(z)), z[:, 0]]).ravel(order="F")
            self.grid["values"] = np.repeat(unit[:, :1], 2, axis=1).ravel(order="F")
            line = self.pv.lines_from_points(np.column_stack([self.x, np.zeros(len(self.x)), z[:, 0]]))
            line["values"] = unit[:, 0]
            self.curve.copy_from(line.tube(radius=0.012 * self.extent, n_sides=12))
        else:
            # StructuredGrid points are in Fortran order of the (nx, ny) arrays.
            self.grid.points[:, 2] = z.ravel(order="F")
            self.grid["values"] = unit.ravel(order="F")
        if self.color_by != "loss":
            colors = state.colors if state.colors is not None else np.full_like(unit, np.nan)
            colors = np.clip(colors, 0.0, 1.0)
            if self.one_d:
                colors = np.repeat(colors[:, :1], 2, axis=1)
            self.grid["colors"] = colors.ravel(order="F")
        if self.contour_actor is not None:
            levels = np.linspace(0.0, 1.0, self.look.contours + 2)[1:-1]
            lines = self.grid.contour(isosurfaces=levels, scalars="values")
            # Lift the lines a hair above the surface so they do not flicker in and out of it.
            if lines.n_points:
                lines.points[:, 2] += 0.002 * self.extent
            self.contours.copy_from(lines)
        if self.marker_actor is not None or self.trail_actor is not None or self.arrow_actor is not None:
            surface = self._height_function(z)
        if self.marker_actor is not None:
            self._place_marker(self.marker_actor, state.marker, state.scale, surface)
        if self.trail_actor is not None:
            line = None
            if len(state.trail) >= 2:
                tv = None
                if self.look.trail_coloring == "loss":
                    tv = state.trail_values if state.trail_values is not None else np.full(len(state.trail),
                                                                                            state.vmax)
                    span = state.vmax - state.vmin
                    tv = np.clip((tv - state.vmin) / span if span > 0 else 0.0 * tv, 0.0, 1.0)
                line = self._draped_path(state.trail, state.scale, surface, tv)
            if line is not None:
                self.trail.copy_from(line)
            else:
                empty = _empty(self.pv)
                if self.look.trail_coloring == "loss":
                    empty["loss"] = np.zeros(1)
                self.trail.copy_from(empty)
        if self.arrow_actor is not None:
            self._update_arrow(state, surface)
        if len(state.runs) > 1:
            self._update_runs(state, z)
        if self.look.critical_points:
            self._update_critical(state, z)
        if self.info_actor is not None:
            epoch = f"    epoch {state.epoch:.2f}" if self.look.epoch and state.epoch is not None else ""
            zoom = [range_label(self.alphas, self.betas, state.scale)] if self.show_range else []
            self._set_text(self.info_actor, [f"step {state.step:,.0f}", *([epoch.strip()] if epoch else []),
                                             f"loss {_fmt_loss(state.center_loss)}", *zoom])
        if not (self.flat or (self.one_d and self.look.view == "contours")):
            position, focal, up = pose
            cam = self.plotter.camera
            cam.position, cam.focal_point, cam.up = position, focal, up
        self.plotter.renderer.ResetCameraClippingRange()
        return self._grab()

    def _place_marker(self, actor, ab, scale: float, surface) -> None:
        """A marker sphere on the surface at (alpha, beta) ``ab``; hidden while it is outside the square."""
        xy = self.display_xy(ab, scale)
        shown = bool(self.inside(xy)[0])
        actor.SetVisibility(shown)
        if shown:
            mx, my = xy[0]
            actor.SetPosition(float(mx), float(my), float(surface(xy)[0]) + 0.01 * self.extent)

    def run_color(self, i: int) -> str:
        """Colour of run ``i`` (0: the primary run, drawn in marker_color)."""
        return self.look.marker_color if i == 0 else self.look.run_colors[(i - 1) % len(self.look.run_colors)]

    def _update_runs(self, state: FrameState, z: np.ndarray) -> None:
        """Marker and path of every further run (the primary run is the ordinary marker and trail), each in its own
        colour; actors are made on the first frame, then their data updated in place."""
        surface = self._height_function(z)
        if self._run_actors is None:
            self._run_actors = []
            if self.trail_actor is not None and self.look.trail_coloring == "solid":
                # Several runs: each path in its run's colour, the primary one in the marker's.
                self.trail_actor.prop.color = self.look.marker_color
            radius = 0.018 * self.extent
            for i in range(1, len(state.runs)):
                color = self.run_color(i)
                sphere = self.pv.Sphere(radius=radius, theta_resolution=20, phi_resolution=20)
                marker = self.plotter.add_mesh(sphere, color=color, smooth_shading=True, specular=0.6,
                                               name=f"run{i}_marker", reset_camera=False) if self.look.marker else None
                trail = _empty(self.pv)
                trail_actor = self.plotter.add_mesh(trail, color=color, line_width=max(2.0, self.height / 360) * self.ss,
                                                    name=f"run{i}_trail", reset_camera=False,
                                                    lighting=False) if self.look.trail else None
                self._run_actors.append((marker, trail, trail_actor))
        for (name, marker_ab, trail_ab), (marker, trail, trail_actor) in zip(state.runs[1:], self._run_actors):
            if marker is not None:
                self._place_marker(marker, marker_ab, state.scale, surface)
            if trail_actor is not None:
                line = self._draped_path(trail_ab, state.scale, surface) if len(trail_ab) >= 2 else None
                trail.copy_from(line if line is not None else _empty(self.pv))

    CRITICAL_COLORS = {"minimum": "#2f7bff", "maximum": "#ff9f1c", "saddle": "#ffffff"}

    def _update_critical(self, state: FrameState, z: np.ndarray) -> None:
        """Small spheres on the surface at the frame's critical points, one point cloud per kind."""
        if self._critical is None:
            self._critical = {}
            for kind, color in self.CRITICAL_COLORS.items():
                cloud = _empty(self.pv)
                self.plotter.add_mesh(cloud, color=color, render_points_as_spheres=True,
                                      point_size=max(5.0, self.height / 90) * self.ss, name=f"critical_{kind}",
                                      reset_camera=False)
                self._critical[kind] = cloud
        surface = self._height_function(z)
        for kind, cloud in self._critical.items():
            xy = self.display_xy(np.array([[p.alpha, p.beta] for p in state.critical if p.kind == kind]),
                                 state.scale)
            xy = xy[self.inside(xy)]
            if not len(xy):
                cloud.copy_from(_empty(self.pv))
                continue
            cloud.copy_from(self.pv.PolyData(np.column_stack([xy, surface(xy) + 0.012 * self.extent])))

    def _grab(self) -> np.ndarray:
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkCommonCore import vtkUnsignedCharArray

        win = self.plotter.ren_win
        win.Render()
        if self._buffer is None:
            self._buffer = vtkUnsignedCharArray()
        w, h = self.win_w, self.win_h
        if self.transparent:
            win.GetRGBACharPixelData(0, 0, w - 1, h - 1, 0, self._buffer, 0)
        else:
            win.GetPixelData(0, 0, w - 1, h - 1, 0, self._buffer, 0)
        shape = (h, w, self.channels)
        if self._buffer.GetNumberOfValues() != np.prod(shape):  # pragma: no cover
            raise RenderError(f"render window returned {self._buffer.GetNumberOfValues()} values, expected {shape}")
        if self.ss > 1:
            from PIL import Image

            # Flipped (OpenGL rows run bottom-up) and box-filtered in one C pass; RGBA is still premultiplied
            # here, which is the form to average.
            mode = "RGBA" if self.transparent else "RGB"
            pil = Image.frombuffer(mode, (w, h), vtk_to_numpy(self._buffer), "raw", mode, 0, -1)
            img = np.array(pil.reduce(self.ss))
        else:
            img = np.ascontiguousarray(vtk_to_numpy(self._buffer).reshape(shape)[::-1])  # rows run bottom-up
        if self.transparent:
            unpremultiply(img)
        return img

    def close(self) -> None:
        self.plotter.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def unpremultiply(img: np.ndarray) -> None:
    """(H, W, 4) uint8 RGBA, in place: premultiplied colour (what blending over a clear, alpha-0 background leaves
    in the framebuffer) → straight colour (what PNG and ProRes expect). Only partly covered pixels change."""
    a = img[..., 3]
    edge = (a > 0) & (a < 255)
    if not edge.any():
        return
    px = img[edge].astype(np.float32)
    px[:, :3] = np.clip(np.rint(px[:, :3] * 255.0 / px[:, 3:4]), 0, 255)
    img[edge] = px.astype(np.uint8)


def save_png(img: np.ndarray, path) -> None:
    """Write an (H, W, 3|4) uint8 image as PNG, atomically."""
    from PIL import Image

    from ..files import atomic_write

    atomic_write(path, lambda tmp: Image.fromarray(img).save(tmp, format="PNG", optimize=True))


__all__ = ["SurfaceRenderer", "clip_polyline", "clip_segment", "range_label", "render_window_info",
           "resolve_anti_aliasing", "save_png"]
