"""2D overlays drawn on rendered frames: title and info text (``text``), loss-curve inset, colour legend, run key,
a 1D film's axis (together: FrameOverlays, each in the box the layout gives it), title/end cards and their veil,
contact sheets.

Pure numpy and Pillow, no pyvista: these are drawn after the 3D frame is grabbed, at the output resolution, so
they stay crisp whatever anti-aliasing the 3D pass used and cost nothing in the GPU/Mesa pipeline. One font family
(DejaVu Sans, ``layout.font``) for all of them.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import matplotlib
import numpy as np
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw

from ..config.colors import rgb
from ..config.scene import LookSpec
from ..film.timeline import FrameState
from .layout import Box, OverlaySpec, PanelLayout, card_layout, font, line_height, text_size
from .text import TextLayer, format_loss


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``y`` (T,) with edge-aware normalisation (no droop at the ends)."""
    if window <= 1 or len(y) < 3:
        return y.astype(np.float64)
    k = np.ones(min(window, len(y)))
    return np.convolve(y, k, mode="same") / np.convolve(np.ones(len(y)), k, mode="same")


class LossInset:
    """A small chart of the training loss (``steps`` (T,), ``loss`` (T,)) in the layout's ``box``, its caption
    ``label_size`` pixels high: the whole curve faint, the part already trained bright, a dot at the current step.

    The curve is smoothed (moving average over ~2% of the run) because mini-batch losses are noisy; the raw values
    stay visible underneath as a faint band. With ``log``, the vertical axis is log10 of the loss.
    """

    def __init__(self, steps: np.ndarray, loss: np.ndarray, box: Box, label_size: int, log: bool,
                 text_color: str, dot_color: str, background: str):
        steps = np.asarray(steps, dtype=np.float64)
        loss = np.asarray(loss, dtype=np.float64)
        ok = np.isfinite(loss) & ((loss > 0) if log else True)
        self.steps, raw = steps[ok], loss[ok]
        raw_y = np.log10(raw) if log else raw
        self.y_raw = raw_y
        self.y = smooth(raw_y, max(1, len(raw_y) // 50))
        self.x0, self.y0 = int(round(box.x0)), int(round(box.y0))
        self.w, self.h = int(box.x1) - self.x0, int(box.y1) - self.y0
        self.text, self.dot, self.bg = rgb(text_color), rgb(dot_color), rgb(background)
        self.label_size = label_size
        self.pad = max(3, int(0.3 * label_size))
        lo, hi = (float(self.y_raw.min()), float(self.y_raw.max())) if len(self.y_raw) else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        self.lo, self.hi = lo, hi
        s0, s1 = (float(self.steps[0]), float(self.steps[-1])) if len(self.steps) else (0.0, 1.0)
        self.s0, self.s1 = s0, (s1 if s1 > s0 else s0 + 1.0)
        self._static = self._draw_static()

    def _xy(self, s, y) -> np.ndarray:
        """Step and value → pixel coordinates inside the panel: (N, 2)."""
        top = self.pad + line_height(self.label_size) + 2
        px = self.pad + (np.asarray(s) - self.s0) / (self.s1 - self.s0) * (self.w - 2 * self.pad)
        py = self.h - self.pad - (np.asarray(y) - self.lo) / (self.hi - self.lo) * (self.h - self.pad - top)
        return np.column_stack([px, py])

    def _draw_static(self):
        layer = Image.new("RGBA", (self.w, self.h), (*self.bg, 150))
        d = ImageDraw.Draw(layer)
        d.rectangle([0, 0, self.w - 1, self.h - 1], outline=(*self.text, 70))
        d.text((self.pad, self.pad), "training loss", fill=(*self.text, 200), font=font(self.label_size), anchor="la")
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
    """The colour bar of the layout's legend (top = high values; a horizontal bar: right) with a caption and
    labelled ticks; ``label(frac)``: the label of the fraction ``frac`` (0 = bottom, or left) of the bar, given the
    frame's (vmin, vmax)."""

    def __init__(self, layout: PanelLayout, colormap: str, caption: str, text_color: str):
        self.parts, self.caption, self.text = layout.legend, caption, rgb(text_color)
        bar = self.parts.bar
        self.x0, self.y0 = int(round(bar.x0)), int(round(bar.y0))
        self.w, self.h = max(2, int(round(bar.w))), max(2, int(round(bar.h)))
        cmap = matplotlib.colormaps[colormap]
        if self.parts.horizontal:  # low values on the left
            ramp = cmap(np.linspace(0.0, 1.0, self.w))[:, :3]
            self.bar = (np.repeat(ramp[None, :, :], self.h, axis=0) * 255).astype(np.uint8)
        else:  # high values at the top
            ramp = cmap(np.linspace(1.0, 0.0, self.h))[:, :3]
            self.bar = (np.repeat(ramp[:, None, :], self.w, axis=1) * 255).astype(np.uint8)

    def draw(self, img, label: Callable[[float], str]) -> None:
        p = self.parts
        img.paste(Image.fromarray(self.bar), (self.x0, self.y0))
        d = ImageDraw.Draw(img)
        f = font(p.size)
        line = max(1, p.size // 12)
        if p.horizontal:
            y1 = self.y0 + self.h
            for frac in p.ticks:
                x = self.x0 + frac * (self.w - 1)
                d.line([(x, y1), (x, y1 + p.tick)], fill=self.text, width=line)
                d.text((x, y1 + p.tick + p.gap), label(frac), fill=self.text, font=f, anchor="ma")
            d.text((p.caption.x0, (p.caption.y0 + p.caption.y1) / 2), self.caption, fill=self.text, font=f,
                   anchor="lm")
            return
        x1 = self.x0 + self.w
        for frac in p.ticks:
            y = self.y0 + (1.0 - frac) * (self.h - 1)
            d.line([(x1, y), (x1 + p.tick, y)], fill=self.text, width=line)
            # A gap between tick and label: a tick touching '0.5' reads as '-0.5'.
            d.text((x1 + p.tick + p.gap, y), label(frac), fill=self.text, font=f, anchor="lm")
        d.text((p.caption.x0, p.caption.y0), self.caption, fill=self.text, font=f, anchor="la")


def loss_label(vmin: float, vmax: float, log: bool) -> Callable[[float], str]:
    """Labels of a loss legend over the frame's (vmin, vmax): the raw loss (10 ** v when ``log``)."""
    return lambda frac: format_loss(10.0 ** (vmin + frac * (vmax - vmin)) if log else vmin + frac * (vmax - vmin))


def convexity_label(lo: float, hi: float) -> Callable[[float], str]:
    """Labels of the convexity legend over ``convexity_range``: its ends say what the colour means (0: locally
    convex; the top of the range and above: that much negative curvature, or more, against the positive)."""
    def label(frac: float) -> str:
        v = f"{lo + frac * (hi - lo):.3g}"
        return f"{v} convex" if frac <= 0.0 else f"{v}+ non-convex" if frac >= 1.0 else v
    return label


def draw_card(img, text: str, subtitle: str, opacity: float, color: str) -> None:
    """Centre a card's text (and subtitle) on the PIL image ``img`` with ``opacity`` (0 … 1), each line shrunk to
    fit the frame's width (``layout.card_layout``)."""
    if opacity <= 0:
        return
    w, h = img.size
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    c = (*rgb(color), int(round(255 * opacity)))
    for name, (box, size) in card_layout(text, subtitle, w, h).items():
        d.text((box.x0, box.y0), text if name == "title" else subtitle, fill=c, font=font(size, bold=name == "title"),
               anchor="la")
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
    (default: the image's bottom margin)."""
    size = max(8, int(height / 40))
    margin = int(0.025 * height)
    kw, kh = int(max(text_size(n, size)[0] for n, _ in runs) + 1.5 * size), int(1.35 * size) * len(runs)
    y1 = height - margin if bottom is None else bottom
    draw_key(img, runs, Box(width - margin - kw, y1 - kh, width - margin, y1), size, text_color)


def draw_key(img, runs: Sequence[tuple[str, str]], box: Box, size: int, text_color: str) -> None:
    """The run key in ``box`` (``layout.key_size`` big): a dot of each run's colour and its name per line."""
    draw = ImageDraw.Draw(img)
    f, pitch = font(size), int(1.35 * size)
    r = max(2.0, size / 3)
    for i, (name, colour) in enumerate(runs):
        cy = box.y0 + i * pitch + pitch / 2
        cx = box.x0 + r + 1
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb(colour))
        draw.text((box.x0 + 1.5 * size, cy), name, font=f, fill=rgb(text_color), anchor="lm")


def draw_axis(img, box: Box, ticks: Sequence[tuple[float, str]], x_of: Callable[[np.ndarray], np.ndarray],
              span: tuple[float, float], size: int, text_color: str) -> None:
    """A 1D film's axis in ``box``: a line under the curve from alpha ``span[0]`` to ``span[1]`` with a tick and a
    label per (alpha, label) of ``ticks``; ``x_of``: alphas (n,) → pixel columns (n,) of the curve's floor seen
    by this frame's camera. Labels that would leave the box or touch a neighbour are skipped."""
    d = ImageDraw.Draw(img)
    col = rgb(text_color)
    f = font(size)
    xa, xb = np.clip(np.sort(x_of(np.asarray(span, dtype=np.float64))), box.x0, box.x1)
    y = box.y0 + 1
    tick = max(3, size // 3)
    d.line([(xa, y), (xb, y)], fill=col, width=max(1, size // 12))
    taken: list[tuple[float, float]] = []
    xs = x_of(np.array([a for a, _ in ticks], dtype=np.float64))
    # Named ends first, so a number never crowds out 'init' or 'final'.
    order = sorted(range(len(ticks)), key=lambda k: not ticks[k][1][:1].isalpha())
    for k in order:
        x, label = float(xs[k]), ticks[k][1]
        w = text_size(label, size)[0]
        lo, hi = x - w / 2, x + w / 2
        if not (xa - 0.5 <= x <= xb + 0.5) or lo < box.x0 or hi > box.x1 or \
                any(lo < b + size * 0.6 and a < hi + size * 0.6 for a, b in taken):
            continue
        taken.append((lo, hi))
        d.line([(x, y), (x, y + tick)], fill=col, width=max(1, size // 12))
        d.text((x, y + tick + 1), label, fill=col, font=f, anchor="ma")


def axis_ticks(lo: float, hi: float, endpoints: Sequence[tuple[float, str]]) -> list[tuple[float, str]]:
    """(alpha, label) ticks of a 1D film's axis over [lo, hi]: round numbers, an endpoint's name in place of its
    number (and of numbers close to it)."""
    named = {round(a, 9): name for a, name in endpoints if lo <= a <= hi}
    values = [v for v in MaxNLocator(5).tick_values(lo, hi) if lo - 1e-9 <= v <= hi + 1e-9]
    # A number next to a name would crowd it: numbers keep an eighth of the axis away from the names.
    ticks = [(float(v), f"{v:g}") for v in values if all(abs(v - a) >= (hi - lo) / 8 for a in named)]
    return ticks + [(a, name) for a, name in named.items()]


def run_color(look: LookSpec, i: int) -> str:
    """Colour of run ``i`` (0: the primary run, drawn in marker_color): its marker, path and key entry."""
    return look.marker_color if i == 0 else look.run_colors[(i - 1) % len(look.run_colors)]


class FrameOverlays:
    """The 2D overlays of one panel's frames (what ``spec`` asks for) at the boxes of its ``layout``: title and
    info text (``text``, None without them), the colour legend, the loss-curve inset, the run key and a 1D film's
    axis. ``background``: the inset's backing colour; ``log``: values are log10 of the loss."""

    def __init__(self, look: LookSpec, spec: OverlaySpec, layout: PanelLayout, log: bool, background: str):
        self.look, self.spec, self.layout, self.log, self.background = look, spec, layout, log, background
        boxes = layout.boxes
        self.text = TextLayer(look, spec.title, layout) if "title" in boxes or "info" in boxes else None
        self.legend = None
        if layout.legend is not None:
            cmap = look.convexity_colormap if look.color_by == "convexity" else look.colormap
            self.legend = Legend(layout, cmap, spec.legend, look.text_color)
        self._inset = self._inset_for = None
        self._canvas: Optional[Image.Image] = None  # the frame-sized Pillow image the regions are drawn on
        self._regions = None

    def draw(self, img: np.ndarray, state: FrameState, x_of: Optional[Callable] = None,
             span: tuple[float, float] = (0.0, 1.0), whole: bool = False) -> np.ndarray:
        """``img`` (H, W, 3|4) uint8 with the frame's overlays (``img`` itself, drawn on in place). ``x_of``:
        alphas → pixel columns of a 1D curve's floor in this frame, for the axis over ``span``.

        Only the overlays' regions (:meth:`regions`) go to Pillow and back: a whole 1080p frame's round trip
        (``Image.fromarray``, ``np.asarray``) took 6 of the 8 ms the default overlays cost, 21 ms at 4K. They are
        copied into a canvas kept from frame to frame, drawn on there exactly as on the whole frame, and copied
        back, so the pixels are the same (``whole=True`` draws on the whole frame, for the tests to compare)."""
        if not self.layout.boxes:
            return img
        h, w = img.shape[:2]
        if whole:
            pil = Image.fromarray(img)
            self._draw_on(pil, state, x_of, span)
            return np.asarray(pil)
        mode = "RGBA" if img.shape[2] == 4 else "RGB"
        if self._canvas is None or self._canvas.size != (w, h) or self._canvas.mode != mode:
            self._canvas = Image.new(mode, (w, h))
        regions = self.regions(w, h)
        for x0, y0, x1, y1 in regions:
            self._canvas.paste(Image.fromarray(img[y0:y1, x0:x1]), (x0, y0))
        self._draw_on(self._canvas, state, x_of, span)
        if not img.flags.writeable:
            img = img.copy()
        for x0, y0, x1, y1 in regions:
            img[y0:y1, x0:x1] = np.asarray(self._canvas.crop((x0, y0, x1, y1)))
        return img

    def regions(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """(x0, y0, x1, y1) pixel rectangles that hold everything the overlays draw: each box with a margin of
        two text lines (anchors, descenders, a label longer than the layout's sample), the legend's out to the
        right edge (its tick labels run right of the bar and their width depends on the frame's values)."""
        if self._regions is None or self._regions[0] != (width, height):
            m = 2 * max(self.layout.title_size, self.layout.text_size)
            rects = []
            for name, b in self.layout.boxes.items():
                x1 = width if name == "legend" else b.x1 + m
                rects.append((max(0, int(b.x0 - m)), max(0, int(b.y0 - m)), min(width, int(math.ceil(x1))),
                              min(height, int(math.ceil(b.y1 + m)))))
            self._regions = ((width, height), [r for r in rects if r[0] < r[2] and r[1] < r[3]])
        return self._regions[1]

    def _draw_on(self, pil, state: FrameState, x_of: Optional[Callable], span: tuple[float, float]) -> None:
        look, boxes = self.look, self.layout.boxes
        if self.text is not None:
            self.text.draw(pil)
        if self.legend is not None:
            lo, hi = look.convexity_range
            self.legend.draw(pil, convexity_label(lo, hi) if look.color_by == "convexity" else
                             loss_label(state.vmin, state.vmax, self.log))
        if "inset" in boxes and state.curve is not None:
            self._loss_inset(state.curve).draw(pil, state.step)
        if "key" in boxes:
            draw_key(pil, [(name, run_color(look, i)) for i, name in enumerate(self.spec.runs)], boxes["key"],
                     self.layout.text_size, look.text_color)
        if "axis" in boxes and x_of is not None:
            draw_axis(pil, boxes["axis"], axis_ticks(*span, self.spec.endpoints), x_of, span, self.layout.text_size,
                      look.text_color)

    def _loss_inset(self, curve: tuple) -> LossInset:
        if self._inset is None or self._inset_for is not curve:
            self._inset_for = curve
            look = self.look
            self._inset = LossInset(curve[0], curve[1], self.layout.boxes["inset"], self.layout.text_size, self.log,
                                    look.text_color, look.marker_color, self.background)
        return self._inset


__all__ = ["FrameOverlays", "LossInset", "Legend", "axis_ticks", "convexity_label", "draw_axis", "draw_card",
           "draw_key", "draw_run_key", "loss_label", "run_color", "veil", "contact_sheet", "sheet_shape", "font",
           "smooth"]
