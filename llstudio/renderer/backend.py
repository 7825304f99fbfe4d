"""The only module that imports pyvista or VTK: the off-screen window class is chosen before VTK loads."""

from __future__ import annotations

import os

from ..errors import MissingDependency


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
