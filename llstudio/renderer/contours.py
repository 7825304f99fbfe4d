"""Contour lines drawn on the surface by its fragment shader: at evenly spaced levels of its normalised values,
a constant width on screen, anti-aliased, fading where the slope crowds them together.

Line geometry (VTK's contour filter and a line actor) stair-steps at 1-2 pixels, crowds into white bands on steep
walls and breaks into dashes where it dips into the surface at grazing angles. In the shader, each fragment knows
how far it is from the nearest level in its own pixels (the value's screen-space derivative), so the line is the
same width everywhere and its edge is a one-pixel ramp; where levels come closer than a few pixels the lines fade
out instead of filling the wall. Nothing is recomputed per frame: the value is the surface's height, which the
surface layer updates anyway.
"""

from __future__ import annotations

import numpy as np

from ..config.colors import rgb
from ..config.scene import LookSpec

# The value of a fragment: its model-space height over the height of a unit value (the surface's z is
# value * height, so no per-frame data is needed).
_VERTEX_DEC = "//VTK::PositionVC::Dec\nout float llContourValue;"
_VERTEX_IMPL = "//VTK::PositionVC::Impl\n  llContourValue = vertexMC.z * llContourInvHeight;"
_FRAGMENT_DEC = "//VTK::Color::Dec\nin float llContourValue;"
# v: the value in level units (a line where v is a whole number, levels 1 … n); fw: how much v changes per pixel.
_FRAGMENT_IMPL = """//VTK::Color::Impl
  {
    float v = llContourValue * llContourLevels;
    float fw = max(fwidth(v), 1e-6);
    float px = abs(fract(v - 0.5) - 0.5) / fw;
    float line = 1.0 - smoothstep(0.5 * llContourWidth - 0.5, 0.5 * llContourWidth + 0.5, px);
    float fade = 1.0 - smoothstep(llContourFade, 2.5 * llContourFade, fw);
    float inside = step(0.5, v) * step(v, llContourLevels - 0.5);
    float k = llContourAlpha * line * fade * inside;
    ambientColor = mix(ambientColor, ambientIntensity * llContourColor, k);
    diffuseColor = mix(diffuseColor, diffuseIntensity * llContourColor, k);
  }"""


def contour_levels(n: int) -> np.ndarray:
    """The ``n`` levels in (0, 1), evenly spaced, at which lines are drawn: (n,)."""
    return np.linspace(0.0, 1.0, n + 2)[1:-1]


def line_fade(width: float) -> float:
    """Levels closer than this many values per pixel (in level units) start to fade: about four line widths
    apart."""
    return 1.0 / (4.0 * max(width, 1.0))


class ContourLayer:
    """``look.contours`` lines on the surface ``actor`` at :func:`contour_levels` of its values, drawn by its
    shader; ``height``: the display height of a unit value (the surface's z is value x height); ``ss``: window
    pixels per output pixel (the line is about 1.4 output pixels wide)."""

    def __init__(self, actor, look: LookSpec, height: float, ss: int):
        self.levels = contour_levels(look.contours)
        self.width = 1.4 * ss
        sp = actor.GetShaderProperty()
        sp.AddVertexShaderReplacement("//VTK::PositionVC::Dec", True, _VERTEX_DEC, False)
        sp.AddVertexShaderReplacement("//VTK::PositionVC::Impl", True, _VERTEX_IMPL, False)
        sp.AddFragmentShaderReplacement("//VTK::Color::Dec", True, _FRAGMENT_DEC, False)
        sp.AddFragmentShaderReplacement("//VTK::Color::Impl", True, _FRAGMENT_IMPL, False)
        sp.GetVertexCustomUniforms().SetUniformf("llContourInvHeight", 1.0 / height)
        fu = sp.GetFragmentCustomUniforms()
        fu.SetUniformf("llContourLevels", float(look.contours + 1))
        fu.SetUniformf("llContourWidth", float(self.width))
        fu.SetUniformf("llContourFade", float(line_fade(self.width)))
        fu.SetUniformf("llContourAlpha", 0.6)
        fu.SetUniform3f("llContourColor", [c / 255.0 for c in rgb(look.contour_color)])
        self.actor = actor
