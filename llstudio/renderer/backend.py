"""The only module that imports pyvista or VTK: the off-screen window class is chosen before VTK loads; plotters
are opened, frames grabbed and meshes for export built here, and VTK's process-wide settings kept in check."""

from __future__ import annotations

import inspect
import os

import numpy as np
from PIL import Image

from ..errors import MissingDependency, RenderError
from .image import unpremultiply


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


def pyvista():
    """The pyvista module, imported off-screen (EGL or OSMesa without a display)."""
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


def render_window_info() -> dict[str, str]:
    """Which VTK render-window class is used off-screen, and the OpenGL renderer behind it (for doctor)."""
    pv = pyvista()
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


def open_plotter(width: int, height: int):
    """An off-screen pyvista Plotter of ``width`` x ``height`` window pixels and no lights (the look adds its own);
    MissingDependency (with what to install) when no OpenGL context can be made."""
    pv = pyvista()
    try:
        return pv.Plotter(off_screen=True, window_size=(width, height), lighting="none")
    except Exception as exc:  # VTK raises plain RuntimeErrors when no context can be made
        raise MissingDependency(
            f"no off-screen OpenGL context ({exc}). On a headless Linux machine install Mesa's EGL "
            "(Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri) or OSMesa, or set "
            "VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow; 'llstudio doctor' reports what is in use."
        ) from None


def empty_polydata():
    """A one-point PolyData with no cells: draws nothing (pyvista would give bare points a vertex each, visible as
    a dot at the origin of a flat contour map). Lets an actor exist before its first frame's data."""
    pd = pyvista().PolyData()
    pd.points = np.zeros((1, 3))
    return pd


# How many live renderers push their polygons back (polygon offset). VTK keeps the switch in one process-wide
# (static) setting of vtkMapper, not per mapper: left on by one film, it would still move every later film's
# depths (a batch render, a test after a contour map), hiding their critical points.
_polygon_offset_users = 0


def hold_polygon_offset(mapper) -> None:
    """Turn VTK's coincident-topology resolution to polygon offset for as long as a renderer that needs it lives
    (release with :func:`release_polygon_offset`)."""
    global _polygon_offset_users
    _polygon_offset_users += 1
    mapper.SetResolveCoincidentTopologyToPolygonOffset()


def release_polygon_offset(mapper) -> None:
    """Undo one :func:`hold_polygon_offset`; the last one turns the process-wide setting back off (VTK's default)."""
    global _polygon_offset_users
    _polygon_offset_users = max(0, _polygon_offset_users - 1)
    if _polygon_offset_users == 0:
        mapper.SetResolveCoincidentTopologyToOff()


def top_layer(plotter):
    """A second renderer over the plotter's (window layer 1, the same camera, a depth buffer of its own): what it
    draws is never hidden by the scene. Its actors are added with :func:`add_on_top`."""
    from vtkmodules.vtkRenderingCore import vtkRenderer  # after pyvista(), which chose the window class

    top = vtkRenderer()
    top.SetLayer(1)
    top.SetActiveCamera(plotter.renderer.GetActiveCamera())
    top.InteractiveOff()
    top.AutomaticLightCreationOff()
    win = plotter.ren_win
    win.SetNumberOfLayers(max(2, win.GetNumberOfLayers()))
    win.AddRenderer(top)
    return top


def add_on_top(plotter, top, mesh, **kwargs):
    """An unlit actor of ``mesh`` (``plotter.add_mesh`` keywords) drawn by the ``top`` layer instead of the scene."""
    actor = plotter.add_mesh(mesh, reset_camera=False, lighting=False, **kwargs)
    plotter.renderer.RemoveViewProp(actor)
    top.AddViewProp(actor)
    return actor


class FrameGrabber:
    """Reads a render window's pixels into a reused VTK array: (height, width, 3) uint8 RGB, or RGBA with straight
    alpha, top row first; with ``ss`` > 1 the window is ``ss`` times the output and each ss x ss block is
    averaged (a box filter)."""

    def __init__(self, ren_win, win_w: int, win_h: int, transparent: bool, ss: int):
        # VTK is imported here, not at the module top: pyvista() must set the window class before VTK loads.
        from vtkmodules.vtkCommonCore import vtkUnsignedCharArray

        self.win, self.w, self.h, self.transparent, self.ss = ren_win, win_w, win_h, transparent, ss
        self.channels = 4 if transparent else 3
        self._buffer = vtkUnsignedCharArray()

    def grab(self) -> np.ndarray:
        """Render the window and return its frame."""
        from vtkmodules.util.numpy_support import vtk_to_numpy  # after pyvista(), as above

        win, buf, w, h = self.win, self._buffer, self.w, self.h
        win.Render()
        if self.transparent:
            win.GetRGBACharPixelData(0, 0, w - 1, h - 1, 0, buf, 0)
        else:
            win.GetPixelData(0, 0, w - 1, h - 1, 0, buf, 0)
        shape = (h, w, self.channels)
        if buf.GetNumberOfValues() != np.prod(shape):  # pragma: no cover
            raise RenderError(f"render window returned {buf.GetNumberOfValues()} values, expected {shape}")
        if self.ss > 1:
            # Flipped (OpenGL rows run bottom-up) and box-filtered in one C pass; RGBA is still premultiplied
            # here, which is the form to average.
            mode = "RGBA" if self.transparent else "RGB"
            pil = Image.frombuffer(mode, (w, h), vtk_to_numpy(buf), "raw", mode, 0, -1)
            img = np.array(pil.reduce(self.ss))
        else:
            img = np.ascontiguousarray(vtk_to_numpy(buf).reshape(shape)[::-1])  # rows run bottom-up
        if self.transparent:
            unpremultiply(img)
        return img


# ------------------------------------------------------------------------------------------- export meshes


def structured_grid(alphas: np.ndarray, betas: np.ndarray, z: np.ndarray, scale: float = 1.0):
    """A pyvista StructuredGrid over (alphas, betas) times ``scale`` (a step's zoom) with heights ``z`` (nx, ny).
    Its points are in Fortran order of the (nx, ny) arrays, so point arrays must be ``a.ravel(order="F")``."""
    pv = pyvista()
    X, Y = np.meshgrid(np.asarray(alphas, float) * scale, np.asarray(betas, float) * scale, indexing="ij")
    return pv.StructuredGrid(X, Y, np.asarray(z, float))


def triangulated_surface(grid):
    """The outer surface of a structured grid as triangles, point arrays carried along (for a PLY mesh)."""
    pv = pyvista()
    # Ask pyvista ≥ 0.47 for its recommended surface algorithm (silences a FutureWarning); older ones have one.
    kwargs = {"algorithm": None} if "algorithm" in inspect.signature(pv.StructuredGrid.extract_surface).parameters \
        else {}
    return grid.extract_surface(pass_pointid=False, pass_cellid=False, **kwargs).triangulate()
