"""Frames as arrays: straight alpha from the framebuffer's premultiplied one, and PNG stills."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..files import atomic_write


def unpremultiply(img: np.ndarray) -> None:
    """(H, W, 4) uint8 RGBA, in place: premultiplied colour (what blending over a clear, alpha-0 background leaves
    in the framebuffer) → straight colour (what PNG and ProRes expect). Only partly covered pixels change."""
    a = img[..., 3]
    edge = (a > 0) & (a < 255)
    if not edge.any():
        return
    px = img[edge].astype(np.float32)
    px[:, :3] = np.clip(np.rint(px[:, :3] * 255.0 / px[:, 3:4]), 0, 255)
    img[edge] = px.astype(np.uint8)


def save_png(img: np.ndarray, path) -> None:
    """Write an (H, W, 3|4) uint8 image as PNG, atomically. zlib's default level, without Pillow's ``optimize``:
    on a frame with a gradient background that search took 1.4 s for a file 6% smaller (104 ms without it)."""
    atomic_write(path, lambda tmp: Image.fromarray(img).save(tmp, format="PNG"))
