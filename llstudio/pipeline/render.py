"""The render stage's wiring: a film from a capture, checked output, frames drawn off-screen and encoded, the
sidecar beside the film; stills and contact sheets."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .. import __version__
from ..config.presets import FORMATS, format_problem
from ..config.checks import format_problems
from ..config.scene import TRANSPARENT, Scene
from ..errors import SceneError, Terminated, UsageError
from ..files import FILE, RENAMED_FOLDER, atomic_write, require_writable
from ..film.film import Film, OutputSettings, output_settings, parse_frames, scene_frames, scene_still
from ..film.framing import FreeRect, Room
from ..film.panels import PanelFilm
from ..landscape.result import Capture
from ..output.encode import FilmWriter, output_frames, output_size, require_format
from ..progress import Progress
from ..renderer.films import open_renderer
from ..renderer.layout import PanelLayout, film_layouts
from ..renderer.overlay import contact_sheet, sheet_shape
from ..renderer.plotter import save_png


def make_film(capture, settings: OutputSettings):
    """The film of a capture, drawn by the off-screen renderer: a :class:`~llstudio.film.film.Film`, or a
    :class:`~llstudio.film.panels.PanelFilm` for a scene with panels. Each panel's camera is fitted into the
    rectangle its overlays leave free (the renderer's layout at this size)."""
    rooms = [room_of(layout) for layout in film_layouts(capture.scene, settings.width, settings.height)]
    if capture.scene.panels:
        return PanelFilm(capture, settings, open_renderer=open_renderer, rooms=rooms)
    return Film(capture, settings, open_renderer=open_renderer, room=rooms[0])


def room_of(layout: PanelLayout) -> Optional[Room]:
    """A layout's room for the surface as the framing sees it (fractions of the panel, y up): its free rectangle,
    the panel less its margins, and its boxes grown by the margin; None (the framing's default bands) when the
    panel is too small to leave a free rectangle."""
    w, h, m = layout.width, layout.height, layout.margin

    def rect(x0, y0, x1, y1) -> FreeRect:  # pixels, y down → fractions, y up
        return FreeRect(x0 / w, 1.0 - y1 / h, x1 / w, 1.0 - y0 / h)
    free = rect(layout.free.x0, layout.free.y0, layout.free.x1, layout.free.y1)
    if min(free.width, free.height) < 0.1:
        return None
    boxes = tuple(rect(b.x0 - m, b.y0 - m, b.x1 + m, b.y1 + m) for b in layout.boxes.values())
    return Room(free, rect(m, m, w - m, h - m), boxes)


def default_output(scene: Scene, fmt: Optional[str] = None) -> Path:
    """The scene's output.path or renders/<name>, with the suffix of ``fmt`` (default: the scene's format)."""
    suffix = FORMATS[fmt or scene.output.format].suffix
    if scene.output.path:
        return Path(scene.output.path).with_suffix(suffix)
    return Path("renders") / f"{scene.name}{suffix}"


def film_format(scene: Scene, output: Optional[Path] = None, fmt: Optional[str] = None) -> str:
    """The output format: ``fmt`` (--format), else the one an explicit output's suffix names (``-o f.webm``),
    else the scene's output.format. Checked against the output's suffix and against a transparent background."""
    if fmt is None and output is not None:
        fmt = {f.suffix: k for k, f in FORMATS.items() if f.suffix}.get(Path(output).suffix)
    fmt = fmt or scene.output.format
    problem = format_problem(fmt, path=output)
    if problem:
        raise UsageError(problem)
    problems = format_problems(scene, fmt)  # the format the film is written in, not output.format
    if problems:
        raise SceneError(scene.source or "<scene>", problems)
    return fmt


def check_output(scene: Scene, output: Optional[Path] = None, fmt: Optional[str] = None) -> str:
    """Everything about the film's output that can fail, checked before any training: the format, its encoder and
    the film's path (a file, or a folder for a PNG sequence, that can be created; nothing is created yet). Returns
    the format."""
    fmt = film_format(scene, output, fmt)
    require_format(fmt, alpha=scene.look.background == TRANSPARENT)
    path = Path(output) if output is not None else default_output(scene, fmt)
    require_writable(path, RENAMED_FOLDER if fmt == "png" else FILE, "the film")
    return fmt


def check_render(scene: Scene, output: Optional[Path] = None, fmt: Optional[str] = None,
                 frames: Optional[str] = None, quality: Optional[str] = None) -> str:
    """``check_output`` and the frame selection (``--frames A:B``, against the film's length, which the scene
    alone determines), before any training. Returns the format."""
    fmt = check_output(scene, output, fmt)
    parse_frames(frames, scene_frames(scene, output_settings(scene, quality).fps))
    return fmt


@contextlib.contextmanager
def _deferred_interrupt():
    """Turn Ctrl-C and SIGTERM into a flag checked between frames: VTK swallows a KeyboardInterrupt raised inside
    its callbacks and would go on to publish the film. Yields a function that gives the interruption to raise
    (KeyboardInterrupt, or Terminated for SIGTERM), or None."""
    hit: list = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def handler(signum, frame):
        hit.append(Terminated() if signum == signal.SIGTERM else KeyboardInterrupt())

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: hit[0] if hit else None
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


@dataclass(frozen=True)
class RenderPlan:
    """What a render of a capture makes, decided before any frame is drawn: the film (timeline, camera), its
    output settings, format, frame selection and path."""

    film: Film
    settings: OutputSettings
    fmt: str
    selected: range
    output: Path
    alpha: bool


def plan_render(capture: Capture, output: Optional[Path] = None, quality: Optional[str] = None,
                frames: Optional[str] = None, format: Optional[str] = None) -> RenderPlan:
    """The checked plan of a render: format and encoder, output settings, frames (``A:B``), the film's path."""
    scene = capture.scene
    fmt = check_output(scene, output, format)
    settings = output_settings(scene, quality)
    film = make_film(capture, settings)
    selected = parse_frames(frames, film.n_frames)
    output = Path(output) if output is not None else default_output(scene, fmt)
    return RenderPlan(film, settings, fmt, selected, output, scene.look.background == TRANSPARENT)


def encode_frames(plan: RenderPlan, output: Path, selected: range, progress: Progress) -> Path:
    """Draw the frames ``selected`` of ``plan``'s film and encode them into ``output`` (which appears only when
    complete); no sidecar. A segment of a split render is one call (see ``llstudio.jobs.split``)."""
    scene, settings = plan.film.capture.scene, plan.settings
    # Deferred from before the renderer opens (VTK's set-up runs Python callbacks too) until the film is published:
    # checked before every frame and once more before the film is finished, so an interruption never publishes it.
    with _deferred_interrupt() as interrupted:
        with plan.film.renderer() as renderer, \
                FilmWriter(output, settings.width, settings.height, settings.fps, scene.output.crf,
                           scene.output.encoder_preset, format=plan.fmt, alpha=plan.alpha,
                           keyint=len(selected), repeats=_repeats(plan.film, selected)) as writer, \
                progress.stage("render", len(selected), "frames") as advance:
            for i in selected:
                _stop_if(interrupted())
                writer.write(plan.film.frame(renderer, i))
                advance(1)
            _stop_if(interrupted())
        _stop_if(interrupted())  # during the encoder's finish: the film is whole, the command stops anyway
    return Path(output)


def _repeats(film, selected: range) -> np.ndarray:
    """Which of the ``selected`` frames repeat the frame written before them (never the first one written)."""
    out = film.repeats()[list(selected)]
    if len(out):
        out[0] = False
    if selected.step != 1:
        out[:] = False
    return out


def _stop_if(interruption: Optional[BaseException]) -> None:
    if interruption is not None:
        raise interruption


def write_sidecar(capture: Capture, plan: RenderPlan) -> Path:
    """NAME.json beside the film: the resolved scene, the capture key and the output settings."""
    scene, settings, fmt, selected, output = capture.scene, plan.settings, plan.fmt, plan.selected, plan.output
    n_file, fps_file = output_frames(fmt, len(selected), settings.fps)
    sidecar = {
        "film": output.name, "scene": scene.source, "resolved_scene": scene.resolved_dump(),
        "capture_key": capture.key, "capture_path": str(capture.path), "frames": [selected.start, selected.stop],
        "n_frames_total": plan.film.n_frames, "width": settings.width, "height": settings.height,
        "fps": settings.fps, "format": fmt, "alpha": plan.alpha,
        "file": {"frames": n_file, "fps": fps_file, "size": list(output_size(fmt, settings.width, settings.height))},
        "llstudio": __version__,
    }
    text = json.dumps(sidecar, indent=2)
    path = output.with_suffix(".json")
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def render_film(capture: Capture, output: Optional[Path] = None, quality: Optional[str] = None,
                frames: Optional[str] = None, progress: Optional[Progress] = None,
                format: Optional[str] = None) -> Path:
    """Render and encode the film; returns its path (a directory for a PNG sequence). The film appears only when
    complete, with NAME.json beside it: the resolved scene, the capture key and the output settings."""
    plan = plan_render(capture, output, quality, frames, format)
    encode_frames(plan, plan.output, plan.selected, progress or Progress("none"))
    write_sidecar(capture, plan)
    return plan.output


def still_index(scene: Scene, index: Optional[int] = None, quality: Optional[str] = None) -> int:
    """``--frame index`` of the scene's film (negative counts from the end) as a frame number, checked against the
    film's length, which the scene alone determines: before any training. None: the scene's own still
    (output.still; by default the arrival at the last captured step)."""
    fps = output_settings(scene, quality).fps
    if index is None:
        return scene_still(scene, fps)
    n = scene_frames(scene, fps)
    if not -n <= index < n:
        raise UsageError(f"--frame {index}: the film has {n} frames (0 … {n - 1})")
    return index % n


def render_still(capture: Capture, index: Optional[int] = None, output: Optional[Path] = None,
                 quality: Optional[str] = None) -> Path:
    """Render one frame of the film to a PNG: frame ``index`` (see :func:`still_index`), by default the scene's
    still."""
    scene = capture.scene
    film = make_film(capture, output_settings(scene, quality))
    index = still_index(scene, index, quality)
    output = Path(output) if output is not None else Path("renders") / f"{scene.name}_{index:05d}.png"
    with film.renderer() as renderer:
        img = film.frame(renderer, index)
    save_png(img, output)
    return output


def contact_frames(n_frames: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over a film of ``n_frames`` frames, first and last included (fewer
    when the film is shorter)."""
    if count < 1:
        raise UsageError(f"--contact-sheet {count}: needs at least one still")
    return sorted(set(int(round(f)) for f in np.linspace(0, n_frames - 1, count)))


def story_label(sc, frame: int) -> str:
    """What a contact sheet says of ``frame`` beside its number: 'card', or the output.still that shows it."""
    first, last = sc.body_start, sc.body_end - 1
    if not first <= frame <= last:
        return "card"
    return f"still {(frame - first) / max(last - first, 1):.2f}"


def render_contact_sheet(capture: Capture, count: int, output: Optional[Path] = None,
                         quality: Optional[str] = None) -> Path:
    """One PNG grid of ``count`` stills spread over the film, each labelled with its frame number, its time and
    the output.still that shows it ('card' over a title or end card): a preview of the camera path and the look. The sheet is about the size of one frame of the film: every still is
    rendered at a fraction of the output size (and overlays scale with it)."""
    scene = capture.scene
    settings = output_settings(scene, quality)
    frames = contact_frames(make_film(capture, settings).n_frames, count)
    rows, cols = sheet_shape(len(frames), settings.width / settings.height)
    scale = max(rows, cols)
    w = max(64, settings.width // scale // 2 * 2)
    h = max(36, settings.height // scale // 2 * 2)
    film = make_film(capture, OutputSettings(w, h, settings.fps))
    sc = (film.films[0] if capture.scene.panels else film).timeline.schedule
    images, labels = [], []
    with film.renderer() as renderer:
        for f in frames:
            images.append(film.frame(renderer, f))
            labels.append(f"#{f}  {f / settings.fps:.2f} s  {story_label(sc, f)}")
    output = Path(output) if output is not None else Path("renders") / f"{scene.name}_contact.png"
    save_png(contact_sheet(images, labels, cols=cols), output)
    return output
