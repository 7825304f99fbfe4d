"""Where a frame's 2D overlays go: titles, the info line, the colour legend, the loss inset, the run key, a 1D
film's axis and the title/end cards are boxes placed so that none overlaps another or the frame's edge, and what
they leave of each panel is the free rectangle the surface may fill (the camera is fitted into it).

Pure: a scene and an output size in, pixel boxes out. Text is measured with the TrueType font it is drawn with
(Pillow's FreeType, no window), so a box is exactly what its text takes. Everything is drawn in one font family,
DejaVu Sans (bundled with matplotlib). Coordinates are pixels of a panel (or of the frame, for cards), origin at
the top left, y down.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Optional, Sequence

import matplotlib
import numpy as np
from PIL import ImageFont

from ..config.presets import QUALITIES
from ..film.panels import gap_pixels, grid_shape, panel_size

# Text heights as fractions of the frame's height (not the panel's: a 3x3 grid's labels stay readable).
TITLE_SIZE = 0.034
TEXT_SIZE = 0.027  # info line, legend, run key, axis labels: at least 2.5% of the frame height
CARD_SIZE, CARD_SUBTITLE_SIZE = 1 / 13, 1 / 30
MIN_TEXT = 8  # pixels: the smallest text drawn at all
# Ticks the colour legend labels, top to bottom when room allows.
LEGEND_TICKS = 5


@functools.lru_cache(maxsize=64)
def font(size: int, bold: bool = False):
    """DejaVu Sans (bold) of ``size`` pixels: matplotlib's bundled copy (always installed with matplotlib), else
    Pillow's default. The one font family of every overlay."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)
    try:
        return ImageFont.truetype(path, max(6, int(size)))
    except OSError:  # pragma: no cover
        return ImageFont.load_default()


def text_size(text: str, size: int, bold: bool = False) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` (lines split at newlines) drawn at ``size`` with anchor 'la': the
    advance width and ``line_height`` per line."""
    f = font(size, bold)
    lines = text.split("\n")
    return int(np.ceil(max(f.getlength(line) for line in lines))), line_height(size, bold) * len(lines)


def line_height(size: int, bold: bool = False) -> int:
    """Pixels one line of text takes, ascender to descender."""
    ascent, descent = font(size, bold).getmetrics()
    return ascent + descent


@dataclasses.dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle [x0, x1) x [y0, y1) in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    def overlaps(self, other: "Box") -> bool:
        """Whether the two share any area (touching edges do not)."""
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def within(self, other: "Box") -> bool:
        """Whether this box lies inside ``other``."""
        return self.x0 >= other.x0 and self.y0 >= other.y0 and self.x1 <= other.x1 and self.y1 <= other.y1

    def grown(self, d: float) -> "Box":
        return Box(self.x0 - d, self.y0 - d, self.x1 + d, self.y1 + d)

    def shifted(self, dx: float, dy: float) -> "Box":
        return Box(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)


@dataclasses.dataclass(frozen=True)
class OverlaySpec:
    """What one panel (or a single-panel film) shows over its surface.

    ``title``: '' for none; ``info``: the step/loss line, with ``info_parts`` the widest parts it will show (e.g.
    'step 1,000'), which size its box; ``legend``: the colour bar's caption, None for no bar; ``legend_labels``:
    the widest labels it will show; ``inset``: the loss inset's corner, None for none; ``runs``: the run key's
    names (empty: no key); ``axis``: a 1D film's axis under the curve, with ``endpoints`` its named alphas;
    ``aspect``: width / height of what the surface looks like on screen (a map seen from above: 1), which picks the
    free rectangle that shows it largest.
    """

    title: str = ""
    info: bool = True
    info_parts: tuple[str, ...] = ("step 888,888", "epoch 888.88", "loss 8.888e-05")
    legend: Optional[str] = None
    legend_labels: tuple[str, ...] = ("8.88e-05",)
    inset: Optional[str] = None
    runs: tuple[str, ...] = ()
    axis: bool = False
    endpoints: tuple[tuple[float, str], ...] = ()
    aspect: float = 1.6


@dataclasses.dataclass(frozen=True)
class Legend:
    """The colour legend's parts: the ``bar`` (top = high values), its ``caption`` above, tick labels at the
    ``ticks`` fractions (0 = bottom), ``size`` the labels' pixels; ``tick``: tick length; ``gap``: tick to label.
    ``horizontal``: a bar along the bottom of a tall panel instead (0 = left; low values left), its caption on its
    left, ticks and labels under it."""

    bar: Box
    caption: Box
    ticks: tuple[float, ...]
    size: int
    tick: int
    gap: int
    horizontal: bool = False


@dataclasses.dataclass(frozen=True)
class PanelLayout:
    """The boxes of one panel of ``width`` x ``height`` pixels: ``boxes`` by name ('title', 'info', 'legend',
    'inset', 'key', 'axis'), each only when shown; ``free``: the rectangle the surface may fill; text sizes in
    pixels; ``info_lines``: the info parts per line; ``legend``: the legend's parts, or None."""

    width: int
    height: int
    boxes: dict
    free: Box
    margin: int
    title_size: int
    text_size: int
    info_lines: tuple[int, ...] = ()
    legend: Optional[Legend] = None

    def free_fraction(self) -> tuple[float, float, float, float]:
        """The free rectangle in normalised panel coordinates (x0, y0, x1, y1), origin top left, y down."""
        f = self.free
        return f.x0 / self.width, f.y0 / self.height, f.x1 / self.width, f.y1 / self.height


def wrap(parts: Sequence[str], size: int, room: float) -> list[list[str]]:
    """``parts`` joined four spaces apart on as few lines as fit ``room`` pixels at ``size`` (a part wider than the
    room gets a line of its own)."""
    lines = [[parts[0]]]
    for part in parts[1:]:
        if text_size("    ".join(lines[-1] + [part]), size)[0] <= room:
            lines[-1].append(part)
        else:
            lines.append([part])
    return lines


def fit_size(text: str, size: int, room: float, bold: bool = False) -> int:
    """The largest size up to ``size`` at which ``text`` fits ``room`` pixels wide, down to MIN_TEXT."""
    while size > MIN_TEXT and text_size(text, size, bold)[0] > room:
        size = max(MIN_TEXT, int(size * 0.92))
    return size


def legend_metrics(spec: OverlaySpec, size: int) -> tuple[int, int, float]:
    """(tick length, gap from tick to label, widest label) of a legend with labels ``size`` pixels high: the gap
    keeps a tick from reading as a minus sign."""
    return max(2, size // 3), max(3, size // 2), max(text_size(s, size)[0] for s in spec.legend_labels)


def legend_parts(spec: OverlaySpec, x1: float, top: float, bottom: float, size: int,
                 bar_w: int) -> Optional[Legend]:
    """The legend right-aligned at ``x1`` and centred between ``top`` and ``bottom``: a caption over a bar with
    ticks and labels to its right (a gap between tick and label, so a tick never reads as a minus sign). None when
    not even two labels fit."""
    tick, gap, label_w = legend_metrics(spec, size)
    cap_w, cap_h = text_size(spec.legend, size)
    lh = line_height(size)
    room = bottom - top - cap_h - gap - lh  # half a label sticks out above the top tick and below the bottom one
    n = LEGEND_TICKS
    while n > 2 and room < 1.4 * lh * (n - 1):
        n -= 2 if n == 5 else 1
    if room < 1.2 * lh:
        return None
    bar_h = int(min(max(0.5 * (bottom - top), 1.4 * lh * (n - 1)), room))
    x0 = x1 - (bar_w + tick + gap + label_w)
    # The caption sits over the bar, or as far left as it must to stay inside the column.
    cap_x0 = min(x0 + bar_w / 2 - cap_w / 2, x1 - cap_w)
    block = cap_h + gap + lh / 2 + bar_h + lh / 2
    y = top + max(0.0, (bottom - top - block) / 2)
    caption = Box(cap_x0, y, cap_x0 + cap_w, y + cap_h)
    bar = Box(x0, caption.y1 + gap + lh / 2, x0 + bar_w, caption.y1 + gap + lh / 2 + bar_h)
    return Legend(bar, caption, tuple(np.linspace(0.0, 1.0, n)), size, tick, gap)


def legend_box(lg: Legend, x1: float) -> Box:
    """Everything the legend draws: caption, bar, ticks and labels (half a line above and below the bar; under a
    horizontal bar, out to ``x1``, half a label past its right end)."""
    if lg.horizontal:
        return Box(lg.caption.x0, min(lg.caption.y0, lg.bar.y0), x1,
                   lg.bar.y1 + lg.tick + lg.gap + line_height(lg.size))
    half = line_height(lg.size) / 2
    return Box(min(lg.bar.x0, lg.caption.x0), lg.caption.y0, x1, lg.bar.y1 + half)


def horizontal_legend(spec: OverlaySpec, x1: float, y1: float, room: float, size: int,
                      bar_w: int) -> Optional[Legend]:
    """A horizontal legend right-aligned at ``x1`` with its bottom at ``y1``, at most ``room`` wide: the caption,
    then a bar ``bar_w`` thick with ticks and labels under it, as long as LEGEND_TICKS labels (or fewer) need
    with a gap between them, and at most half of ``room`` more. None when not even two labels fit."""
    tick, gap, label_w = legend_metrics(spec, size)
    cap_w, cap_h = text_size(spec.legend, size)
    lead = max(cap_w + 2 * gap, label_w / 2)  # from the caption's left to the bar: the first label fits under it
    length = room - lead - label_w / 2
    n = LEGEND_TICKS
    while n > 2 and length < (n - 1) * (label_w + 2 * gap):
        n -= 2 if n == 5 else 1
    if length < (n - 1) * (label_w + 2 * gap):
        return None
    length = min(length, max((n - 1) * (label_w + 2 * gap), 0.5 * room))
    bar_y1 = y1 - tick - gap - line_height(size)
    bar = Box(x1 - label_w / 2 - length, bar_y1 - bar_w, x1 - label_w / 2, bar_y1)
    cy = (bar.y0 + bar.y1) / 2
    caption = Box(bar.x0 - lead, cy - cap_h / 2, bar.x0 - lead + cap_w, cy + cap_h / 2)
    return Legend(bar, caption, tuple(np.linspace(0.0, 1.0, n)), size, tick, gap, horizontal=True)


def key_size(runs: Sequence[str], size: int) -> tuple[int, int]:
    """(width, height) of the run key: a dot and a name per line."""
    w = max(text_size(n, size)[0] for n in runs)
    return int(w + 1.5 * size), int(1.35 * size) * len(runs)


def panel_layout(spec: OverlaySpec, width: int, height: int, frame_height: Optional[int] = None) -> PanelLayout:
    """The boxes of a panel of ``width`` x ``height`` in a frame ``frame_height`` high (the panel's own height for
    a single-panel film), and the free rectangle they leave for the surface.

    The title runs along the top and the info line along the bottom, on the left; the legend, the run key and a
    loss inset in a right corner stack in a right-hand column, an inset in a left corner sits in the left column;
    a 1D film's axis is a band over the info line. The free rectangle is the largest one clear of every box by a
    margin and of the panel's edges."""
    fh = frame_height or height
    m = max(3, int(round(min(0.022 * fh, 0.05 * min(width, height)))))
    gap = max(2, m // 2)
    tsize = max(MIN_TEXT, int(round(TEXT_SIZE * fh)))
    # Text never takes more than a twelfth of a small panel's height per line.
    tsize = max(MIN_TEXT, min(tsize, int(height / 12)))
    boxes: dict[str, Box] = {}
    title_size = 0
    inner = width - 2 * m
    if spec.title:
        title_size = fit_size(spec.title, max(tsize, min(int(round(TITLE_SIZE * fh)), int(height / 10))), inner)
        w, h = text_size(spec.title, title_size)
        boxes["title"] = Box(m, m, m + min(w, inner), m + h)
    info_lines: tuple[int, ...] = ()
    if spec.info:
        lines = wrap(spec.info_parts, tsize, inner)
        info_lines = tuple(len(line) for line in lines)
        w, h = text_size("\n".join("    ".join(line) for line in lines), tsize)
        boxes["info"] = Box(m, height - m - h, m + min(w, inner), height - m)
    inset_w, inset_h = int(0.3 * width), int(0.24 * height)
    col_x1 = width - m
    bar_w = max(4, int(0.45 * tsize))
    lg_w = 0
    if spec.legend:
        lg_tick, lg_gap, label_w = legend_metrics(spec, tsize)
        lg_w = bar_w + lg_tick + lg_gap + label_w
        lg_w = max(lg_w, text_size(spec.legend, tsize)[0])
    key_w, key_h = key_size(spec.runs, tsize) if spec.runs else (0, 0)
    right_inset = spec.inset in ("top_right", "bottom_right")
    col_w = max(lg_w, key_w, inset_w if right_inset else 0)
    col_x0 = col_x1 - col_w

    def clear_of(name: str, x0: float, x1: float) -> bool:
        b = boxes.get(name)
        return b is None or b.x1 + gap <= x0 or x1 + gap <= b.x0

    top = m if clear_of("title", col_x0, col_x1) else boxes["title"].y1 + gap
    bottom = height - m if clear_of("info", col_x0, col_x1) else boxes["info"].y0 - gap
    if spec.inset == "top_right":
        boxes["inset"] = Box(col_x1 - inset_w, top, col_x1, top + inset_h)
        top = boxes["inset"].y1 + gap
    elif spec.inset == "bottom_right":
        boxes["inset"] = Box(col_x1 - inset_w, bottom - inset_h, col_x1, bottom)
        bottom = boxes["inset"].y0 - gap
    if spec.runs:
        boxes["key"] = Box(col_x1 - key_w, bottom - key_h, col_x1, bottom)
        bottom = boxes["key"].y0 - gap
    legend = None
    if spec.legend:
        legend = legend_parts(spec, col_x1, top, bottom, tsize, bar_w)
        if legend is not None:
            boxes["legend"] = legend_box(legend, col_x1)
        if not (spec.runs or spec.inset or spec.axis):
            legend = _legend_along_the_bottom(spec, boxes, legend, width, height, m, gap, tsize, bar_w)
    if spec.inset in ("top_left", "bottom_left"):
        ltop = m if clear_of("title", m, m + inset_w) else boxes["title"].y1 + gap
        lbottom = height - m if clear_of("info", m, m + inset_w) else boxes["info"].y0 - gap
        y0 = ltop if spec.inset == "top_left" else lbottom - inset_h
        boxes["inset"] = Box(m, y0, m + inset_w, y0 + inset_h)
    if spec.axis:
        ah = line_height(tsize) + max(3, tsize // 2)
        above = min([b.y0 for n, b in boxes.items() if n in ("info", "key") or
                     (n == "inset" and spec.inset.startswith("bottom"))] + [height - m]) - gap
        x1 = min([b.x0 - gap for n, b in boxes.items() if n in ("legend", "key", "inset") and b.y1 > above - ah]
                 + [width - m])
        boxes["axis"] = Box(m, above - ah, x1, above)
    free = free_rectangle(width, height, list(boxes.values()), m, spec.aspect)
    return PanelLayout(width, height, boxes, free, m, title_size, tsize, info_lines, legend)


def _legend_along_the_bottom(spec: OverlaySpec, boxes: dict, legend: Optional[Legend], width: int, height: int,
                             m: int, gap: int, size: int, bar_w: int) -> Optional[Legend]:
    """The legend that leaves the surface the larger picture (of ``spec.aspect``): ``legend`` in the right-hand
    column, or a horizontal one at the bottom right (beside the info line where there is room, else over it);
    ``boxes['legend']`` is set to the one chosen. A tall panel (one of two or three side by side) gives its width
    to the surface this way."""
    info = boxes.get("info")
    beside = info is not None and width - m - (info.x1 + 2 * gap) >= 0.4 * (width - 2 * m)
    y1 = height - m if info is None or beside else info.y0 - gap
    room = width - m - (info.x1 + 2 * gap) if beside else width - 2 * m
    low = horizontal_legend(spec, width - m, y1, room, size, bar_w)
    if low is None:
        return legend
    others = [b for n, b in boxes.items() if n != "legend"]
    flat = [*others, legend_box(low, width - m)]
    if legend is not None and _picture(free_rectangle(width, height, flat, m, spec.aspect), spec.aspect) <= \
            _picture(free_rectangle(width, height, list(boxes.values()), m, spec.aspect), spec.aspect):
        return legend
    boxes["legend"] = flat[-1]
    return low


def _picture(free: Box, aspect: float) -> float:
    """The width of the largest picture of ``aspect`` (width / height) inside ``free``."""
    return min(free.w, aspect * free.h)


def free_rectangle(width: int, height: int, boxes: Sequence[Box], margin: float, aspect: float = 1.0) -> Box:
    """The rectangle inside the panel less ``margin`` at its edges, ``margin`` clear of every box, that holds the
    largest picture of width / height ``aspect`` (the larger area on a tie): the candidate edges are the panel's
    and the boxes', all pairs tried at once."""
    grown = [b.grown(margin) for b in boxes]
    xs = np.unique([margin, width - margin] + [v for b in grown for v in (b.x0, b.x1)])
    ys = np.unique([margin, height - margin] + [v for b in grown for v in (b.y0, b.y1)])
    xs = xs[(xs >= margin) & (xs <= width - margin)]
    ys = ys[(ys >= margin) & (ys <= height - margin)]
    x0, x1, y0, y1 = np.meshgrid(xs, xs, ys, ys, indexing="ij")
    ok = (x1 > x0) & (y1 > y0)
    for b in grown:
        ok &= ~((x0 < b.x1) & (b.x0 < x1) & (y0 < b.y1) & (b.y0 < y1))
    fits = np.minimum(x1 - x0, aspect * (y1 - y0))  # the width of the largest picture inside
    area = np.where(ok, fits * 1e6 + (x1 - x0) * (y1 - y0), -1.0)
    if not ok.any():  # a panel too small for its overlays (a tiny size, many panels): the whole panel, overlaid
        return Box(float(margin), float(margin), float(width - margin), float(height - margin))
    i = np.unravel_index(int(np.argmax(area)), area.shape)
    return Box(float(x0[i]), float(y0[i]), float(x1[i]), float(y1[i]))


def card_layout(text: str, subtitle: str, width: int, height: int) -> dict:
    """A title or end card centred on a ``width`` x ``height`` frame: {'title': (Box, size), 'subtitle': (Box,
    size)} (no subtitle when empty), each shrunk to fit the frame's width less its margins."""
    m = max(3, int(round(0.04 * height)))
    big = fit_size(text, max(10, int(height * CARD_SIZE)), width - 2 * m, bold=True)
    out = {}
    tw, th = text_size(text, big, bold=True)
    if subtitle:
        small = fit_size(subtitle, max(MIN_TEXT, int(height * CARD_SUBTITLE_SIZE)), width - 2 * m)
        sw, sh = text_size(subtitle, small)
        y = (height - (th + 0.3 * sh + sh)) / 2
        out["subtitle"] = (Box((width - sw) / 2, y + th + 0.3 * sh, (width + sw) / 2, y + th + 1.3 * sh), small)
    else:
        y = (height - th) / 2
    out["title"] = (Box((width - tw) / 2, y, (width + tw) / 2, y + th), big)
    return out


def endpoint_name(endpoint) -> str:
    """An interpolation endpoint for an axis label: 'init', 'final', 'step 300', a run's name or a file's stem."""
    if isinstance(endpoint, int):
        return f"step {endpoint}"
    if endpoint in ("initial", "final"):
        return "init" if endpoint == "initial" else "final"
    if endpoint.startswith("run:"):
        return endpoint[4:]
    return os.path.splitext(os.path.basename(endpoint))[0]


def convexity_labels(lo: float, hi: float, n: int = 3) -> tuple[str, ...]:
    """The convexity legend's labels, bottom to top: what the colour means at the ends ('convex', 'non-convex')."""
    values = np.linspace(lo, hi, n)
    return tuple([f"{values[0]:.3g} convex", *(f"{v:.3g}" for v in values[1:-1]),
                  f"{values[-1]:.3g}+ non-convex"])


def look_overlays(look, title: str = "", one_d: bool = False, runs: Sequence[str] = (),
                  info_parts: Optional[Sequence[str]] = None, endpoints: Sequence[tuple[float, str]] = (),
                  legend: bool = True, z_scale: float = 0.5) -> OverlaySpec:
    """What a ``look`` shows: the title, info line, run key (``runs``, when more than one) and a 1D axis with
    ``look.overlay``; the legend (unless ``legend`` is False: another panel shows it) and the loss inset with their
    own switches. ``z_scale``: the surface's height over its side, which sets a 1D chart's aspect."""
    text = look.overlay
    aspect = 1.0 / max(z_scale, 0.1) if one_d else 1.0 if look.view == "contours" else 1.6
    caption, labels = None, ("0.000888", "8.88e-05")
    if legend and look.legend:
        if look.color_by == "convexity":
            caption, labels = "|λmin/λmax|", convexity_labels(*look.convexity_range)
        else:
            caption = "loss"
    kw = {} if info_parts is None else {"info_parts": tuple(info_parts)}
    return OverlaySpec(title if text else "", text, legend=caption, legend_labels=labels,
                       inset=look.inset_corner if look.loss_inset else None,
                       runs=tuple(runs) if text and len(runs) > 1 else (), axis=one_d and text,
                       endpoints=tuple(endpoints), aspect=aspect, **kw)


def overlay_spec(scene, runs: bool = True, legend: bool = True) -> OverlaySpec:
    """What a film of ``scene`` (one panel's scene) shows over its surface; ``runs`` / ``legend``: whether this
    panel carries the run key and the colour legend (a multi-panel film shows each once when they agree)."""
    look, training = scene.look, scene.training
    parts = [f"step {training.steps:,.0f}"] + ([f"epoch {training.steps:.2f}"] if look.epoch else []) + \
        ["loss 8.888e-05"] + (["range ±8.888e-05"] if scene.grid.zoom != 1.0 else [])
    one_d = scene.grid.dimensions == 1
    ends: tuple = ()
    if one_d and scene.directions.kind == "interpolation":
        d = scene.directions
        ends = ((0.0, endpoint_name(d.start or "initial")), (1.0, endpoint_name(d.end or "final")))
    return look_overlays(look, scene.title, one_d, training.run_names() if runs else (), parts, ends, legend,
                         scene.scaling.z_scale)


def film_layouts(scene, width: int, height: int) -> list[PanelLayout]:
    """The layout of every panel of a film of ``scene`` at ``width`` x ``height`` (one for a single-panel film).
    Panels that show the same runs carry one run key, in the last panel; panels on a shared range with the same
    colours, one legend."""
    if not scene.panels:
        return [panel_layout(overlay_spec(scene), width, height)]
    scenes = scene.panel_scenes()
    cols, rows = grid_shape(len(scenes), scene.layout.columns)
    pw, ph = panel_size(width, height, cols, rows, gap_pixels(scene.layout, height))
    return [panel_layout(spec, pw, ph, height) for spec in panel_specs(scenes, scene.layout.shared_range)]


def panel_specs(scenes: Sequence, shared_range: bool) -> list[OverlaySpec]:
    """The overlay specs of a multi-panel film's panel ``scenes``: a run key and a legend that would repeat the
    same thing in every panel are kept in the last panel that has them."""
    names = [tuple(s.training.run_names()) for s in scenes]
    one_key = len(set(names)) == 1
    shows = [s.look.overlay and s.look.legend for s in scenes]
    colours = {(s.look.color_by, s.look.colormap, s.look.convexity_colormap, tuple(s.look.convexity_range),
                s.scaling.log) for s, show in zip(scenes, shows) if show}
    one_legend = len(colours) == 1 and (shared_range or all(s.look.color_by == "convexity"
                                                            for s, show in zip(scenes, shows) if show))
    last_legend = max((i for i, show in enumerate(shows) if show), default=-1)
    return [overlay_spec(s, runs=not one_key or i == len(scenes) - 1, legend=not one_legend or i == last_legend)
            for i, s in enumerate(scenes)]


def quality_layouts(scene, quality: str) -> list[PanelLayout]:
    """:func:`film_layouts` at a ``-q`` preset's size."""
    q = QUALITIES[quality]
    return film_layouts(scene, q.width, q.height)


__all__ = ["Box", "Legend", "OverlaySpec", "PanelLayout", "card_layout", "fit_size", "font", "free_rectangle",
           "line_height", "look_overlays", "overlay_spec", "film_layouts", "panel_layout", "panel_specs", "quality_layouts", "text_size", "wrap"]
