"""The loss surface: its mesh (or a 1D capture's curve and curtain), material, lighting and colours."""

from __future__ import annotations

from typing import Optional

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap

from ..config.colors import luminance, relative_luminance
from ..config.scene import TRANSPARENT, LookSpec
from ..film.timeline import FrameState
from .backend import empty_polydata, hold_polygon_offset, pyvista, release_polygon_offset
from .display import DisplaySquare
from .occlusion import OcclusionShading


# Height of a unit value on the flat contour map, in display units (the camera looks straight down from 10 units).
FLAT_RELIEF = 1e-3


# The light rigs, as camera lights (they keep their place in the picture whatever the camera does): position in
# the camera's frame (x to the right, y up, z towards the viewer), colour, intensity. A warm key light high on the
# left, a cool fill low on the right and a rim light from behind and above that picks out ridges against the
# background. No head light: a light at the camera puts its highlight on every wall that faces the viewer, the
# vertical smear down the far wall of a basin.
Rig = tuple[tuple[tuple[float, float, float], tuple[float, float, float], float], ...]
RIGS: dict[str, Rig] = {
    "studio": (((-1.1, 1.3, 0.9), (1.0, 0.95, 0.88), 0.95),
               ((1.3, -0.2, 0.8), (0.70, 0.80, 1.0), 0.38),
               ((0.5, 1.6, -1.3), (0.92, 0.95, 1.0), 0.60)),
    "soft": (((-0.9, 1.1, 1.1), (1.0, 0.97, 0.92), 0.70),
             ((1.2, 0.0, 1.0), (0.80, 0.86, 1.0), 0.50),
             ((0.4, 1.5, -1.2), (1.0, 1.0, 1.0), 0.35)),
    # A low key light raking across the surface from one side: every ridge has a lit face and a shadow side; a
    # faint cool fill keeps the far side from going black, a strong rim outlines the silhouette.
    "dramatic": (((-1.6, 0.35, 0.5), (1.0, 0.93, 0.84), 1.25),
                 ((1.3, 0.2, 0.9), (0.70, 0.80, 1.0), 0.16),
                 ((0.2, 1.2, -1.5), (0.95, 0.97, 1.0), 0.75)),
}


def material(look: LookSpec) -> dict:
    """add_mesh keywords of the surface's material for the look's lighting preset and PBR settings: a glossy coat
    (tight highlights, a little ambient so the shadow side keeps its colour)."""
    if look.lighting == "flat":
        # Unlit: the colours are exactly the colormap's, as on a printed contour map.
        return dict(ambient=1.0, diffuse=0.0, specular=0.0)
    if look.pbr:
        return dict(pbr=True, metallic=look.metallic, roughness=look.roughness)
    kw = dict(ambient=0.16, diffuse=0.85, specular=look.specular, specular_power=90.0)
    if look.lighting == "soft":
        kw.update(ambient=0.26, diffuse=0.8, specular=0.6 * look.specular, specular_power=20.0)
    elif look.lighting == "dramatic":
        kw.update(ambient=0.06, diffuse=1.0, specular=min(1.0, look.specular + 0.2), specular_power=64.0)
    return kw


def apply_lighting(plotter, preset: str) -> None:
    """The preset's rig of camera lights (:data:`RIGS`); 'flat' has none."""
    plotter.remove_all_lights()
    pv = pyvista()
    for position, color, intensity in RIGS.get(preset, ()):
        plotter.add_light(pv.Light(position=position, focal_point=(0.0, 0.0, 0.0), color=color,
                                   intensity=intensity, light_type="camera light"))


def legible_colormap(name: str, background: Optional[str], contrast: float = 2.0):
    """Colormap ``name`` cut to the part that stands out against ``background`` (WCAG contrast ratio at least
    ``contrast``): magma's black end on a dark background would hide a 1D curve's low end. The whole colormap
    when nothing need be cut or the background is transparent."""
    cmap = matplotlib.colormaps[name]
    if background is None or background == TRANSPARENT:
        return cmap
    t = np.linspace(0.0, 1.0, 256)
    fg, bg = relative_luminance(cmap(t)[:, :3]), luminance(background)
    ok = (np.maximum(fg, bg) + 0.05) / (np.minimum(fg, bg) + 0.05) >= contrast
    if ok.all() or not ok.any():
        return cmap
    lo, hi = t[ok][0], t[ok][-1]
    return ListedColormap(cmap(np.linspace(lo, hi, 256)), name=f"{name}_legible")


def unit_heights(state: FrameState) -> np.ndarray:
    """The frame's values normalised to [0, 1] over its (vmin, vmax): what sets heights and colours. Clipped there:
    an eased range (scaling.range = 'eased') can be narrower than a frame's values, and the surface must stay in
    the box the camera frames."""
    span = state.vmax - state.vmin
    return np.clip((state.values - state.vmin) / span, 0.0, 1.0) if span > 0 else np.zeros_like(state.values)


class SurfaceLayer:
    """The surface mesh (a StructuredGrid whose points move in place), its wireframe, and for a 1D capture the
    curve over alpha (a tube) above a translucent 'curtain' down to the floor. ``flat``: the contour view's flat
    map; ``z_height``: the display height of a unit value; ``ss``: window pixels per output pixel (line widths)."""

    def __init__(self, plotter, square: DisplaySquare, look: LookSpec, flat: bool, z_height: float, ss: int):
        self.square, self.look, self.flat, self.z_height = square, look, flat, z_height
        # The flat map keeps a relief too thin to see from above: the contour shader reads values off heights.
        self.relief = FLAT_RELIEF if flat else z_height
        one_d = square.one_d
        mat = material(look.model_copy(update={"lighting": "flat"}) if flat else look)
        X, Y = np.meshgrid(square.x, square.y, indexing="ij")
        if one_d:
            # The curve's 'curtain': a strip from the floor up to the curve, so it reads as a filled chart.
            X, Y = np.repeat(square.x[:, None], 2, axis=1), np.zeros((len(square.x), 2))
        pv = pyvista()
        self.grid = pv.StructuredGrid(X, Y, np.zeros_like(X))
        self.grid["values"] = np.zeros(X.size)
        # In the contour view, as many colour bands as contour intervals: filled contours.
        bands = dict(n_colors=look.contours + 1) if flat and look.contours > 0 else {}
        # color_by = 'convexity' colours by the frame's own colour array (FrameState.colors), on a fixed 0..1 range.
        self.by_loss = look.color_by == "loss"
        self.grid["colors"] = np.zeros(self.grid.n_points)
        self.actor = plotter.add_mesh(
            self.grid, scalars="values" if self.by_loss else "colors",
            cmap=look.colormap if self.by_loss else look.convexity_colormap,
            clim=(0.0, 1.0), smooth_shading=look.smooth_shading,
            show_scalar_bar=False, name="surface", opacity=0.45 if one_d else 1.0, **mat, **bands,
        )
        self.curve = self.curve_actor = None
        if one_d:
            self.curve = empty_polydata()
            self.curve["values"] = np.zeros(1)
            # The curve keeps to the colours that stand out against the background (its low end is the point).
            self.curve_actor = plotter.add_mesh(self.curve, scalars="values", clim=(0.0, 1.0),
                                                cmap=legible_colormap(look.colormap, look.background),
                                                smooth_shading=True, show_scalar_bar=False, name="curve",
                                                reset_camera=False, **material(look))
        # Basins shaded darker than ridges (a lit, 3D surface only).
        self.occlusion = (OcclusionShading(plotter, self.actor, self.grid, square.extent, look.occlusion)
                          if look.occlusion > 0 and not (flat or one_d or look.lighting == "flat") else None)
        self.offset = look.wireframe or flat
        if self.offset:
            # Push the surface's polygons back a little in depth so lines lying on it win the depth test instead
            # of stippling in and out of it.
            hold_polygon_offset(self.actor.mapper)
            self.actor.mapper.SetRelativeCoincidentTopologyPolygonOffsetParameters(2.0, 2.0)
        self.wire_actor = None
        if look.wireframe and not one_d:
            # Same dataset as the surface: its points move with it at no cost.
            self.wire_actor = plotter.add_mesh(self.grid, style="wireframe", color=look.wireframe_color,
                                               opacity=0.28, line_width=1.0 * ss, name="wireframe",
                                               reset_camera=False, lighting=False)

    def close(self) -> None:
        """Give back the process-wide polygon offset this surface holds (see backend.hold_polygon_offset)."""
        if self.offset:
            self.offset = False
            release_polygon_offset(self.actor.mapper)

    def update(self, state: FrameState) -> np.ndarray:
        """Move the surface to the frame's values; returns its heights z (nx, ny) in display units (a relief of
        at most FLAT_RELIEF on the flat map)."""
        unit = unit_heights(state)
        z = unit * self.relief
        if self.square.one_d:
            x = self.square.x
            # The curtain: floor (j = 0) and curve (j = 1), both coloured by the value.
            self.grid.points[:, 2] = np.column_stack([np.zeros(len(z)), z[:, 0]]).ravel(order="F")
            self.grid["values"] = np.repeat(unit[:, :1], 2, axis=1).ravel(order="F")
            line = pyvista().lines_from_points(np.column_stack([x, np.zeros(len(x)), z[:, 0]]))
            line["values"] = unit[:, 0]
            self.curve.copy_from(line.tube(radius=0.012 * self.square.extent, n_sides=12))
        else:
            # StructuredGrid points are in Fortran order of the (nx, ny) arrays.
            self.grid.points[:, 2] = z.ravel(order="F")
            self.grid["values"] = unit.ravel(order="F")
            if self.occlusion is not None:
                self.occlusion.update(z)
        if not self.by_loss:
            colors = state.colors if state.colors is not None else np.full_like(unit, np.nan)
            colors = np.clip(colors, 0.0, 1.0)
            if self.square.one_d:
                colors = np.repeat(colors[:, :1], 2, axis=1)
            self.grid["colors"] = colors.ravel(order="F")
        return z
