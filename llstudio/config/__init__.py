"""Stage 1, the scene: a TOML file → a validated, frozen :class:`Scene`, the whole recipe of one film.

Every later stage reads its sections from the Scene and nothing else; every problem in a scene file is reported
here, all at once, each with its key path (:class:`~llstudio.errors.SceneError`). The sections are grouped by the
stage that reads them: train_specs (data, model, training), landscape_specs (directions, grid, capture),
film_specs (scaling, timeline, camera), render_specs (look, output), panels (panels, layout); checks holds the
rules between sections, presets the quality and format tables.
"""

from .base import TRANSPARENT
from .film_specs import CameraKey, CameraSpec, CardSpec, ScalingSpec, SpeedKey, TimelineSpec
from .landscape_specs import CaptureSpec, CurvatureSpec, DirectionsSpec, GridSpec
from .panels import LayoutSpec, PanelSpec
from .render_specs import LookSpec, OutputSpec
from .scene import Scene, json_schema, load_scene, scene_from_dict
from .train_specs import DataSpec, ModelSpec, RunSpec, TrainingSpec

__all__ = ["TRANSPARENT", "Scene", "load_scene", "scene_from_dict", "json_schema", "DataSpec", "ModelSpec",
           "TrainingSpec", "RunSpec", "DirectionsSpec", "GridSpec", "CurvatureSpec", "CaptureSpec", "ScalingSpec",
           "SpeedKey", "CardSpec", "TimelineSpec", "CameraKey", "CameraSpec", "LookSpec", "OutputSpec", "PanelSpec",
           "LayoutSpec"]
