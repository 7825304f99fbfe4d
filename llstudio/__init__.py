"""llstudio: cinematic loss-landscape films from neural-network training runs.

Notebook use::

    import llstudio
    scene = llstudio.load_scene("scenes/digits_ride.toml")
    cap = llstudio.capture(scene)          # trains, captures (cached), returns the numbers
    cap.loss.shape                         # (steps, nx, ny), 'ij' indexing
    llstudio.render(scene)                 # → renders/digits_ride.mp4

    rec = llstudio.Recorder("runs/my_run", model, every=10)   # in your own training loop: see Recorder

Importing this package imports nothing heavy; torch and pyvista load when first needed.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import LLStudioError, SceneError  # noqa: E402
from .config.scene import Scene, load_scene  # noqa: E402


def capture(scene, device=None, use_cache: bool = True, progress: str = "none"):
    """Train and capture a scene (a :class:`Scene` or a path); returns a :class:`llstudio.landscape.result.Capture`."""
    from .pipeline import capture_scene
    from .progress import Progress

    if not isinstance(scene, Scene):
        scene = load_scene(scene)
    return capture_scene(scene, device=device, use_cache=use_cache, progress=Progress(progress))


def render(scene, output=None, quality=None, frames=None, device=None, use_cache: bool = True,
           progress: str = "auto", format=None):
    """Capture (cached) and render a scene to a film; returns the film's path. ``format`` (mp4, webm, gif, png,
    prores) overrides the scene's output.format."""
    from .pipeline import capture_scene, check_output, render_film
    from .progress import Progress

    if not isinstance(scene, Scene):
        scene = load_scene(scene)
    check_output(scene, output, format)  # a missing encoder is reported before any training
    prog = Progress(progress)
    cap = capture_scene(scene, device=device, use_cache=use_cache, progress=prog)
    return render_film(cap, output=output, quality=quality, frames=frames, progress=prog, format=format)


def __getattr__(name: str):
    # llstudio.Recorder imports torch: only when a training script asks for it, so that the package stays light.
    if name == "Recorder":
        from .train.recorder import Recorder

        return Recorder
    raise AttributeError(f"module 'llstudio' has no attribute {name!r}")


__all__ = ["Scene", "load_scene", "capture", "render", "Recorder", "LLStudioError", "SceneError", "__version__"]
