"""The frame's text: the title (top left) and the step/epoch/loss/range line (bottom left), drawn with Pillow in
the boxes the layout gives them, in the one font family of every overlay."""

from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import ImageDraw

from ..config.colors import rgb
from ..config.scene import LookSpec
from ..film.timeline import FrameState
from .layout import PanelLayout, fit_size, font, text_size, wrap


def format_loss(v: float, digits: int = 3) -> str:
    """A loss for a label, to ``digits`` significant digits ('g'); 'diverged' when it is not finite."""
    return f"{v:.{digits}g}" if np.isfinite(v) else "diverged"


def range_label(alphas: np.ndarray, betas: np.ndarray, scale: float) -> str:
    """The grid's current range for the info text, e.g. 'range ±0.25' (alpha and beta alike, symmetric) or
    'alpha [-0.05, 0.15]  beta ±0.1'."""
    def span(ax):
        lo, hi = float(ax[0]) * scale, float(ax[-1]) * scale
        return f"±{hi:.3g}" if np.isclose(lo, -hi) else f"[{lo:.3g}, {hi:.3g}]"

    a = span(alphas)
    if len(betas) == 1 or np.allclose(alphas[[0, -1]], betas[[0, -1]]):
        return f"range {a}"
    return f"alpha {a}  beta {span(betas)}"


class TextLayer:
    """The title (none when empty) and the info line of one panel, in the boxes of ``layout``: the info line is
    broken into as few lines as fit its box (and shrunk when even that would not fit)."""

    def __init__(self, look: LookSpec, title: str, layout: PanelLayout):
        self.look, self.title, self.layout = look, title, layout
        self.color = rgb(look.text_color)
        self.info_text = ""

    def update(self, state: FrameState, range_text: Optional[str] = None) -> None:
        """The info line of the frame: step, epoch (when the look shows it), loss and ``range_text``."""
        epoch = f"epoch {state.epoch:.2f}" if self.look.epoch and state.epoch is not None else ""
        parts = [f"step {state.step:,.0f}", *([epoch] if epoch else []),
                 f"loss {format_loss(state.center_loss, 4)}", *([range_text] if range_text else [])]
        box = self.layout.boxes.get("info")
        if box is None:
            self.info_text, self._info_size = "    ".join(parts), self.layout.text_size
            return
        size = self.layout.text_size
        while True:
            text = "\n".join("    ".join(line) for line in wrap(parts, size, box.w))
            w, h = text_size(text, size)
            if size <= 6 or (w <= box.w + 0.5 and h <= box.h + 0.5):
                break
            size -= 1
        self.info_text, self._info_size = text, size

    def draw(self, img) -> None:
        """Draw the title and the info line onto the PIL image ``img``."""
        d = ImageDraw.Draw(img)
        title = self.layout.boxes.get("title")
        if title is not None:
            size = self.layout.title_size
            text = self.title
            if text_size(text, size)[0] > title.w + 0.5:  # at the smallest size and still too long: cut it
                while len(text) > 1 and text_size(text + "…", size)[0] > title.w:
                    text = text[:-1]
                text += "…"
            d.text((title.x0, title.y0), text, fill=self.color, font=font(size), anchor="la")
        info = self.layout.boxes.get("info")
        if info is not None and self.info_text:
            # Bottom-aligned: a shorter text sits on the box's bottom edge, where the line always is.
            lines = self.info_text.split("\n")
            step = text_size("x", self._info_size)[1]
            for k, line in enumerate(lines):
                d.text((info.x0, info.y1 - (len(lines) - k) * step), line, fill=self.color,
                       font=font(self._info_size), anchor="la")


__all__ = ["TextLayer", "fit_size", "format_loss", "range_label"]
