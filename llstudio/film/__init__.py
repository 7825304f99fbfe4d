"""The film stage: captured landscapes → one surface and one camera pose per video frame. No pixels, no torch.

``timeline`` (Keyframes, Timeline: interpolation, holds, speed ramps, cards, scaling), ``camera`` (keyframed,
eased camera paths, orbit, dolly, follow), ``critical`` (minima, maxima, saddles of a frame's landscape),
``geometry`` (the display square the grid is shown as), ``film`` (Film: a capture's timeline and camera at one
output setting), ``panels`` (PanelFilm: several films in one frame).
"""

from .film import Film, OutputSettings, output_settings, parse_frames, surface_colors
from .panels import PanelFilm
from .timeline import Keyframes, Timeline

__all__ = ["Film", "Keyframes", "OutputSettings", "PanelFilm", "Timeline", "output_settings", "parse_frames",
           "surface_colors"]
