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
    range: Literal["film", "frame"] = Field(
        "film",
        description="'film': heights and colours use one range for the whole film (no flicker); 'frame': each "
        "frame is rescaled to its own range.",
    )


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
    return [CameraKey(at=0.0, azimuth=-60.0, elevation=35.0), CameraKey(at=1.0, azimuth=60.0, elevation=25.0)]


class CameraSpec(Section):
    """The camera path."""

    keyframes: list[CameraKey] = Field(default_factory=_default_keys, description="Keyframes, in order of 'at'.")
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
        "then count relative to the first keyframe's (2.2 after 2.6: 15% closer than the fit). 'distance': the "
        "keyframes' distances as given, in grid widths.")
    follow_smoothing: NonNegFloat = Field(1.0, le=30, description="Seconds of smoothing of the followed track (a "
                                          "Gaussian of this width): higher is calmer.")

    @field_validator("keyframes")
    @classmethod
    def _keys(cls, v):
        if not v:
            raise ValueError("needs at least one keyframe")
        ats = [k.at for k in v]
        if any(b <= a for a, b in zip(ats, ats[1:])):
            raise ValueError("keyframes must be in strictly increasing order of 'at'")
        return v

