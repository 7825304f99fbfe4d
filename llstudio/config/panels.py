"""[[panels]] and [layout]: a panel is the main scene with some sections' keys changed (partial sections,
checked key by key where written), merged into the main scene to give one scene per panel."""

from __future__ import annotations

import copy
from typing import Any, Optional

from matplotlib.colors import is_color_like
from pydantic import BaseModel, Field, create_model, field_validator, model_serializer

from .base import PosInt, Section
from .film_specs import ScalingSpec
from .landscape_specs import CaptureSpec, DirectionsSpec, GridSpec
from .render_specs import LookSpec
from .train_specs import DataSpec, ModelSpec, TrainingSpec

# The sections a panel may override. camera, timeline and output are shared by every panel: that is what keeps the
# panels of one film in step (same frames, same camera path, one file).
PANEL_SECTIONS = ("data", "model", "training", "directions", "grid", "capture", "scaling", "look")


class _Override(BaseModel):
    """Base of the partial sections a panel overrides: only the keys written in the file are kept (and dumped)."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler):
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


def _partial(cls: type[Section]) -> type[Section]:
    """``cls`` with every field optional and no default, keeping its types, bounds, validators and descriptions:
    a panel's override is checked key by key where it is written (``panels[1].training.batch_size``)."""
    fields = {}
    for name, f in cls.model_fields.items():
        info = copy.copy(f)
        info.default, info.default_factory = None, None
        fields[name] = (Optional[f.annotation], info)
    doc = f"Overrides of [{cls.__name__}] for one panel: any of its keys; the others come from the main scene."
    return create_model(f"{cls.__name__}Override", __base__=(cls, _Override), __doc__=doc, **fields)


DataOverride, ModelOverride, TrainingOverride, DirectionsOverride, GridOverride, CaptureOverride, \
    ScalingOverride, LookOverride = (_partial(c) for c in (DataSpec, ModelSpec, TrainingSpec, DirectionsSpec,
                                                             GridSpec, CaptureSpec, ScalingSpec, LookSpec))


class PanelSpec(Section):
    """One panel of a multi-panel film: the main scene with some keys changed. Its capture is its own (and cached
    like any other: identical panels are captured once); time, camera and output are shared by all panels."""

    title: Optional[str] = Field(
        None, description="Title shown in the panel. Default: the overridden keys, e.g. 'batch_size = 10' "
        "(the scene's title when nothing is overridden); \"\" for none.")
    data: Optional[DataOverride] = Field(None, description="Keys of [data] to change in this panel.")
    model: Optional[ModelOverride] = Field(None, description="Keys of [model] to change in this panel.")
    training: Optional[TrainingOverride] = Field(None, description="Keys of [training] to change in this panel.")
    directions: Optional[DirectionsOverride] = Field(None, description="Keys of [directions] to change in this panel.")
    grid: Optional[GridOverride] = Field(None, description="Keys of [grid] to change in this panel.")
    capture: Optional[CaptureOverride] = Field(None, description="Keys of [capture] to change in this panel.")
    scaling: Optional[ScalingOverride] = Field(None, description="Keys of [scaling] to change in this panel.")
    look: Optional[LookOverride] = Field(None, description="Keys of [look] to change in this panel.")

    @model_serializer(mode="wrap")
    def _only_set(self, handler):
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}

    def overrides(self) -> dict[str, dict[str, Any]]:
        """``{section: {key: value}}`` as written in the file (python values)."""
        return {s: getattr(self, s).model_dump() for s in PANEL_SECTIONS if getattr(self, s) is not None}


class LayoutSpec(Section):
    """How the panels share the frame (only used when the scene has [[panels]])."""

    columns: Optional[PosInt] = Field(
        None, description="Panels per row, filled left to right, top to bottom (an incomplete last row is centred). "
        "Default: all panels in one row up to 3 panels, else a near-square grid (4 → 2x2, 5 or 6 → 3x2, 7 to 9 → "
        "3x3).")
    gap: float = Field(
        0.004, ge=0, le=0.1, description="Width of the separator between panels, as a fraction of the film's height "
        "(0: none); panels are as large as fits, and any pixels left over become a border of the same colour.")
    gap_color: str = Field("#000000", description="Colour of the separator and border: a name or '#rrggbb'.")
    shared_range: bool = Field(
        False, description="Give every panel the same height and colour range (the union of theirs), so that equal "
        "heights mean equal loss across panels. Needs the same scaling.log and scaling.clip in every panel and "
        "scaling.range = 'film'. Default: each panel uses its own range (compares shapes, not levels).")

    @field_validator("gap_color")
    @classmethod
    def _color(cls, v):
        if not is_color_like(v):
            raise ValueError(f"{v!r} is not a colour: use a name like 'black' or a hex code like '#1a2b3c'")
        return v


def merge(base: dict, over: dict) -> dict:
    """Deep merge: tables are merged key by key, anything else (numbers, strings, lists) is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def override_title(overrides: dict[str, dict[str, Any]]) -> str:
    """The title of a panel that has none: its overridden keys and values, e.g. 'batch_size = 10'."""
    # Short enough for a narrow panel: the key without its section, the value without quotes.
    return ", ".join(f"{k} = {v}" for keys in overrides.values() for k, v in keys.items())

