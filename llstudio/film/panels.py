"""Several views in one film: one capture and one renderer per panel, tiled into one frame.

A scene with ``[[panels]]`` is a list of panel scenes (``Scene.panel_scenes``), each captured on its own (and
cached like any scene: identical panels share one capture). This module composes their films: every panel gets a
:class:`llstudio.film.film.Film` of its own at its share of the output size, all panels follow the same camera
path over the same frames, and the renderer tiles the panels' images into each video frame.

Panels of different length (another number of captured steps) are synchronised by frame index: the film is as long
as the longest panel and a shorter one holds its last captured step until the end (its ``hold_end`` is extended),
so every panel starts together and every panel's camera is at the same pose in every frame.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Sequence

import numpy as np

from ..config.colors import rgb
from ..config.scene import LayoutSpec
from ..errors import UsageError
from .film import Film, OutputSettings
from .framing import Room
from .timeline import film_length, stretched

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


def _with_hold_end(capture, n_frames: int, fps: int):
    """``capture`` with a scene whose timeline.hold_end is extended so that its film has ``n_frames`` frames."""
    spec = capture.scene.timeline
    timeline = stretched(spec, capture.steps, n_frames, fps)
    if timeline is spec:
        return capture
    return dataclasses.replace(capture, scene=capture.scene.model_copy(update={"timeline": timeline}))


class PanelFilm:
    """The film of a multi-panel scene, with the interface of :class:`llstudio.film.film.Film`: ``n_frames``,
    ``renderer()`` (a context manager giving what ``frame`` needs) and ``frame(renderer, i)`` → (H, W, 3) uint8.

    ``capture``: a :class:`~llstudio.landscape.result.PanelCapture`; ``settings``: the output's size and fps,
    shared out between the panels; ``open_renderer(film)``: as for a Film (the pipeline wires it in).
    """

    def __init__(self, capture, settings, open_renderer: Optional[Callable] = None, rooms: Sequence[Room] = ()):
        layout = capture.scene.layout
        self.capture, self.settings, self._open_renderer = capture, settings, open_renderer
        self.columns, self.rows = grid_shape(len(capture.panels), layout.columns)
        self.gap = gap_pixels(layout, settings.height)
        self.panel_width, self.panel_height = panel_size(settings.width, settings.height, self.columns, self.rows,
                                                         self.gap)
        self.colour = rgb(layout.gap_color)
        lengths = [film_length(len(c.steps), c.scene.timeline, settings.fps, np.asarray(c.steps))[1]
                   for c in capture.panels]
        self.n_frames = max(lengths)
        sub = OutputSettings(self.panel_width, self.panel_height, settings.fps)
        # Every panel's film is n_frames long: one camera path over the same frames, seen per panel.
        rooms = list(rooms) or [None] * len(capture.panels)
        self.films = [Film(_with_hold_end(c, self.n_frames, settings.fps), sub, panel=True, room=room)
                      for c, room in zip(capture.panels, rooms)]
        if layout.shared_range:
            lo = min(f.timeline.vmin for f in self.films)
            hi = max(f.timeline.vmax for f in self.films)
            for film in self.films:
                film.share_range(lo, hi)

    def renderer(self):
        """A context manager giving the renderer that draws every panel and tiles them."""
        if self._open_renderer is None:
            raise RuntimeError("this film has no renderer: build it with llstudio.pipeline.make_film")
        return self._open_renderer(self)

    def views(self, index: int) -> list:
        """(FrameState, camera pose) of every panel at frame ``index``."""
        return [film.view(index) for film in self.films]

    def repeats(self) -> np.ndarray:
        """(n_frames,) bool: frames every panel shows exactly as in the frame before (see Film.repeats)."""
        return np.logical_and.reduce([film.repeats() for film in self.films])

    def card(self, index: int):
        """The title or end card over frame ``index`` (a CardState), or None: cards belong to the whole film."""
        return self.films[0].timeline.card_at(index)

    def frame(self, renderer, index: int) -> np.ndarray:
        """Frame ``index`` of every panel, tiled: (H, W, 3) uint8 at the output size."""
        return renderer.render(self.views(index), self.card(index))


__all__ = ["PanelFilm", "gap_pixels", "grid_shape", "panel_size"]
