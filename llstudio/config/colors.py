"""Colours as scenes give them ('#rrggbb' or a matplotlib name), as the film and the renderer need them."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb


def rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' or a colour name → (r, g, b) 0-255."""
    return tuple(int(round(255 * c)) for c in to_rgb(color))


# What an 'auto' background gradient mixes into the background at the top: a cool blue-grey, lighter on a dark
# background, darker on a light one.
_AUTO_TOP = {"dark": ((74, 92, 138), 0.30), "light": ((150, 162, 190), 0.25)}


def relative_luminance(rgb01) -> np.ndarray:
    """Relative luminance (WCAG), 0 (black) … 1 (white), of sRGB colours (..., 3) in 0 … 1."""
    c = np.asarray(rgb01, dtype=np.float64)
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def luminance(color: str) -> float:
    """Relative luminance (WCAG) of a colour ('#rrggbb' or a name), 0 (black) … 1 (white)."""
    return float(relative_luminance(np.array(rgb(color)) / 255.0))


def gradient_top(background: str, top: str):
    """The colour at the top of the background gradient ('#rrggbb'), or None for a plain background: ``top`` as
    the look gives it ('auto': the background mixed with a cool blue-grey; 'none': plain)."""
    if top == "none":
        return None
    if top != "auto":
        return top
    tint, share = _AUTO_TOP["dark" if luminance(background) < 0.4 else "light"]
    mixed = [round((1 - share) * b + share * t) for b, t in zip(rgb(background), tint)]
    return "#" + "".join(f"{v:02x}" for v in mixed)
