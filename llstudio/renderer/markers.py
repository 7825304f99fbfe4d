"""Spheres on the surface: the minimiser marker (the current weights) and the frame's critical points."""

from __future__ import annotations

import numpy as np

from ..config.colors import rgb
from ..config.scene import LookSpec
from ..film.timeline import FrameState
from .backend import add_on_top, empty_polydata, pyvista
from .display import DisplaySquare

CRITICAL_COLORS = {"minimum": "#2f7bff", "maximum": "#ff9f1c", "saddle": "#ffffff"}


# A marker behind a fold of the surface shows through as a faint, flat disc of its colour (drawn over everything).
GHOST_OPACITY = 0.4


def add_marker(plotter, radius: float, resolution: int, color: str, name: str, top=None):
    """A marker sphere actor of ``radius`` (display units) in ``color``; with a ``top`` layer (backend.top_layer),
    (actor, ghost): its ghost drawn over the scene."""
    sphere = pyvista().Sphere(radius=radius, theta_resolution=resolution, phi_resolution=resolution)
    actor = plotter.add_mesh(sphere, color=color, smooth_shading=True, specular=0.6, name=name, reset_camera=False)
    if top is None:
        return actor
    return actor, add_on_top(plotter, top, sphere, color=color, opacity=GHOST_OPACITY, name=f"{name}_ghost")


def place_marker(square: DisplaySquare, actor, ab, scale: float, surface) -> None:
    """Put a marker sphere (an actor, or several: the marker and its ghost) on the surface (``surface``: display
    (x, y) → height) at (alpha, beta) ``ab``; hidden while it is outside the square."""
    actors = actor if isinstance(actor, tuple) else (actor,)
    xy = square.xy(ab, scale)
    shown = bool(square.inside(xy)[0])
    for a in actors:
        a.SetVisibility(shown)
    if shown:
        mx, my = xy[0]
        for a in actors:
            a.SetPosition(float(mx), float(my), float(surface(xy)[0]) + 0.01 * square.extent)


# The glow under the marker: a disc of its colour draped on the surface, this many marker radii across, fading
# from this opacity at its centre to nothing at its rim. It ties the sphere to the surface (a sphere floating over
# a smooth surface reads as being anywhere along the line of sight).
GLOW_RADII = 3.2
GLOW_OPACITY = 0.7


def glow_disc(radius: float, color) -> tuple:
    """(PolyData, (K, 2) its points' x, y about the centre): a disc of ``radius`` with RGBA colours fading out."""
    pv = pyvista()
    disc = pv.Disc(center=(0.0, 0.0, 0.0), inner=0.0, outer=radius, r_res=8, c_res=36)
    xy = np.asarray(disc.points)[:, :2].copy()
    r = np.linalg.norm(xy, axis=1) / radius
    rgba = np.empty((len(xy), 4), dtype=np.uint8)
    rgba[:, :3] = color
    rgba[:, 3] = np.round(255 * GLOW_OPACITY * np.clip(1.0 - r, 0.0, 1.0) ** 2)
    disc["glow"] = rgba
    return disc, xy


class MarkerLayer:
    """The minimiser marker, in ``look.marker_color``, with a glow draped on the surface under it; with a ``top``
    layer, and its ghost (``ghost``)."""

    def __init__(self, plotter, square: DisplaySquare, look: LookSpec, top=None, glow: bool = True):
        self.square = square
        radius = 0.022 * square.extent
        made = add_marker(plotter, radius, 24, look.marker_color, "marker", top)
        self.actor, self.ghost = made if isinstance(made, tuple) else (made, None)
        self.glow = self.glow_actor = None
        if glow:
            self.glow, self._glow_xy = glow_disc(GLOW_RADII * radius, rgb(look.marker_color))
            self.glow_actor = plotter.add_mesh(self.glow, scalars="glow", rgba=True, lighting=False,
                                               show_scalar_bar=False, name="marker_glow", reset_camera=False)

    def update(self, state: FrameState, surface) -> None:
        """At the frame's marker position on the surface."""
        place_marker(self.square, (self.actor, self.ghost) if self.ghost else self.actor, state.marker,
                     state.scale, surface)
        if self.glow is not None:
            self._drape(state, surface)

    def _drape(self, state: FrameState, surface) -> None:
        """The glow's points moved under the marker and lifted just above the surface."""
        shown = bool(self.actor.GetVisibility())
        self.glow_actor.SetVisibility(shown)
        if shown:
            centre = self.square.xy(state.marker, state.scale)[0]
            xy = self._glow_xy + centre
            z = surface(xy) + 0.004 * self.square.extent
            self.glow.points = np.column_stack([xy, z])


class CriticalLayer:
    """Small spheres on the surface at the frame's critical points, one point cloud per kind (CRITICAL_COLORS);
    ``height``: the output's, which sizes the points; ``ss``: window pixels per output pixel. With a ``top`` layer,
    points behind a fold of the surface show through as faint ghosts."""

    def __init__(self, plotter, square: DisplaySquare, height: int, ss: int, top=None):
        self.square = square
        self.clouds = {}
        size = max(5.0, height / 90) * ss
        for kind, color in CRITICAL_COLORS.items():
            cloud = empty_polydata()
            plotter.add_mesh(cloud, color=color, render_points_as_spheres=True, point_size=size,
                             name=f"critical_{kind}", reset_camera=False)
            if top is not None:
                add_on_top(plotter, top, cloud, color=color, opacity=GHOST_OPACITY, point_size=size,
                           render_points_as_spheres=True, name=f"critical_{kind}_ghost")
            self.clouds[kind] = cloud

    def update(self, state: FrameState, surface) -> None:
        """The critical points of ``state.critical`` inside the square, on the surface."""
        for kind, cloud in self.clouds.items():
            xy = self.square.xy(np.array([[p.alpha, p.beta] for p in state.critical if p.kind == kind]),
                                state.scale)
            xy = xy[self.square.inside(xy)]
            if not len(xy):
                cloud.copy_from(empty_polydata())
                continue
            cloud.copy_from(pyvista().PolyData(np.column_stack([xy, surface(xy) + 0.012 * self.square.extent])))
