"""Colours as scenes give them ('#rrggbb' or a matplotlib name), as the film and the renderer need them."""

from __future__ import annotations

from matplotlib.colors import to_rgb


def rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' or a colour name → (r, g, b) 0-255."""
    return tuple(int(round(255 * c)) for c in to_rgb(color))
