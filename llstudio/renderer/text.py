"""The frame's text drawn by VTK: the title (top left) and the step/epoch/loss/range line (bottom left)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..config.scene import LookSpec
from ..film.timeline import FrameState


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
    """Plain VTK text actors at pixel positions with a margin (unlike corner annotations): the ``title`` (none when
    empty), shrunk to fit the width, and the info line, broken into lines where it would not fit. Sizes are in
    window pixels, ``ss`` times the output's (``height`` high)."""

    def __init__(self, plotter, look: LookSpec, title: str, height: int, win_w: int, win_h: int, ss: int):
        self.plotter, self.look, self.height, self.win_h, self.ss = plotter, look, height, win_h, ss
        size = max(8, int(height / 42)) * ss
        margin = int(0.025 * height) * ss
        self.room = win_w - 3 * margin  # what a line of text may span
        self.title_actor = None
        if title:
            self.title_actor = plotter.add_text(title, position=(margin * 1.5, win_h - margin - 1.4 * size),
                                                font_size=size, color=look.text_color, name="title")
            self._fit_title(margin)
        self.info_actor = plotter.add_text(" ", position=(margin * 1.5, margin), font_size=int(size * 0.8),
                                           color=look.text_color, name="info")

    def _bbox(self, actor) -> list[float]:
        bbox = [0.0] * 4
        actor.GetBoundingBox(self.plotter.renderer, bbox)
        return bbox

    def _fit_title(self, margin: int) -> None:
        """Shrink the title's font until it fits the frame's width (a narrow panel would clip it), down to 10
        points. (pyvista's add_text sets twice the font size it is given: these are VTK's own sizes.)"""
        actor, prop = self.title_actor, self.title_actor.GetTextProperty()
        size, floor = prop.GetFontSize(), 10 * self.ss
        while size > floor:
            bbox = self._bbox(actor)
            if bbox[1] - bbox[0] <= self.room:
                break
            size = max(floor, int(size * 0.9))
            prop.SetFontSize(size)
            actor.SetPosition(margin * 1.5, self.win_h - margin - 0.7 * size)

    def info_height(self) -> int:
        """Output pixels the info text takes at the bottom left, with a margin above it."""
        bbox = self._bbox(self.info_actor)
        return int((bbox[3] - bbox[2]) / self.ss + 0.03 * self.height)

    def update(self, state: FrameState, range_text: Optional[str] = None) -> None:
        """The info line of the frame: step, epoch (when the look shows it), loss and ``range_text``."""
        epoch = f"    epoch {state.epoch:.2f}" if self.look.epoch and state.epoch is not None else ""
        self._set_text([f"step {state.step:,.0f}", *([epoch.strip()] if epoch else []),
                        f"loss {format_loss(state.center_loss, 4)}", *([range_text] if range_text else [])])

    def _set_text(self, parts: list[str]) -> None:
        """Show ``parts`` on one line, four spaces apart, or broken into as few lines as fit the frame's width
        (a narrow panel would clip the end of the line)."""
        actor = self.info_actor

        def width(text: str) -> float:
            actor.SetInput(text)
            bbox = self._bbox(actor)
            return bbox[1] - bbox[0]

        lines = [parts[0]]
        for part in parts[1:]:
            joined = f"{lines[-1]}    {part}"
            if width(joined) <= self.room:
                lines[-1] = joined
            else:
                lines.append(part)
        actor.SetInput("\n".join(lines))
