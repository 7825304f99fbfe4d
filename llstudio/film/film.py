"""One capture as a film: its timeline (one surface per video frame) and camera path (one pose per frame).

The film knows nothing of pixels: ``view(i)`` is what frame ``i`` shows and from where; the renderer a film is
given (``open_renderer``, wired by the pipeline) turns that into an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ..config.presets import QUALITIES
from ..config.scene import CameraKey, CameraSpec, Scene
from ..errors import UsageError
from .camera import CameraPath, Framing, camera_path, panel_camera
from .framing import Room, free_rect, hull_points, surface_points
from .geometry import DISPLAY_EXTENT, to_display
from .timeline import Keyframes, Timeline, film_length, hermite_weights, schedule, still_frame, stretched

if TYPE_CHECKING:  # the film reads a Capture; importing it would pull torch into the picture stages
    from ..landscape.result import Capture

# The largest number of grid points per side a fitted camera frames (a subsample of finer grids: their outline).
FIT_GRID = 33

# A 1D film is a curve over alpha: without camera keys of its own it is seen from the side (the -beta side),
# slightly from above.
SIDE_ON = CameraSpec(keyframes=[CameraKey(at=0.0, azimuth=-100.0, elevation=14.0, distance=2.3),
                                CameraKey(at=1.0, azimuth=-80.0, elevation=10.0, distance=2.3)])


@dataclass(frozen=True)
class OutputSettings:
    width: int
    height: int
    fps: int


def output_settings(scene: Scene, quality: Optional[str] = None) -> OutputSettings:
    """-q wins over the scene: a preset's size and fps; otherwise the scene's preset, with its fps override."""
    if quality is not None:
        if quality not in QUALITIES:
            raise UsageError(f"unknown quality '{quality}': choose one of {', '.join(QUALITIES)}")
        q = QUALITIES[quality]
        return OutputSettings(q.width, q.height, q.fps)
    q = QUALITIES[scene.output.quality]
    return OutputSettings(q.width, q.height, scene.output.fps or q.fps)


def parse_frames(spec: Optional[str], n_frames: int) -> range:
    """'A:B' → frames A … B-1 (either side may be empty, negatives count from the end); None → all."""
    if spec is None:
        return range(n_frames)
    try:
        a, _, b = spec.partition(":")
        if not _:
            raise ValueError
        sl = slice(int(a) if a.strip() else None, int(b) if b.strip() else None)
    except ValueError:
        raise UsageError(f"--frames {spec!r}: expected A:B, e.g. 0:120") from None
    r = range(n_frames)[sl]
    if len(r) == 0:
        raise UsageError(f"--frames {spec!r} selects no frame: the film has {n_frames} frames (0:{n_frames})")
    return r


def scene_frames(scene: Scene, fps: int) -> int:
    """The number of frames of the scene's film at ``fps``, known from the scene alone (before any capture): the
    n_frames of its :class:`Film` (captured steps and timeline), or of its PanelFilm (the longest panel's)."""
    if scene.panels:
        return max(film_length(len(p.captured_steps()), p.timeline, fps, np.asarray(p.captured_steps()))[1]
                   for p in scene.panel_scenes())
    steps = scene.captured_steps()
    return film_length(len(steps), scene.timeline, fps, np.asarray(steps))[1]


def scene_still(scene: Scene, fps: int) -> int:
    """The frame of the scene's film at ``fps`` that its still shows (output.still, see
    :func:`~llstudio.film.timeline.still_frame`), known from the scene alone: the schedules its Film (or every
    panel's, stretched to the longest as PanelFilm does) will have."""
    if scene.panels:
        n_frames = scene_frames(scene, fps)
        steps = [np.asarray(p.captured_steps(), dtype=np.float64) for p in scene.panel_scenes()]
        schedules = [schedule(st, stretched(p.timeline, st, n_frames, fps), fps)
                     for p, st in zip(scene.panel_scenes(), steps)]
    else:
        schedules = [schedule(np.asarray(scene.captured_steps(), dtype=np.float64), scene.timeline, fps)]
    return still_frame(schedules, scene.output.still)


def surface_colors(capture: "Capture") -> Optional[np.ndarray]:
    """(steps, nx, ny) colour values of the surface when look.color_by asks for them: the convexity ratio,
    interpolated from the curvature grid onto the loss grid, look.convexity_range mapped to [0, 1] and clipped
    there; None for 'loss'."""
    if capture.scene.look.color_by != "convexity" or capture.curvature is None:
        return None
    lo, hi = capture.scene.look.convexity_range
    return np.clip((capture.convexity_on_grid() - lo) / (hi - lo), 0.0, 1.0)


def keyframes(capture: "Capture") -> Keyframes:
    """What the film interpolates between captured steps: the loss shown (one sample's own with look.sample),
    the path, the update arrows, the zoom, colours and every run's path."""
    look = capture.scene.look
    loss, center_loss = capture.loss, capture.center_loss
    if look.sample is not None:  # one sample's own landscape instead of the mean (validated by the scene)
        loss, center_loss = capture.sample_loss[:, look.sample], capture.sample_center_loss[:, look.sample]
    runs = tuple((r.name, r.plane_path) for r in capture.runs) if len(capture.runs) > 1 else ()
    return Keyframes(capture.steps, loss, center_loss, capture.plane_path, capture.updates, capture.scales,
                     capture.alphas, capture.betas, colors=surface_colors(capture), runs=runs)


class Film:
    """Timeline, camera path and renderer of one capture at one output setting.

    ``open_renderer(film)`` gives a context manager whose value draws ``view(i)`` (see :meth:`frame`); the
    pipeline's ``make_film`` wires the off-screen renderer in. ``panel``: the film is one panel of several, whose
    camera backs off when the panel is narrow."""

    def __init__(self, capture: "Capture", settings: OutputSettings, open_renderer: Optional[Callable] = None,
                 panel: bool = False, room: Optional[Room] = None):
        scene = capture.scene
        self.capture, self.settings, self._open_renderer = capture, settings, open_renderer
        self._room = room
        look = scene.look
        curve = None
        if look.loss_inset and capture.train_loss is not None and len(capture.train_loss):
            curve = (np.arange(len(capture.train_loss)), np.asarray(capture.train_loss))
        self.timeline = Timeline(keyframes(capture), scene.timeline, scene.scaling, settings.fps, curve=curve,
                                 critical=look.critical_points and len(capture.betas) > 1,
                                 steps_per_epoch=self._steps_per_epoch() if look.epoch and look.overlay else None)
        sc = self.timeline.schedule
        # The camera moves over the film's body only: cards hold its first and last pose.
        self.body = (sc.body_start, max(sc.body_end - sc.body_start, 1))
        self._panel = panel
        self._camera: Optional[CameraPath] = None

    @property
    def camera(self) -> CameraPath:
        """The camera path, made on first use: after share_range, which changes the heights a fitted camera
        frames."""
        if self._camera is None:
            self._camera = self._camera_path(self._panel)
        return self._camera

    def framing(self) -> Framing:
        """What fitting the camera needs: the surface's display points over the whole film (the highest and the
        lowest height of every grid point over the captured steps, at most FIT_GRID per side; a 1D curve with
        the floor of its curtain) and of every captured step, which step each frame of the camera shows, the
        panel's aspect and the room its title and info line leave."""
        capture, tl = self.capture, self.timeline
        look = capture.scene.look
        step_a = max(1, -(-len(capture.alphas) // FIT_GRID))
        step_b = max(1, -(-len(capture.betas) // FIT_GRID))
        xs = to_display(capture.alphas, capture.alphas, DISPLAY_EXTENT)[::step_a]
        ys = to_display(capture.betas, capture.betas, DISPLAY_EXTENT)[::step_b]
        ranges = tl.step_ranges()[:, :, None, None]
        span = np.maximum(ranges[:, 1] - ranges[:, 0], 1e-300)
        unit = (tl.values[:, ::step_a, ::step_b] - ranges[:, 0]) / span
        zh = capture.scene.scaling.z_scale * DISPLAY_EXTENT
        layers = [np.clip(unit.max(axis=0), 0, 1) * zh, np.clip(unit.min(axis=0), 0, 1) * zh]
        if len(capture.betas) == 1:
            layers.append(np.zeros_like(layers[0]))
        points = np.concatenate([surface_points(h, xs, ys) for h in layers])
        free = self._room.free if self._room else free_rect(bool(capture.scene.title) and look.overlay, look.overlay)
        floor = [surface_points(np.zeros_like(layers[0]), xs, ys)] if len(capture.betas) == 1 else []
        steps = tuple(hull_points(np.concatenate([surface_points(np.clip(u, 0, 1) * zh, xs, ys), *floor]))
                      for u in unit)
        start, n = self.body
        position = np.array([tl.position(start + i) for i in range(n)])
        return Framing(hull_points(points), self.settings.width / self.settings.height, free, steps, position,
                       hermite_weights(tl.schedule) if len(steps) >= 3 else None, self._room)

    def _camera_path(self, panel: bool):
        capture, sc = self.capture, self.timeline.schedule
        scene = capture.scene
        focal = (0.0, 0.0, 0.5 * scene.scaling.z_scale * DISPLAY_EXTENT)
        spec = SIDE_ON if len(capture.betas) == 1 and scene.camera == CameraSpec() else scene.camera
        track = None
        if spec.follow > 0:
            body = slice(sc.body_start, sc.body_start + self.body[1])
            ab, zoom = self.timeline.marker_track()[body], self.timeline.scale_track()[body]
            # In a zoom film the marker can leave the square, where it is hidden: follow it to the square's edge.
            track = np.clip(np.column_stack([to_display(ab[:, 0], capture.alphas, DISPLAY_EXTENT, zoom),
                                             to_display(ab[:, 1], capture.betas, DISPLAY_EXTENT, zoom)]),
                            -DISPLAY_EXTENT / 2, DISPLAY_EXTENT / 2)
        if spec.framing == "fit":
            # Fitted to this panel's own surface and shape.
            return camera_path(spec, self.body[1], focal, DISPLAY_EXTENT, track, self.settings.fps, self.framing())
        path = camera_path(spec, self.body[1], focal, DISPLAY_EXTENT, track, self.settings.fps)
        # One path over the same frames for every panel, seen per panel.
        return panel_camera(path, self.settings.width, self.settings.height) if panel else path

    def _steps_per_epoch(self) -> Optional[float]:
        """Optimizer steps per epoch (training.batch_order drops the last partial batch), or None if unknown."""
        try:
            n = len(self.capture.data.x_train)
        except Exception:  # a dataset that cannot be loaded here only costs the epoch label
            return None
        return float(max(n // self.capture.scene.training.batch_size, 1))

    @property
    def n_frames(self) -> int:
        return self.timeline.n_frames

    def share_range(self, lo: float, hi: float) -> None:
        """Show heights and colours on ``lo`` … ``hi`` instead of this film's own range (panels on one range)."""
        self.timeline.set_range(lo, hi)

    def pose(self, index: int):
        """Camera pose of frame ``index`` (card frames hold the body's first or last pose)."""
        start, n = self.body
        return self.camera.pose(int(np.clip(index - start, 0, n - 1)))

    def repeats(self) -> np.ndarray:
        """(n_frames,) bool: whether each frame shows exactly what the frame before it shows (the same captured
        position, camera pose and card): a still hold, which the encoder keeps still."""
        n, tl = self.n_frames, self.timeline
        pos = np.array([tl.position(i) for i in range(n)])
        start, m = self.body
        idx = np.clip(np.arange(n) - start, 0, m - 1)
        pose = np.concatenate([self.camera.position[idx], self.camera.focal_point[idx], self.camera.up[idx]], axis=1)
        cards = [tl.card_at(i) for i in range(n)]
        out = np.zeros(n, dtype=bool)
        out[1:] = ((pos[1:] == pos[:-1]) & np.all(pose[1:] == pose[:-1], axis=1)
                   & np.array([a == b for a, b in zip(cards[1:], cards[:-1])], dtype=bool))
        return out

    def view(self, index: int):
        """(FrameState, camera pose) of frame ``index``."""
        return self.timeline.frame(index), self.pose(index)

    def renderer(self):
        """A context manager giving the renderer that draws this film's frames."""
        if self._open_renderer is None:
            raise RuntimeError("this film has no renderer: build it with llstudio.pipeline.make_film")
        return self._open_renderer(self)

    def frame(self, renderer, index: int) -> np.ndarray:
        """Frame ``index`` as (H, W, 3|4) uint8, drawn by ``renderer`` (from :meth:`renderer`)."""
        return renderer.render(*self.view(index))
