"""Scene files: TOML → a validated, frozen :class:`Scene`.

Every field carries a description: it is the scene reference (``llstudio check --schema``), the JSON Schema an
editor uses to complete keys, and the text shown next to a validation error. Validation happens here and only
here; every problem is reported at once with its key path (``camera.keyframes[2].azimuth``).

The sections live in modules by the stage that reads them (train_specs, landscape_specs, film_specs,
render_specs, panels); this module holds the Scene that gathers them, its cross-checks' hook and the ways in
(load_scene, scene_from_dict, json_schema), and re-exports the sections for the code that imports them from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, ValidationError, model_validator

from ..errors import SceneError
from .base import TRANSPARENT, Section
from .checks import cross_check_problems, shared_range_problems
from .film_specs import CameraKey, CameraSpec, CardSpec, ScalingSpec, SpeedKey, TimelineSpec
from .landscape_specs import CaptureSpec, CurvatureSpec, DirectionsSpec, GridSpec
from .loading import read_scene_data
from .panels import LayoutSpec, PanelSpec, merge, override_title
from .problems import problems_of, validation_error
from .render_specs import LookSpec, OutputSpec
from .train_specs import DataSpec, ModelSpec, RunSpec, TrainingSpec

__all__ = ["TRANSPARENT", "Scene", "load_scene", "scene_from_dict", "json_schema", "DataSpec", "ModelSpec",
           "TrainingSpec", "RunSpec", "DirectionsSpec", "GridSpec", "CurvatureSpec", "CaptureSpec", "ScalingSpec",
           "SpeedKey", "CardSpec", "TimelineSpec", "CameraKey", "CameraSpec", "LookSpec", "OutputSpec", "PanelSpec",
           "LayoutSpec"]

SCHEMA_VERSION = 1


class Scene(Section):
    """A scene: the whole recipe of one film."""

    version: Literal[1] = Field(1, description="Scene schema version.")
    title: str = Field("", description="Title shown on the film (empty: none).")
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    directions: DirectionsSpec = Field(default_factory=DirectionsSpec)
    grid: GridSpec = Field(default_factory=GridSpec)
    capture: CaptureSpec = Field(default_factory=CaptureSpec)
    scaling: ScalingSpec = Field(default_factory=ScalingSpec)
    timeline: TimelineSpec = Field(default_factory=TimelineSpec)
    camera: CameraSpec = Field(default_factory=CameraSpec)
    look: LookSpec = Field(default_factory=LookSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    panels: list[PanelSpec] = Field(
        default_factory=list,
        description="Several views in one film ([[panels]] tables): each panel is this scene with some keys of data, "
        "model, training, directions, grid, capture, scaling or look changed, captured on its own; all panels share "
        "the timeline, camera and output. Empty: a single view.")
    layout: LayoutSpec = Field(default_factory=LayoutSpec, description="Arrangement of the panels.")

    # Not part of the file: where it came from (excluded from hashes and dumps).
    source: Optional[str] = Field(None, exclude=True, description="Path of the scene file (set by load_scene).")
    panel: Optional[str] = Field(None, exclude=True, description="Set by panel_scenes() on a panel's scene: its "
                                 "name suffix ('panel2'); not part of the file.")

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data):
        # Interpolation and several runs only make sense on one fixed plane, and interpolation wants a range that
        # shows both endpoints: these defaults are filled into the file's data so the resolved scene shows them.
        if not isinstance(data, dict):
            return data
        d, t, g = data.get("directions", {}), data.get("training", {}), data.get("grid", {})
        if not (isinstance(d, dict) and isinstance(t, dict) and isinstance(g, dict)):
            return data
        interp = d.get("kind") == "interpolation"
        data = dict(data)
        if (interp or t.get("runs") is not None) and "frame" not in d:
            data["directions"] = d = {**d, "frame": "fixed"}
        if interp:
            data["directions"] = {"start": "initial", "end": "final", **d}
        if interp and "range" not in g:
            data["grid"] = {**g, "range": [-0.5, 1.5]}
        return data

    @model_validator(mode="after")
    def _cross_checks(self):
        # Every problem at once, each at its key path, in the same ValidationError as the sections' own problems.
        problems = cross_check_problems(self)
        if problems:
            raise validation_error(type(self).__name__, problems)
        return self

    @property
    def name(self) -> str:
        """The film's name: the scene file's stem, or 'scene'; a panel's scene adds its suffix ('tiny_panel2')."""
        stem = Path(self.source).stem if self.source else "scene"
        return f"{stem}_{self.panel}" if self.panel else stem

    def panel_scenes(self) -> list["Scene"]:
        """One scene per panel: this scene (without panels) deep-merged with the panel's overrides, validated like
        a scene file, named '<name>_panel<i>' (from 1) and titled as PanelSpec.title says. Raises
        :class:`SceneError` listing every problem with its key path (``panels[1].capture.steps: ...``)."""
        base = self.model_dump(exclude={"panels", "layout", "source", "panel"})
        scenes, problems = [], []
        for i, spec in enumerate(self.panels):
            over = spec.overrides()
            data = merge(base, over)
            if spec.title is not None:
                data["title"] = spec.title
            elif over:
                data["title"] = override_title(over)
            try:
                scene = Scene.model_validate(data)
            except ValidationError as exc:
                for path, msg in problems_of(exc, Scene):
                    problems.append((f"panels[{i}]" + (f".{path}" if path else ""), msg))
                continue
            scenes.append(scene.model_copy(update={"source": self.source, "panel": f"panel{i + 1}"}))
        problems = problems or shared_range_problems(self.layout, scenes)
        if problems:
            raise SceneError(self.source or "<scene>", problems)
        return scenes

    def captured_steps(self) -> list[int]:
        """The training steps at which the landscape is captured, increasing."""
        if self.capture.steps is not None:
            return list(self.capture.steps)
        steps = list(range(0, self.training.steps + 1, self.capture.every))
        if steps[-1] != self.training.steps:
            steps.append(self.training.steps)
        return steps

    def resolved_dump(self) -> dict[str, Any]:
        """The scene with every default filled in, as plain JSON-compatible data."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------------------------------- ways in


def scene_from_dict(data: dict, source: str = "<scene>") -> Scene:
    """Validate a parsed scene. Raises :class:`SceneError` listing every problem."""
    try:
        scene = Scene.model_validate(data)
    except ValidationError as exc:
        raise SceneError(source, problems_of(exc, Scene)) from None
    scene = scene.model_copy(update={"source": source})
    if scene.panels:
        scene.panel_scenes()  # every panel must be a valid scene too: report its problems now, with their paths
    return scene


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene file. Raises :class:`SceneError` with every problem, each with its key path."""
    path = Path(path)
    return scene_from_dict(read_scene_data(path), source=str(path))


def json_schema() -> str:
    """The JSON Schema of scene files (point a TOML editor at it with a '#:schema' comment)."""
    schema = Scene.model_json_schema()
    schema["properties"].pop("source", None)
    schema["properties"].pop("panel", None)
    return json.dumps(schema, indent=2)
