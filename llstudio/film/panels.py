"""Several views in one film: one capture and one renderer per panel, tiled into one frame.

A scene with ``[[panels]]`` is a list of panel scenes (``Scene.panel_scenes``), each captured on its own (and
cached like any scene: identical panels share one capture). This module composes their films: every panel gets a
:class:`llstudio.pipeline.Film` of its own at its share of the output size, all panels follow the same camera path
over the same frames, and each video frame is the panels' images tiled with numpy.

Panels of different length (another number of captured steps) are synchronised by frame index: the film is as long
as the longest panel and a shorter one holds its last captured step until the end (its ``hold_end`` is extended),
so every panel starts together and every panel's camera is at the same pose in every frame.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import CameraPath
from ..errors import UsageError
from ..config.colors import rgb
from ..config.scene import LayoutSpec, Scene
from .timeline import film_length

# A panel narrower than this width/height ratio moves its camera back (see panel_camera): the surface, seen at an
# angle, is wider than it is tall and would otherwise be cut at the panel's sides.
MIN_ASPECT = 1.2


def grid_shape(n: int, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) for ``n`` panels: ``columns`` if given, else one row up to 3 panels and a near-square grid
    beyond (4 → 2x2, 5 and 6 → 3x2, 7 to 9 → 3x3, 10 to 16 → 4 columns)."""
    if n < 1:
        raise ValueError("no panels to lay out")
    cols = columns if columns is not None else (n if n <= 3 else math.ceil(math.sqrt(n)))
    cols = max(1, min(cols, n))
    return cols, math.ceil(n / cols)


def gap_pixels(layout: LayoutSpec, height: int) -> int:
    """The separator width in pixels: ``layout.gap`` of the film's height, at least one pixel unless it is 0."""
    return 0 if layout.gap == 0 else max(1, int(round(layout.gap * height)))


def panel_size(width: int, height: int, columns: int, rows: int, gap: int) -> tuple[int, int]:
    """(width, height) of one panel: as large as fits ``columns`` x ``rows`` panels and the gaps between them into
    ``width`` x ``height``, rounded down to even numbers (the encoder's 4:2:0 chroma needs them even)."""
    pw = (width - (columns - 1) * gap) // columns // 2 * 2
    ph = (height - (rows - 1) * gap) // rows // 2 * 2
    if pw < 16 or ph < 16:
        raise UsageError(f"{columns}x{rows} panels do not fit in {width}x{height} pixels (each would be {pw}x{ph}); "
                         "use a higher quality (-q), fewer panels or a smaller layout.gap")
    return pw, ph


def tile(images: list[np.ndarray], columns: int, size: tuple[int, int], gap: int,
         colour: tuple[int, int, int]) -> np.ndarray:
    """Tile equally sized panel images into one (H, W, 3) uint8 frame of ``size`` = (W, H).

    ``images``: (h, w, 3) uint8 each, placed left to right, top to bottom, ``columns`` per row, ``gap`` pixels
    apart; the block is centred in the frame, an incomplete last row is centred under the others, and everything
    not covered by a panel is ``colour`` (RGB, 0-255).
    """
    if not images:
        raise ValueError("no images to tile")
    h, w = images[0].shape[:2]
    if any(im.shape != (h, w, 3) for im in images):
        raise ValueError(f"panel images must all be ({h}, {w}, 3); got {[im.shape for im in images]}")
    width, height = size
    cols = min(columns, len(images))
    rows = math.ceil(len(images) / cols)
    block_w, block_h = cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap
    if block_w > width or block_h > height:
        raise ValueError(f"{cols}x{rows} panels of {w}x{h} with a gap of {gap} need {block_w}x{block_h} pixels; "
                         f"the frame is {width}x{height}")
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[...] = np.asarray(colour, dtype=np.uint8)
    x0, y0 = (width - block_w) // 2, (height - block_h) // 2
    for r in range(rows):
        row = images[r * cols:(r + 1) * cols]
        # Centre a short last row: its first panel starts half the missing width further in.
        xr = x0 + (cols - len(row)) * (w + gap) // 2
        y = y0 + r * (h + gap)
        for c, im in enumerate(row):
            x = xr + c * (w + gap)
            canvas[y:y + h, x:x + w] = im
    return canvas


def panel_camera(path: CameraPath, width: int, height: int) -> CameraPath:
    """The shared camera path as one panel of ``width`` x ``height`` sees it: the same directions, focal points and
    up vectors, with the distance multiplied by ``MIN_ASPECT / (width / height)`` when the panel is narrower than
    MIN_ASPECT, so that a tall panel shows the whole surface instead of cutting its sides (the view angle is
    vertical, so a narrow window sees less to the sides at the same distance)."""
    factor = max(1.0, MIN_ASPECT / (width / height))
    if factor == 1.0:
        return path
    position = path.focal_point + (path.position - path.focal_point) * factor
    return CameraPath(position, path.focal_point, path.up)


@dataclass
class PanelCapture:
    """The captures of a multi-panel scene: ``scene`` is the scene file's (with its panels), ``panels[i]`` the
    :class:`llstudio.pipeline.Capture` of ``scene.panel_scenes()[i]`` (panels with the same capture key share the
    arrays, each with its own scene)."""

    scene: Scene
    panels: list

    @property
    def key(self) -> str:
        """The panels' capture keys, joined with '+' (for the film's sidecar)."""
        return "+".join(c.key for c in self.panels)

    @property
    def path(self) -> Path:
        """The directory that holds every panel's capture (the store's capture directory)."""
        return Path(os.path.commonpath([str(c.path) for c in self.panels]))


def _with_hold_end(capture, n_frames: int, fps: int):
    """``capture`` with a scene whose timeline.hold_end is extended so that its film has ``n_frames`` frames."""
    spec = capture.scene.timeline
    n = len(capture.steps)
    _, own = film_length(n, spec, fps)
    if own == n_frames:
        return capture
    # Rounding duration * fps can land either side of the wanted count: try a little less or more.
    for nudge in (0.0, -0.25, 0.25):
        hold = spec.hold_end + (n_frames - own + nudge) / fps
        timeline = spec.model_copy(update={"hold_end": hold})
        if film_length(n, timeline, fps)[1] == n_frames:
            return dataclasses.replace(capture, scene=capture.scene.model_copy(update={"timeline": timeline}))
    raise AssertionError(f"cannot stretch a film of {own} frames to {n_frames}")  # pragma: no cover


class PanelFilm:
    """The film of a multi-panel scene, with the interface of :class:`llstudio.pipeline.Film`: ``n_frames``,
    ``renderer()`` (a context manager giving what ``frame`` needs) and ``frame(renderer, i)`` → (H, W, 3) uint8.

    ``capture``: a :class:`PanelCapture`; ``settings``: the output's size and fps, shared out between the panels.
    """

    def __init__(self, capture: PanelCapture, settings):
        from ..pipeline import Film, OutputSettings

        layout = capture.scene.layout
        self.capture, self.settings = capture, settings
        self.columns, self.rows = grid_shape(len(capture.panels), layout.columns)
        self.gap = gap_pixels(layout, settings.height)
        self.panel_width, self.panel_height = panel_size(settings.width, settings.height, self.columns, self.rows,
                                                         self.gap)
        self.colour = rgb(layout.gap_color)
        lengths = [film_length(len(c.steps), c.scene.timeline, settings.fps)[1] for c in capture.panels]
        self.n_frames = max(lengths)
        sub = OutputSettings(self.panel_width, self.panel_height, settings.fps)
        self.films = [Film(_with_hold_end(c, self.n_frames, settings.fps), sub) for c in capture.panels]
        for film in self.films:
            # Film builds the camera path over its own frames, all n_frames long now: one path, seen per panel.
            film.camera = panel_camera(film.camera, self.panel_width, self.panel_height)
        if layout.shared_range:
            lo = min(f.timeline.vmin for f in self.films)
            hi = max(f.timeline.vmax for f in self.films)
            for film in self.films:
                film.timeline.vmin, film.timeline.vmax = lo, hi

    @contextlib.contextmanager
    def renderer(self):
        """One renderer per panel (a list), all closed on exit."""
        with contextlib.ExitStack() as stack:
            renderers = [stack.enter_context(film.renderer()) for film in self.films]
            for r in renderers:
                r.card_text = False  # drawn once over the whole frame instead (frame())
            yield renderers

    def frame(self, renderers: list, index: int) -> np.ndarray:
        """Frame ``index`` of every panel, tiled: (H, W, 3) uint8 at the output size."""
        images = [film.frame(r, index) for film, r in zip(self.films, renderers)]
        img = tile(images, self.columns, (self.settings.width, self.settings.height), self.gap, self.colour)
        # Title and end cards belong to the film: their text once, centred on the whole frame (each panel has
        # already faded to its background under it).
        card = self.films[0].timeline.card_at(index)
        if card is not None and card.opacity > 0:
            from PIL import Image

            from ..renderer.overlay import draw_card

            pil = Image.fromarray(img)
            draw_card(pil, card.text, card.subtitle, card.opacity, self.capture.scene.look.text_color)
            img = np.asarray(pil)
        return img


__all__ = ["PanelCapture", "PanelFilm", "gap_pixels", "grid_shape", "panel_camera", "panel_size", "tile"]
