"""2D overlays drawn on rendered frames: loss-curve inset, colour legend, run key (together: FrameOverlays),
title/end cards and their veil, contact sheets.

Pure numpy and Pillow, no pyvista: these are drawn after the 3D frame is grabbed, at the output resolution, so
they stay crisp whatever anti-aliasing the 3D pass used and cost nothing in the GPU/Mesa pipeline.
"""

from __future__ import annotations

import functools
import os
from typing import Callable, Optional, Sequence

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..config.colors import rgb
from ..config.scene import LookSpec
from ..film.timeline import FrameState
from .text import format_loss


@functools.lru_cache(maxsize=32)
def font(size: int, bold: bool = False):
    """A TrueType font of ``size`` pixels: matplotlib's bundled DejaVu Sans (always installed with matplotlib),
    else Pillow's default."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)
    try:
        return ImageFont.truetype(path, max(6, int(size)))
    except OSError:  # pragma: no cover
        return ImageFont.load_default()


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``y`` (T,) with edge-aware normalisation (no droop at the ends)."""
    if window <= 1 or len(y) < 3:
        return y.astype(np.float64)
    k = np.ones(min(window, len(y)))
    return np.convolve(y, k, mode="same") / np.convolve(np.ones(len(y)), k, mode="same")


class LossInset:
    """A small chart of the training loss (``steps`` (T,), ``loss`` (T,)) in a corner of a ``width`` x ``height``
    frame: the whole curve faint, the part already trained bright, a dot at the current step.

    The curve is smoothed (moving average over ~2% of the run) because mini-batch losses are noisy; the raw values
    stay visible underneath as a faint band. With ``log``, the vertical axis is log10 of the loss.
    """

    def __init__(self, steps: np.ndarray, loss: np.ndarray, width: int, height: int, corner: str, log: bool,
                 text_color: str, dot_color: str, background: str, text_room: Optional[int] = None):
        steps = np.asarray(steps, dtype=np.float64)
        loss = np.asarray(loss, dtype=np.float64)
        ok = np.isfinite(loss) & ((loss > 0) if log else True)
        self.steps, raw = steps[ok], loss[ok]
        raw_y = np.log10(raw) if log else raw
        self.y_raw = raw_y
        self.y = smooth(raw_y, max(1, len(raw_y) // 50))
        self.w, self.h = int(0.27 * width), int(0.22 * height)
        m = int(0.025 * height)
        x0 = width - self.w - m if "right" in corner else m
        # On the left, leave room for the title (top) and the step/loss text (bottom): ``text_room`` pixels, by
        # default one line's worth.
        text_room = (int(0.06 * height) if text_room is None else int(text_room)) if "left" in corner else 0
        y0 = m + text_room if corner.startswith("top") else height - self.h - m - text_room
        self.x0, self.y0 = x0, y0
        self.text, self.dot, self.bg = rgb(text_color), rgb(dot_color), rgb(background)
        self.pad = max(3, int(0.07 * self.h))
        self.label_size = max(7, int(self.h / 9))
        lo, hi = (float(self.y_raw.min()), float(self.y_raw.max())) if len(self.y_raw) else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        self.lo, self.hi = lo, hi
        s0, s1 = (float(self.steps[0]), float(self.steps[-1])) if len(self.steps) else (0.0, 1.0)
        self.s0, self.s1 = s0, (s1 if s1 > s0 else s0 + 1.0)
        self._static = self._draw_static()

    def _xy(self, s, y) -> np.ndarray:
        """Step and value → pixel coordinates inside the panel: (N, 2)."""
        top = self.pad + self.label_size + 2
        px = self.pad + (np.asarray(s) - self.s0) / (self.s1 - self.s0) * (self.w - 2 * self.pad)
        py = self.h - self.pad - (np.asarray(y) - self.lo) / (self.hi - self.lo) * (self.h - self.pad - top)
        return np.column_stack([px, py])

    def _draw_static(self):
        layer = Image.new("RGBA", (self.w, self.h), (*self.bg, 150))
        d = ImageDraw.Draw(layer)
        d.rectangle([0, 0, self.w - 1, self.h - 1], outline=(*self.text, 70))
        d.text((self.pad, self.pad - 1), "training loss", fill=(*self.text, 200), font=font(self.label_size))
        if len(self.steps) >= 2:
            d.line([tuple(p) for p in self._xy(self.steps, self.y_raw)], fill=(*self.text, 40), width=1)
            d.line([tuple(p) for p in self._xy(self.steps, self.y)], fill=(*self.text, 90),
                   width=max(1, self.h // 90))
        return layer

    def draw(self, img, step: float) -> None:
        """Draw the inset onto the PIL image ``img`` (RGB) at training step ``step``."""
        panel = self._static.copy()
        if len(self.steps) >= 2:
            d = ImageDraw.Draw(panel)
            done = self.steps <= step
            y_now = float(np.interp(step, self.steps, self.y))
            pts = np.vstack([self._xy(self.steps[done], self.y[done]), self._xy([step], [y_now])])
            if len(pts) >= 2:
                d.line([tuple(p) for p in pts], fill=(*self.text, 255), width=max(2, self.h // 60))
            (cx, cy), = self._xy([step], [y_now])
            r = max(2.5, self.h / 28)
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(*self.dot, 255))
        img.paste(panel, (self.x0, self.y0), panel)


class Legend:
    """A vertical colour bar at the right edge with loss labels; values are scaled (log10 when ``log``) like the
    surface, the labels show the raw loss."""

    def __init__(self, colormap: str, width: int, height: int, log: bool, text_color: str):
        self.cmap = matplotlib.colormaps[colormap]
        self.w, self.h = max(4, int(0.014 * width)), int(0.42 * height)
        self.size = max(7, int(height / 48))
        self.x0 = width - self.w - int(0.025 * height) - int(4.2 * self.size)
        self.y0 = (height - self.h) // 2
        self.log, self.text = log, rgb(text_color)
        ramp = self.cmap(np.linspace(1.0, 0.0, self.h))[:, :3]  # top = high loss
        self.bar = (np.repeat(ramp[:, None, :], self.w, axis=1) * 255).astype(np.uint8)

    def draw(self, img, vmin: float, vmax: float) -> None:
        img.paste(Image.fromarray(self.bar), (self.x0, self.y0))
        d = ImageDraw.Draw(img)
        for frac in np.linspace(0.0, 1.0, 5):
            v = vmin + frac * (vmax - vmin)
            y = self.y0 + (1.0 - frac) * (self.h - 1)
            d.line([(self.x0 + self.w, y), (self.x0 + self.w + 3, y)], fill=self.text, width=1)
            label = format_loss(10.0 ** v if self.log else v)
            d.text((self.x0 + self.w + 6, y), label, fill=self.text, font=font(self.size), anchor="lm")
        d.text((self.x0 + self.w // 2, self.y0 - 6), "loss", fill=self.text, font=font(self.size), anchor="md")


def draw_card(img, text: str, subtitle: str, opacity: float, color: str) -> None:
    """Centre a card's text (and subtitle) on the PIL image ``img`` with ``opacity`` (0 … 1)."""
    if opacity <= 0:
        return
    w, h = img.size
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    c = (*rgb(color), int(round(255 * opacity)))
    big, small = max(10, h // 13), max(8, h // 30)
    y = h / 2 - (0.35 * small if subtitle else 0)
    d.text((w / 2, y), text, fill=c, font=font(big, bold=True), anchor="mm")
    if subtitle:
        d.text((w / 2, y + 0.75 * big + 0.2 * small), subtitle, fill=c, font=font(small), anchor="mt")
    img.alpha_composite(layer) if img.mode == "RGBA" else img.paste(layer, (0, 0), layer)


def veil(scene: np.ndarray, background: np.ndarray, amount: float) -> np.ndarray:
    """Cross-dissolve: (H, W, 3) uint8 ``scene`` towards ``background`` by ``amount`` (0: scene, 1: background)."""
    if amount <= 0:
        return scene
    if amount >= 1:
        return background.copy()
    out = scene.astype(np.float32) * (1.0 - amount) + background.astype(np.float32) * amount
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def sheet_shape(n: int, aspect: float) -> tuple[int, int]:
    """(rows, cols) for ``n`` tiles of width/height ``aspect`` that make the most nearly ``aspect``-shaped sheet."""
    best = None
    for cols in range(1, n + 1):
        rows = -(-n // cols)
        ratio = (cols * aspect) / rows
        score = abs(np.log(ratio / aspect)) + 0.01 * (rows * cols - n)
        if best is None or score < best[0]:
            best = (score, rows, cols)
    return best[1], best[2]


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[str], cols: Optional[int] = None,
                  gap: int = 4, background=(16, 16, 20), text_color="#e8e8e8") -> np.ndarray:
    """Tile ``images`` (each (h, w, 3) uint8, all the same shape) row by row into one (H, W, 3) uint8 sheet, with
    ``labels`` written in a strip under each tile. ``cols`` defaults to the layout closest to one tile's aspect."""
    n = len(images)
    if n == 0:
        raise ValueError("a contact sheet needs at least one image")
    h, w = images[0].shape[:2]
    if cols is None:
        rows, cols = sheet_shape(n, w / h)
    else:
        rows = -(-n // cols)
    strip = max(12, h // 9)
    cell_h = h + strip
    sheet = np.empty((rows * cell_h + (rows + 1) * gap, cols * w + (cols + 1) * gap, 3), dtype=np.uint8)
    sheet[:] = np.asarray(background, dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = gap + r * (cell_h + gap), gap + c * (w + gap)
        sheet[y:y + h, x:x + w] = im
    pil = Image.fromarray(sheet)
    d = ImageDraw.Draw(pil)
    f = font(int(strip * 0.62))
    for i, label in enumerate(labels):
        r, c = divmod(i, cols)
        d.text((gap + c * (w + gap) + 3, gap + r * (cell_h + gap) + h + strip / 2), label, fill=rgb(text_color),
               font=f, anchor="lm")
    return np.asarray(pil)


def draw_run_key(img, runs: Sequence[tuple[str, str]], width: int, height: int, text_color: str,
                 bottom: Optional[int] = None) -> None:
    """Names of the training runs with a dot of each run's colour, bottom right of the PIL image ``img``:
    ``runs`` is ((name, colour), ...), the primary run first. ``bottom``: the lowest pixel row the key may use
    (default: the image's bottom margin), e.g. the top of a loss inset in that corner, so the key sits above it."""
    draw = ImageDraw.Draw(img)
    size = max(8, int(height / 46))
    f = font(size)
    margin = int(0.025 * height)
    line = int(1.5 * size)
    text_w = max(draw.textlength(name, font=f) for name, _ in runs)
    x = width - margin - text_w
    y = (height - margin if bottom is None else bottom) - line * len(runs)
    r = max(2, size // 3)
    for i, (name, colour) in enumerate(runs):
        cy = y + i * line + size // 2
        draw.ellipse([x - 2.2 * r - r, cy - r, x - 2.2 * r + r, cy + r], fill=rgb(colour))
        draw.text((x, y + i * line), name, font=f, fill=rgb(text_color))


def run_color(look: LookSpec, i: int) -> str:
    """Colour of run ``i`` (0: the primary run, drawn in marker_color): its marker, path and key entry."""
    return look.marker_color if i == 0 else look.run_colors[(i - 1) % len(look.run_colors)]


class FrameOverlays:
    """The 2D overlays of one film's frames, drawn over the grabbed 3D frame at the output's ``width`` x
    ``height``: the colour legend (``look.legend``), the loss-curve inset (``look.loss_inset``, remade when the
    curve or the room beside the text changes) and, with several runs, their key. ``background``: the inset's
    backing colour; ``log``: values are log10 of the loss."""

    def __init__(self, look: LookSpec, width: int, height: int, log: bool, background: str):
        self.look, self.width, self.height, self.log, self.background = look, width, height, log, background
        self.legend = Legend(look.colormap, width, height, log, look.text_color) if look.legend else None
        self._inset = self._inset_for = self._inset_room = None

    def draw(self, img: np.ndarray, state: FrameState, text_room: Callable[[], Optional[int]]) -> np.ndarray:
        """``img`` (H, W, 3|4) uint8 with the frame's overlays (``img`` itself when there are none);
        ``text_room()``: the pixels the info text takes at the bottom left (None without it), which an inset on
        the left keeps clear of."""
        look = self.look
        keyed = len(state.runs) > 1 and look.overlay
        inset = look.loss_inset and state.curve is not None
        if self.legend is None and not inset and not keyed:
            return img
        pil = Image.fromarray(img)
        if self.legend is not None:
            self.legend.draw(pil, state.vmin, state.vmax)
        if inset:
            self._loss_inset(state.curve, text_room() if "left" in look.inset_corner else None).draw(pil, state.step)
        if keyed:
            # Above an inset in the same corner rather than over it.
            bottom = (self._inset.y0 - int(0.02 * self.height)
                      if inset and look.inset_corner == "bottom_right" else None)
            draw_run_key(pil, [(name, run_color(look, i)) for i, (name, _, _) in enumerate(state.runs)],
                         self.width, self.height, look.text_color, bottom)
        return np.asarray(pil)

    def _loss_inset(self, curve: tuple, room: Optional[int]) -> LossInset:
        if self._inset is None or self._inset_for is not curve or room != self._inset_room:
            self._inset_for, self._inset_room = curve, room
            look = self.look
            self._inset = LossInset(curve[0], curve[1], self.width, self.height, look.inset_corner, self.log,
                                    look.text_color, look.marker_color, self.background, room)
        return self._inset


__all__ = ["FrameOverlays", "LossInset", "Legend", "draw_card", "draw_run_key", "run_color", "veil",
           "contact_sheet", "sheet_shape", "font", "smooth"]
