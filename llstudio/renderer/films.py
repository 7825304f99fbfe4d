"""Renderers for films: one SurfaceRenderer for a film, one per panel for a film of several panels, whose images
are tiled into the frame with the film's title and end cards drawn once across them."""

from __future__ import annotations

import contextlib
import math

import numpy as np
from PIL import Image

from ..film.film import Film
from ..film.panels import PanelFilm
from .layout import overlay_spec, panel_specs
from .overlay import draw_card, veil
from .plotter import SurfaceRenderer


def surface_renderer(film: Film, card_text: bool = True, overlays=None, frame_height=None,
                     supersample=None) -> SurfaceRenderer:
    """The renderer of one film (a context manager that closes its Plotter). ``card_text``: draw the text of
    title and end cards (a panel leaves it to the whole film); ``overlays``: what the panel shows (default: what
    its scene asks for, ``layout.overlay_spec``); ``frame_height``: the whole film's, for a panel;
    ``supersample``: window pixels per output pixel, overriding the look's anti-aliasing (a benchmark's
    reference frame)."""
    scene, settings = film.capture.scene, film.settings
    return SurfaceRenderer(film.capture.alphas, film.capture.betas, scene.look, settings.width, settings.height,
                           scene.scaling.z_scale, scene.title, log_values=scene.scaling.log,
                           show_range=scene.grid.zoom != 1.0, card_text=card_text,
                           overlays=overlays if overlays is not None else overlay_spec(scene),
                           frame_height=frame_height, supersample=supersample)


class PanelRenderer:
    """One SurfaceRenderer per panel of a :class:`PanelFilm`; ``render`` tiles their images."""

    def __init__(self, film: PanelFilm, renderers: list):
        self.film, self.renderers = film, renderers
        self._backdrop = None

    def render(self, views: list, card) -> np.ndarray:
        """``views``: (FrameState, pose) of every panel; ``card``: the CardState over the frame, or None."""
        f = self.film
        images = [r.render(state, pose) for r, (state, pose) in zip(self.renderers, views)]
        size = (f.settings.width, f.settings.height)
        img = tile(images, f.columns, size, f.gap, f.colour)
        if card is not None and card.veil > 0:
            # The panels have faded to their backgrounds; the dividers between them fade too, so no line runs
            # through the card's text.
            outside = tile([np.zeros_like(im) for im in images], f.columns, size, f.gap, (1, 1, 1)).any(axis=2)
            if self._backdrop is None:
                self._backdrop = backdrop([r.background_image() for r in self.renderers], f.columns, size, f.gap)
            img = img.copy()
            img[outside] = veil(img[outside], self._backdrop[outside], card.veil)
        # Title and end cards belong to the film: their text once, centred on the whole frame (each panel has
        # already faded to its background under it).
        if card is not None and card.opacity > 0:
            pil = Image.fromarray(img)
            draw_card(pil, card.text, card.subtitle, card.opacity, f.capture.scene.look.text_color)
            img = np.asarray(pil)
        return img


@contextlib.contextmanager
def panel_renderer(film: PanelFilm):
    """A :class:`PanelRenderer` for ``film``, every panel's renderer closed on exit."""
    with contextlib.ExitStack() as stack:
        specs = panel_specs([f.capture.scene for f in film.films], film.capture.scene.layout.shared_range)
        yield PanelRenderer(film, [stack.enter_context(surface_renderer(f, False, spec, film.settings.height))
                                   for f, spec in zip(film.films, specs)])


def open_renderer(film):
    """The renderer of a Film or a PanelFilm, as a context manager."""
    return panel_renderer(film) if isinstance(film, PanelFilm) else surface_renderer(film)


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


def backdrop(backgrounds: list[np.ndarray], columns: int, size: tuple[int, int], gap: int) -> np.ndarray:
    """What a card fades the tiled frame to: the panels' ``backgrounds`` tiled with the dividers and the border
    filled from the nearest panel pixels (a plain or gradient background continues across them)."""
    img = tile(backgrounds, columns, size, gap, (0, 0, 0))
    covered = tile([np.ones_like(b) for b in backgrounds], columns, size, gap, (0, 0, 0)).any(axis=2)
    # Nearest covered pixel along each row, then each column (cumulative index trick, both directions).
    for axis in (1, 0):
        img, covered = _fill_along(img, covered, axis)
    return img


def _fill_along(img: np.ndarray, covered: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill uncovered pixels of ``img`` from the nearest covered one along ``axis`` (rows: 1, columns: 0)."""
    n = img.shape[axis]
    idx = np.arange(n).reshape((1, n) if axis == 1 else (n, 1))
    fwd = np.maximum.accumulate(np.where(covered, idx, -1), axis=axis)
    bwd = np.flip(np.minimum.accumulate(np.flip(np.where(covered, idx, n), axis=axis), axis=axis), axis=axis)
    near = np.where((fwd >= 0) & ((idx - fwd <= bwd - idx) | (bwd >= n)), fwd, bwd)
    ok = (near >= 0) & (near < n)
    near = np.clip(near, 0, n - 1)
    filled = np.take_along_axis(img, near[..., None], axis=axis)
    out = np.where((covered | ~ok)[..., None], img, filled)
    return out, covered | ok
