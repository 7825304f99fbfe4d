"""Off-screen rendering with pyvista: one Plotter per film, meshes built once and updated in place.

This is the only module that imports pyvista/VTK. It knows frames (values on a grid, a camera pose), not torch.
"""

from __future__ import annotations

import os


import numpy as np

from .errors import MissingDependency, RenderError
from .scene import LookSpec
from .timeline import FrameState


def _choose_window() -> None:
    """Without a display, go straight to EGL (or OSMesa) instead of letting VTK try X first and warn.

    VTK's wheel picks X → EGL → OSMesa at run time; an explicit VTK_DEFAULT_OPENGL_WINDOW always wins.
    """
    if os.environ.get("VTK_DEFAULT_OPENGL_WINDOW") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    import ctypes.util

    if ctypes.util.find_library("EGL"):
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkEGLRenderWindow"
    elif ctypes.util.find_library("OSMesa"):
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkOSOpenGLRenderWindow"


def _preload_bundled_llvm() -> None:
    """Load triton's bundled LLVM before Mesa's llvmpipe loads the system one.

    With torch's CUDA wheels installed, the first optimizer step imports triton; if Mesa's software renderer has
    already put its own LLVM into the process by then, the two clash and the process segfaults (seen when a batch
    renders one scene and then trains the next). Loading triton first is harmless to both.
    """
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        try:
            import triton  # noqa: F401
        except Exception:  # a broken triton only matters to torch.compile, never to us
            pass


def _pyvista():
    # Read at import by pyvista: make sure nothing tries to open a window.
    os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
    _choose_window()
    _preload_bundled_llvm()
    try:
        import pyvista as pv
    except ImportError as exc:  # pragma: no cover
        raise MissingDependency(f"pyvista is not importable ({exc}); pip install pyvista") from None
    pv.OFF_SCREEN = True
    return pv


def _fmt_loss(v: float) -> str:
    if not np.isfinite(v):
        return "diverged"
    return f"{v:.4g}"


DISPLAY_EXTENT = 2.0


class SurfaceRenderer:
    """Renders a loss surface over (alpha, beta) with contour lines, a minimiser marker and text.

    ``alphas`` (nx,), ``betas`` (ny,): the grid axes, shown as a square of side ``DISPLAY_EXTENT`` centred on the
    origin; heights are ``(value - vmin) / (vmax - vmin)`` times ``z_scale`` times that side, so the surface keeps
    its proportions whatever the ranges and the loss.
    """

    def __init__(self, alphas: np.ndarray, betas: np.ndarray, look: LookSpec, width: int, height: int,
                 z_scale: float, title: str = ""):
        pv = _pyvista()
        self.pv = pv
        self.look, self.width, self.height = look, int(width), int(height)
        self.alphas, self.betas = np.asarray(alphas, float), np.asarray(betas, float)
        # The grid is shown as a square of side DISPLAY_EXTENT whatever its ranges, like a plot whose two axes are
        # scaled independently: a PCA plane can be a hundred times longer than it is wide.
        self.extent = DISPLAY_EXTENT
        self.x = self.display_coords(self.alphas, 0)
        self.y = self.display_coords(self.betas, 1)
        self.z_height = z_scale * self.extent
        try:
            self.plotter = pv.Plotter(off_screen=True, window_size=(self.width, self.height),
                                      lighting="light kit")
        except Exception as exc:  # VTK raises plain RuntimeErrors when no context can be made
            raise MissingDependency(
                f"no off-screen OpenGL context ({exc}). On a headless Linux machine install Mesa's EGL "
                "(Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri) or OSMesa, or set "
                "VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow; 'llstudio doctor' reports what is in use."
            ) from None
        p = self.plotter
        p.ren_win.SetMultiSamples(4 if look.anti_aliasing == "msaa" else 0)
        p.set_background(look.background)

        X, Y = np.meshgrid(self.x, self.y, indexing="ij")
        self.grid = pv.StructuredGrid(X, Y, np.zeros_like(X))
        self.grid["values"] = np.zeros(X.size)
        # color_by = 'convexity' colours by the frame's own colour array (FrameState.colors), on a fixed 0..1 range.
        self.color_by = getattr(look, "color_by", "loss")
        self.grid["colors"] = np.zeros(X.size)
        self.surface_actor = p.add_mesh(
            self.grid, scalars="values" if self.color_by == "loss" else "colors",
            cmap=look.colormap if self.color_by == "loss" else look.convexity_colormap,
            clim=(0.0, 1.0), smooth_shading=look.smooth_shading,
            specular=look.specular, specular_power=30.0, show_scalar_bar=False, name="surface",
        )
        # A point without cells draws nothing but lets the actor exist before the first frame's lines.
        self.contours = pv.PolyData(np.zeros((1, 3)))
        self.contour_actor = None
        if look.contours > 0:
            self.contour_actor = p.add_mesh(self.contours, color=look.contour_color, line_width=1.2,
                                            opacity=0.55, name="contours", reset_camera=False)
        self.trail = pv.PolyData(np.zeros((1, 3)))
        self.trail_actor = None
        if look.trail:
            self.trail_actor = p.add_mesh(self.trail, color=look.trail_color, line_width=max(2.0, self.height / 360),
                                          name="trail", reset_camera=False)
        self.arrow = pv.PolyData(np.zeros((1, 3)))
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
            size = max(8, int(self.height / 42))
            margin = int(0.025 * self.height)
            if title:
                self.title_actor = p.add_text(title, position=(margin * 1.5, self.height - margin - 1.4 * size),
                                              font_size=size, color=look.text_color, name="title")
            self.info_actor = p.add_text(" ", position=(margin * 1.5, margin), font_size=int(size * 0.8),
                                         color=look.text_color, name="info")
        self._buffer = None

    def _update_arrow(self, state: FrameState, surface) -> None:
        if state.arrow is None:
            self.arrow.copy_from(self.pv.PolyData(np.zeros((1, 3))))
            return
        (a0, b0), (a1, b1) = state.arrow
        start = np.array([self.display_coords(a0, 0), self.display_coords(b0, 1)])
        end = np.array([self.display_coords(a1, 0), self.display_coords(b1, 1)])
        end = start + self.look.arrow_scale * (end - start)
        lift = 0.02 * self.extent
        p0 = np.array([*start, surface([start])[0] + lift])
        p1 = np.array([*end, surface([end])[0] + lift])
        length = float(np.linalg.norm(p1 - p0))
        if length < 1e-9:
            self.arrow.copy_from(self.pv.PolyData(np.zeros((1, 3))))
            return
        # Thickness in display units, not relative to the length: short updates stay visible as arrows.
        arrow = self.pv.Arrow(start=p0, direction=p1 - p0, scale=length, tip_length=min(0.35, 0.08 / length),
                              tip_radius=min(0.15, 0.025 / length), shaft_radius=min(0.05, 0.009 / length))
        self.arrow.copy_from(arrow)

    def display_coords(self, v, axis: int):
        """Grid coordinate (alpha or beta) → display coordinate in [-extent/2, extent/2]."""
        ax = self.alphas if axis == 0 else self.betas
        return (np.asarray(v, dtype=float) - ax[0]) / (ax[-1] - ax[0]) * self.extent - self.extent / 2

    def _heights(self, state: FrameState) -> np.ndarray:
        span = state.vmax - state.vmin
        unit = (state.values - state.vmin) / span if span > 0 else np.zeros_like(state.values)
        return unit

    def render(self, state: FrameState, pose) -> np.ndarray:
        """One frame as an (height, width, 3) uint8 array."""
        unit = self._heights(state)
        z = unit * self.z_height
        # StructuredGrid points are in Fortran order of the (nx, ny) arrays.
        self.grid.points[:, 2] = z.ravel(order="F")
        self.grid["values"] = unit.ravel(order="F")
        if self.color_by != "loss":
            colors = state.colors if state.colors is not None else np.full_like(unit, np.nan)
            self.grid["colors"] = np.clip(colors, 0.0, 1.0).ravel(order="F")
        if self.contour_actor is not None:
            levels = np.linspace(0.0, 1.0, self.look.contours + 2)[1:-1]
            lines = self.grid.contour(isosurfaces=levels, scalars="values")
            # Lift the lines a hair above the surface so they do not flicker in and out of it.
            if lines.n_points:
                lines.points[:, 2] += 0.002 * self.extent
            self.contours.copy_from(lines)
        if self.marker_actor is not None or self.trail_actor is not None or self.arrow_actor is not None:
            from scipy.interpolate import RegularGridInterpolator

            surface = RegularGridInterpolator((self.x, self.y), z, bounds_error=False, fill_value=None)
        if self.marker_actor is not None:
            mx, my = self.display_coords(state.marker[0], 0), self.display_coords(state.marker[1], 1)
            zc = surface([[mx, my]])[0]
            self.marker_actor.SetPosition(float(mx), float(my), float(zc) + 0.01 * self.extent)
        if self.trail_actor is not None:
            if len(state.trail) >= 2:
                # Drape the path over the surface, lifted a little so the surface does not swallow it.
                xy = np.column_stack([self.display_coords(state.trail[:, 0], 0), self.display_coords(state.trail[:, 1], 1)])
                pts = np.column_stack([xy, surface(xy) + 0.006 * self.extent])
                self.trail.copy_from(self.pv.lines_from_points(pts))
            else:
                self.trail.copy_from(self.pv.PolyData(np.zeros((1, 3))))
        if self.arrow_actor is not None:
            self._update_arrow(state, surface)
        if self.info_actor is not None:
            self.info_actor.SetInput(f"step {state.step:,.0f}    loss {_fmt_loss(state.center_loss)}")
        position, focal, up = pose
        cam = self.plotter.camera
        cam.position, cam.focal_point, cam.up = position, focal, up
        self.plotter.renderer.ResetCameraClippingRange()
        return self._grab()

    def _grab(self) -> np.ndarray:
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkCommonCore import vtkUnsignedCharArray

        win = self.plotter.ren_win
        win.Render()
        if self._buffer is None:
            self._buffer = vtkUnsignedCharArray()
        win.GetPixelData(0, 0, self.width - 1, self.height - 1, 0, self._buffer, 0)
        img = vtk_to_numpy(self._buffer).reshape(self.height, self.width, 3)
        if img.shape != (self.height, self.width, 3):  # pragma: no cover
            raise RenderError(f"render window returned {img.shape}, expected {(self.height, self.width, 3)}")
        return np.ascontiguousarray(img[::-1])  # OpenGL rows run bottom-up

    def close(self) -> None:
        self.plotter.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def render_window_info() -> dict[str, str]:
    """Which VTK render-window class is used off-screen, and the OpenGL renderer behind it (for doctor)."""
    pv = _pyvista()
    p = pv.Plotter(off_screen=True, window_size=(64, 64))
    try:
        p.add_mesh(pv.Sphere())
        p.ren_win.Render()
        caps = p.ren_win.ReportCapabilities() or ""
        info = {"window": p.ren_win.GetClassName()}
        for line in caps.splitlines():
            if ":" in line and line.split(":")[0].strip() in ("OpenGL vendor string", "OpenGL renderer string",
                                                             "OpenGL version string"):
                info[line.split(":")[0].strip()] = line.split(":", 1)[1].strip()
        return info
    finally:
        p.close()


def save_png(img: np.ndarray, path) -> None:
    """Write an (H, W, 3|4) uint8 image as PNG, atomically."""
    from PIL import Image

    from .files import atomic_write

    atomic_write(path, lambda tmp: Image.fromarray(img).save(tmp, format="PNG", optimize=True))


__all__ = ["SurfaceRenderer", "render_window_info", "save_png"]
