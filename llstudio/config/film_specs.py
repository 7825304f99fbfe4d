"""The sections the film stage reads: [scaling], [timeline] (speed keys, title and end cards) and [camera]."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import NonNegFloat, Section


class ScalingSpec(Section):
    """How loss values become heights and colours."""

    log: bool = Field(True, description="Show log10 of the loss (tames the steep walls far from the minimiser).")
    clip: Optional[float] = Field(
        None, gt=0, description="Clip the loss above this value (before the log), so outliers do not flatten the rest."
    )
    z_scale: float = Field(0.5, gt=0, description="Height of the surface relative to the width of the grid.")
    range: Literal["film", "frame", "eased"] = Field(
        "film",
        description="'film': heights and colours use one range for the whole film (no flicker); 'frame': each "
        "frame is rescaled to its own range; 'eased': each captured step's own range, smoothed over "
        "range_smoothing captured steps and eased between them, so an early, nearly flat landscape shows its shape "
        "and the range follows training without flicker.",
    )
    range_smoothing: NonNegFloat = Field(
        1.5, le=50, description="With range = 'eased': the width (a Gaussian's sigma, in captured steps) over which "
        "the captured steps' ranges are smoothed; 0: each step's own range, eased between steps.")


class SpeedKey(Section):
    """One point of the timeline's speed curve."""

    at: float = Field(..., ge=0, le=1, description="Where in training: fraction of the last captured step number "
                      "(0 = the first captured step, 1 = the last).")
    speed: float = Field(..., gt=0, le=100, description="Relative playback speed there: 1 = seconds_per_step per "
                         "transition, 0.25 = four times slower, 2 = twice as fast.")


class CardSpec(Section):
    """A title or end card: text on the background, dissolving into the film's first frame (or from its last)."""

    text: str = Field(..., description="The card's main line.")
    subtitle: str = Field("", description="A smaller second line (empty: none).")
    seconds: float = Field(3.0, gt=0, le=60, description="How long the card lasts, fades included.")
    fade: NonNegFloat = Field(0.5, description="Seconds over which the text fades in from the empty background "
                              "(title card) or out to it at the very end (end card).")
    dissolve: NonNegFloat = Field(0.75, description="Seconds of cross-dissolve between the card and the film: at "
                                  "the end of a title card, at the start of an end card.")

    @model_validator(mode="after")
    def _fades(self):
        if self.fade + self.dissolve > self.seconds:
            raise ValueError(f"fade + dissolve ({self.fade + self.dissolve:g} s) must not exceed seconds "
                             f"({self.seconds:g} s)")
        return self


class TimelineSpec(Section):
    """How captured steps become video frames."""

    seconds_per_step: float = Field(0.5, gt=0, description="Seconds of film between two captured steps.")
    interpolation: Literal["linear", "cubic", "smoothstep"] = Field(
        "cubic",
        description="Between captured steps: 'linear'; 'cubic' (a smooth spline through the captured steps in film "
        "time: the surface keeps its pace through every step, exact at each, easing only into and out of holds); "
        "'smoothstep' (eases in and out of every captured frame).",
    )
    hold_start: NonNegFloat = Field(1.0, description="Seconds to hold the first captured frame.")
    hold_end: NonNegFloat = Field(1.5, description="Seconds to hold the last captured frame.")
    hold_each: NonNegFloat = Field(
        0.0,
        description="Seconds to hold every captured step in between (the 'earthquake' rhythm: a training step shown "
        "on a still surface with its update arrow, then the transition to the next landscape).",
    )
    speed: list[SpeedKey] = Field(
        default_factory=list,
        description="Speed ramp: keys {at, speed} in increasing 'at' (fraction of training), interpolated linearly "
        "and held beyond the first and last key; each transition between captured steps lasts seconds_per_step / "
        "speed. E.g. [{at = 0, speed = 0.3}, {at = 0.2, speed = 1}] lingers on the start of training, where the "
        "landscape changes most. Empty: constant speed.",
    )
    title_card: Optional[CardSpec] = Field(None, description="A title card before the film (text, subtitle, "
                                           "seconds, fade, dissolve).")
    end_card: Optional[CardSpec] = Field(None, description="An end card after the film (same keys as title_card).")

    @field_validator("speed")
    @classmethod
    def _speed(cls, v):
        ats = [k.at for k in v]
        if any(b <= a for a, b in zip(ats, ats[1:])):
            raise ValueError("speed keys must be in strictly increasing order of 'at'")
        return v


class CameraKey(Section):
    """One camera keyframe, in spherical coordinates around the centre of the surface."""

    at: float = Field(..., ge=0, le=1, description="When: fraction of the film, 0 = first frame, 1 = last frame.")
    azimuth: float = Field(..., description="Degrees around the vertical axis: 0 puts the camera on the +alpha side, 90 on the +beta side.")
    elevation: float = Field(30.0, gt=-90, lt=90, description="Degrees above the alpha-beta plane.")
    distance: float = Field(2.6, gt=0, description="Distance from the focal point, in grid widths.")
    roll: float = Field(0.0, description="Degrees of roll about the viewing direction.")


def _default_keys() -> list[CameraKey]:
    # Elevations under 30 degrees: from higher up, a square surface in a 16:9 panel fills the height first and
    # less than 80% of the width (issue 14's framing target).
    return [CameraKey(at=0.0, azimuth=-60.0, elevation=28.0), CameraKey(at=1.0, azimuth=60.0, elevation=22.0)]


# The named moves: the keyframes each brings (azimuth, elevation, distance at the start and the end of the film).
# With camera.framing = 'fit' distances count relative to the closest, which shows the fitted surface.
MOVES: dict[str, list[dict]] = {
    # A slow turn around the surface at a classic three-quarter height.
    "orbit": [dict(at=0.0, azimuth=-80.0, elevation=32.0), dict(at=1.0, azimuth=40.0, elevation=28.0)],
    # From 1.4 times the fitted distance in to the fitted framing, turning a little: the landscape grows to fill the
    # frame as training digs its basin.
    "dolly_in": [dict(at=0.0, azimuth=-75.0, elevation=32.0, distance=1.4),
                 dict(at=1.0, azimuth=-35.0, elevation=26.0, distance=1.0)],
    # From just above the surface (its ridges against the background) up to a high look down into the basin.
    "crane": [dict(at=0.0, azimuth=-60.0, elevation=10.0, distance=1.0),
              dict(at=1.0, azimuth=-25.0, elevation=50.0, distance=1.0)],
    # A low hero angle: the camera close to the plane, looking across the landscape, pushing in slowly.
    "hero": [dict(at=0.0, azimuth=-65.0, elevation=9.0, distance=1.25),
             dict(at=1.0, azimuth=-40.0, elevation=14.0, distance=1.0)],
}


def _same_keys(given, move: list[dict]) -> bool:
    """Whether ``given`` (keyframes as parsed: dicts or CameraKeys) are exactly ``move``'s."""
    try:
        keys = [k if isinstance(k, CameraKey) else CameraKey.model_validate(k) for k in given]
    except (TypeError, ValueError):  # not keyframes at all: the move's error says what to do
        return False
    return keys == [CameraKey(**k) for k in move]


class CameraSpec(Section):
    """The camera path."""

    move: Optional[Literal["orbit", "dolly_in", "crane", "hero"]] = Field(
        None, description="A named camera move, which brings its own keyframes (so give one or the other): 'orbit' "
        "turns 120 degrees around the surface; 'dolly_in' pushes in from 1.4 times the fitted distance to the fitted "
        "framing; 'crane' rises from just above the surface (elevation 10) to a high look into the basin (50); "
        "'hero' is a low angle across the landscape (elevation 9 to 14) pushing in slowly. orbit, dolly, crane and "
        "follow still add to it.")
    keyframes: list[CameraKey] = Field(default_factory=_default_keys, description="Keyframes, in order of 'at' "
                                       "(default: from -60 to 60 degrees azimuth, 28 to 22 degrees elevation).")
    interpolation: Literal["spline", "linear"] = Field(
        "spline", description="'spline': smooth cubic spline through the keyframes; 'linear': straight segments."
    )
    easing: Literal["none", "in_out"] = Field(
        "in_out", description="'in_out': the camera starts and ends at rest; 'none': constant pace."
    )
    orbit: float = Field(0.0, ge=-3600, le=3600, description="Named move on top of the keyframes: degrees of "
                         "azimuth added over the film (360 = one full turn around the surface; negative: clockwise).")
    dolly: float = Field(1.0, gt=0, le=20, description="Named move: the distance at the end of the film as a "
                         "multiple of the keyframes' (0.6 = push in to 60%, 1.5 = pull out); geometric, so the pace "
                         "looks even.")
    crane: float = Field(0.0, ge=-170, le=170, description="Named move: degrees of elevation added over the film "
                         "(positive rises; the result stays within ±89°).")
    follow: float = Field(0.0, ge=0, le=1, description="Follow the minimiser: how much the focal point tracks the "
                          "marker across the plane (0: never, 1: fully); the camera moves with it. Its height stays "
                          "at the middle of the surface, so the horizon does not bob with every step.")
    framing: Literal["fit", "distance"] = Field(
        "fit", description="'fit': every frame's camera is fitted to the surface, so that it fills its panel (the "
        "room the title and info line leave) from the keyframes' direction; the keyframes' distances and the dolly "
        "then count relative to the closest point of the film, which shows the fit itself (keys at 3.0 and 2.0: "
        "the camera starts 1.5 times as far and pushes in to the fit), so the surface never leaves its panel. "
        "'distance': the keyframes' distances as given, in grid widths.")
    follow_smoothing: NonNegFloat = Field(1.0, le=30, description="Seconds of smoothing of the followed track (a "
                                          "Gaussian of this width): higher is calmer.")

    @model_validator(mode="before")
    @classmethod
    def _move(cls, data):
        """A named move's keyframes, unless the section gives its own (then it is an error; the move's own, as a
        resolved scene's dump writes them beside the move, are fine)."""
        if isinstance(data, dict) and data.get("move") in MOVES:
            if "keyframes" in data and not _same_keys(data["keyframes"], MOVES[data["move"]]):
                raise ValueError(f"move = '{data['move']}' brings its own keyframes: give either move or keyframes")
            if data.get("framing") == "distance":
                raise ValueError(f"move = '{data['move']}' sets distances relative to the fitted framing: it needs "
                                 "framing = 'fit'")
            data = {**data, "keyframes": [CameraKey(**k) for k in MOVES[data["move"]]]}
        return data

    @field_validator("keyframes")
    @classmethod
    def _keys(cls, v):
        if not v:
            raise ValueError("needs at least one keyframe")
        ats = [k.at for k in v]
        if any(b <= a for a, b in zip(ats, ats[1:])):
            raise ValueError("keyframes must be in strictly increasing order of 'at'")
        return v

