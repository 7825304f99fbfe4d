"""Scene files: TOML → a validated, frozen :class:`Scene`.

Every field carries a description: it is the scene reference (``llstudio check --schema``), the JSON Schema an
editor uses to complete keys, and the text shown next to a validation error. Validation happens here and only
here; every problem is reported at once with its key path (``camera.keyframes[2].azimuth``).
"""

from __future__ import annotations

import difflib
import json
import re
import sys
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SceneError
from .presets import QUALITIES, quality_help

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1

# "4.weight[5,250]": a parameter name (as in model.named_parameters()) and the index of one entry.
WEIGHT_REF = re.compile(r"^\s*(?P<name>[\w][\w.]*)\s*(?:\[(?P<index>\s*\d+\s*(?:,\s*\d+\s*)*)\])?\s*$")


class _Section(BaseModel):
    # strict: a TOML string "300" where a number belongs is an error, not a silent conversion.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


PosInt = Annotated[int, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class DataSpec(_Section):
    """What the network learns from, and the fixed subset the landscape is measured on."""

    dataset: Literal["digits", "moons", "blobs", "spirals"] = Field(
        "digits",
        description="Dataset. 'digits' is scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, "
        "no download). 'moons', 'blobs' and 'spirals' are synthetic 2D sets generated from the seed.",
    )
    train_size: Optional[PosInt] = Field(
        None, description="Use only this many training samples (a seeded subset). Default: all of them."
    )
    eval_size: PosInt = Field(
        500,
        description="Size of the fixed evaluation subset every landscape value is computed on. It is drawn once "
        "from the training samples with eval_seed and never changes during the film.",
    )
    eval_seed: int = Field(0, description="Seed of the evaluation subset (and of the train subset).")
    samples: PosInt = Field(1000, description="Synthetic datasets only: how many samples to generate.")
    noise: NonNegFloat = Field(0.1, description="Synthetic datasets only: noise level.")


class ModelSpec(_Section):
    """The network."""

    kind: Literal["mlp", "logistic"] = Field(
        "mlp", description="'mlp': fully connected network; 'logistic': logistic (softmax) regression."
    )
    hidden: list[PosInt] = Field(
        default_factory=lambda: [32], description="MLP only: widths of the hidden layers, e.g. [50, 500]."
    )
    activation: Literal["relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu"] = Field(
        "relu", description="MLP only: activation after each hidden layer."
    )
    bias: bool = Field(True, description="Whether linear layers have bias terms.")


class TrainingSpec(_Section):
    """The training run whose landscape is filmed."""

    optimizer: Literal["sgd", "momentum", "adam", "adamw", "rmsprop"] = Field(
        "sgd", description="Optimizer. 'momentum' is SGD with the momentum below."
    )
    lr: float = Field(0.1, gt=0, description="Learning rate.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="'constant', or 'cosine' decay to zero over the run."
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum for the 'momentum' and 'rmsprop' optimizers.")
    weight_decay: NonNegFloat = Field(0.0, description="L2 weight decay.")
    batch_size: PosInt = Field(32, description="Mini-batch size.")
    steps: PosInt = Field(300, le=10_000_000, description="Number of optimizer steps.")
    loss: Literal["cross_entropy", "mse"] = Field(
        "cross_entropy", description="Training loss, also the loss the landscape shows. 'mse' is against one-hot targets."
    )
    seed: int = Field(0, description="Seed of the initial weights and of the mini-batch order.")


class DirectionsSpec(_Section):
    """How the two-dimensional slice through weight space is chosen."""

    kind: Literal["random", "pca", "weights"] = Field(
        "random",
        description="'random': two Gaussian directions, drawn once and fixed for the whole film. 'pca': the first "
        "two principal components of the weights at the captured steps, relative to the final weights (Li et al. "
        "2018): the plane the training path moves in the most. 'weights': two chosen scalar weights (see "
        "'weights'); the axes are their values and every other weight stays as it is.",
    )
    weights: Optional[list[str]] = Field(
        None,
        description="kind = 'weights' only: the two scalar weights, as parameter name and index, e.g. "
        "[\"4.weight[5,250]\", \"4.weight[3,100]\"] ('llstudio check' lists the model's parameters on a mistake).",
    )
    normalization: Literal["filter", "layer", "model", "none"] = Field(
        "filter",
        description="Scale of the random directions. 'filter': each filter (row of a weight) gets the norm of the "
        "matching filter of the weights (Li et al. 2018); 'layer': per tensor; 'model': whole vector; 'none': raw.",
    )
    normalize_to: Literal["initial", "final"] = Field(
        "final", description="Which weights the normalisation measures norms against ('final' falls back to the "
        "initial weights, with a warning, when the run diverged)."
    )
    include_biases: bool = Field(
        False, description="Also perturb biases and normalisation parameters (ignored by default, as in Li et al.)."
    )
    frame: Literal["follow", "fixed"] = Field(
        "follow",
        description="'follow': the grid is centred on the current weights at every captured step "
        "('ride the minimiser'); 'fixed': one landscape around 'center', with the training path projected onto "
        "the plane (least squares) and drawn on it.",
    )
    center: Union[Literal["initial", "final"], Annotated[int, Field(ge=0)]] = Field(
        "final", description="Fixed frame only: the centre of the plane, 'initial', 'final' or a captured step number."
    )
    seed: int = Field(1, description="Seed of the random directions.")

    @field_validator("weights")
    @classmethod
    def _weights(cls, v):
        if v is None:
            return v
        if len(v) != 2 or v[0] == v[1]:
            raise ValueError("must name two different weights, e.g. [\"4.weight[5,250]\", \"4.weight[3,100]\"]")
        for ref in v:
            if not WEIGHT_REF.match(ref):
                raise ValueError(f"{ref!r} is not a weight reference: write the parameter name and the index of "
                                 "the entry, e.g. \"4.weight[5,250]\" or \"2.bias[3]\"")
        return v


class GridSpec(_Section):
    """The grid of (alpha, beta) coefficients the loss is evaluated on."""

    resolution: Union[PosInt, list[PosInt]] = Field(
        41, description="Points per axis: one number for a square grid or [nx, ny]. At least 2 per axis."
    )
    range: Union[list[float], Literal["auto"]] = Field(
        default_factory=lambda: [-1.0, 1.0],
        description="[min, max] of alpha and beta (the zoom): weights are centre + alpha*d1 + beta*d2. 'auto' "
        "(fixed frame only) fits both axes to the projected training path with a margin.",
    )
    y_range: Optional[list[float]] = Field(None, description="[min, max] of beta, when it differs from range.")

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v):
        vals = [v, v] if isinstance(v, int) else v
        if len(vals) != 2 or any(n < 2 or n > 4097 for n in vals):
            raise ValueError("must be an integer from 2 to 4097 or a list [nx, ny] of two such integers")
        return v

    @field_validator("range", "y_range")
    @classmethod
    def _range(cls, v):
        if v is not None and v != "auto" and (len(v) != 2 or not v[0] < v[1]):
            raise ValueError("must be [min, max] with min < max")
        return v

    @property
    def shape(self) -> tuple[int, int]:
        """(nx, ny)."""
        return (self.resolution, self.resolution) if isinstance(self.resolution, int) else tuple(self.resolution)


class CaptureSpec(_Section):
    """When the landscape is captured and on what hardware."""

    every: PosInt = Field(
        10, description="Capture every this many steps (step 0 and the last step are always included)."
    )
    steps: Optional[list[Annotated[int, Field(ge=0)]]] = Field(
        None, description="Explicit list of steps to capture, instead of 'every'."
    )
    data: Literal["eval", "batch", "samples"] = Field(
        "eval",
        description="What the landscape measures the loss on. 'eval': the fixed evaluation subset (data.eval_size), "
        "the same for every frame. 'batch': the mini-batch of the update that follows each captured step (the last "
        "update's for the final step), so every step has a landscape of its own: the mini-batch 'earthquakes'. "
        "'samples': one landscape per sample of the evaluation subset chosen by capture.samples, and their mean as "
        "the main landscape.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="'auto' uses CUDA when available, else the CPU. The command line's --device wins."
    )
    dtype: Literal["float32", "float64"] = Field("float32", description="Precision of training and capture.")
    memory_mb: PosInt = Field(
        512, description="Working-memory budget for one batch of grid points; larger is faster up to a point."
    )
    samples: Union[PosInt, list[Annotated[int, Field(ge=0)]]] = Field(
        9,
        description="With data = 'samples': which samples of the fixed evaluation subset get a landscape of their "
        "own. A count n takes the first n samples of the subset, in order; a list names positions in the subset "
        "(0-based, e.g. [0, 5, 17]). Ignored otherwise.",
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, v):
        if v is not None and (len(v) == 0 or sorted(set(v)) != list(v)):
            raise ValueError("must be a non-empty, strictly increasing list of step numbers")
        return v

    @field_validator("samples")
    @classmethod
    def _samples(cls, v):
        if isinstance(v, list) and (len(v) == 0 or len(set(v)) != len(v)):
            raise ValueError("must be a count or a non-empty list of distinct positions in the evaluation subset")
        return v

    def sample_indices(self) -> list[int]:
        """Positions in the fixed evaluation subset of the per-sample landscapes ('samples' data)."""
        return list(range(self.samples)) if isinstance(self.samples, int) else list(self.samples)


class ScalingSpec(_Section):
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


class TimelineSpec(_Section):
    """How captured steps become video frames."""

    seconds_per_step: float = Field(0.5, gt=0, description="Seconds of film between two captured steps.")
    interpolation: Literal["linear", "cubic", "smoothstep"] = Field(
        "cubic",
        description="Between captured steps: 'linear'; 'cubic' (monotone, no overshoot); 'smoothstep' (eases in "
        "and out of every captured frame).",
    )
    hold_start: NonNegFloat = Field(1.0, description="Seconds to hold the first captured frame.")
    hold_end: NonNegFloat = Field(1.5, description="Seconds to hold the last captured frame.")
    hold_each: NonNegFloat = Field(
        0.0,
        description="Seconds to hold every captured step in between (the 'earthquake' rhythm: a training step shown "
        "on a still surface with its update arrow, then the transition to the next landscape).",
    )


class CameraKey(_Section):
    """One camera keyframe, in spherical coordinates around the centre of the surface."""

    at: float = Field(..., ge=0, le=1, description="When: fraction of the film, 0 = first frame, 1 = last frame.")
    azimuth: float = Field(..., description="Degrees around the vertical axis: 0 puts the camera on the +alpha side, 90 on the +beta side.")
    elevation: float = Field(30.0, gt=-90, lt=90, description="Degrees above the alpha-beta plane.")
    distance: float = Field(2.6, gt=0, description="Distance from the focal point, in grid widths.")
    roll: float = Field(0.0, description="Degrees of roll about the viewing direction.")


def _default_keys() -> list[CameraKey]:
    return [CameraKey(at=0.0, azimuth=-60.0, elevation=35.0), CameraKey(at=1.0, azimuth=60.0, elevation=25.0)]


class CameraSpec(_Section):
    """The camera path."""

    keyframes: list[CameraKey] = Field(default_factory=_default_keys, description="Keyframes, in order of 'at'.")
    interpolation: Literal["spline", "linear"] = Field(
        "spline", description="'spline': smooth cubic spline through the keyframes; 'linear': straight segments."
    )
    easing: Literal["none", "in_out"] = Field(
        "in_out", description="'in_out': the camera starts and ends at rest; 'none': constant pace."
    )

    @field_validator("keyframes")
    @classmethod
    def _keys(cls, v):
        if not v:
            raise ValueError("needs at least one keyframe")
        ats = [k.at for k in v]
        if any(b <= a for a, b in zip(ats, ats[1:])):
            raise ValueError("keyframes must be in strictly increasing order of 'at'")
        return v


class LookSpec(_Section):
    """What the surface and its overlays look like."""

    colormap: str = Field("viridis", description="Matplotlib colormap name (e.g. viridis, magma, inferno, cividis).")
    background: str = Field("#0b0e18", description="Background colour: a name or '#rrggbb'.")
    contours: Annotated[int, Field(ge=0, le=200)] = Field(
        14, description="Number of contour lines drawn on the surface (0: none)."
    )
    contour_color: str = Field("#ffffff", description="Colour of the contour lines.")
    marker: bool = Field(True, description="Mark the minimiser (the current weights) with a sphere.")
    marker_color: str = Field("#ff5a36", description="Colour of the minimiser marker.")
    trail: bool = Field(True, description="Draw the training path so far on the surface (fixed frame).")
    trail_color: str = Field("#f4f4f4", description="Colour of the training path.")
    arrows: bool = Field(True, description="While a step is held (timeline.hold_each), draw its update as an arrow.")
    arrow_color: str = Field("#ffd166", description="Colour of the update arrow.")
    arrow_scale: float = Field(
        1.0, gt=0, description="Length of the update arrow relative to the real update (raise it to see tiny steps)."
    )
    overlay: bool = Field(True, description="Show the title, step and loss as text.")
    text_color: str = Field("#f2f2f2", description="Colour of the text overlay.")
    smooth_shading: bool = Field(True, description="Smooth (Phong) shading instead of flat facets.")
    specular: float = Field(0.35, ge=0, le=1, description="Specular highlight strength of the surface.")
    anti_aliasing: Literal["none", "msaa"] = Field(
        "msaa", description="'msaa': 4x multisample anti-aliasing (smoother edges, slower); 'none'."
    )

    @field_validator("colormap")
    @classmethod
    def _cmap(cls, v):
        import matplotlib

        if v not in matplotlib.colormaps:
            close = difflib.get_close_matches(v, list(matplotlib.colormaps), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"unknown colormap {v!r}{hint}")
        return v

    @field_validator("background", "contour_color", "marker_color", "trail_color", "arrow_color", "text_color")
    @classmethod
    def _color(cls, v):
        from matplotlib.colors import is_color_like

        if not is_color_like(v):
            raise ValueError(f"{v!r} is not a colour: use a name like 'white' or a hex code like '#1a2b3c'")
        return v


class OutputSpec(_Section):
    """The film file."""

    quality: Literal[tuple(QUALITIES)] = Field(  # type: ignore[valid-type]
        "h", description="Quality preset: " + quality_help() + ". The command line's -q wins."
    )
    fps: Optional[Annotated[int, Field(ge=1, le=240)]] = Field(None, description="Frames per second (overrides the preset).")
    crf: Annotated[int, Field(ge=0, le=51)] = Field(
        18, description="H.264 constant rate factor: lower is better quality and larger files (18 looks lossless)."
    )
    encoder_preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
    ] = Field("medium", description="x264 speed/size trade-off.")
    path: Optional[str] = Field(
        None, description="Where the film goes. Default: renders/<scene file name>.mp4 under the working directory."
    )


class Scene(_Section):
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

    # Not part of the file: where it came from (excluded from hashes and dumps).
    source: Optional[str] = Field(None, exclude=True, description="Path of the scene file (set by load_scene).")

    @model_validator(mode="after")
    def _cross_checks(self):
        if self.capture.steps is not None and self.capture.steps[-1] > self.training.steps:
            raise ValueError(
                f"capture.steps: step {self.capture.steps[-1]} is after the last training step ({self.training.steps})"
            )
        if self.grid.range == "auto" and self.directions.frame != "fixed" and self.directions.kind != "weights":
            raise ValueError("grid.range: 'auto' fits the grid to the projected training path, which needs "
                             "directions.frame = 'fixed' or directions.kind = 'weights' (otherwise, in the 'follow' "
                             "frame, the path stays at the centre)")
        if (self.directions.kind == "weights") != (self.directions.weights is not None):
            raise ValueError("directions.weights: name two weights exactly when directions.kind = 'weights'")
        c = self.directions.center
        if isinstance(c, int) and c not in self.captured_steps():
            raise ValueError(f"directions.center: step {c} is not a captured step; captured steps are "
                             f"{self.captured_steps()[:8]}{' ...' if len(self.captured_steps()) > 8 else ''}")
        if self.capture.data == "samples" and max(self.capture.sample_indices()) >= self.data.eval_size:
            what = (f"{self.capture.samples} samples" if isinstance(self.capture.samples, int)
                    else f"position {max(self.capture.samples)}")
            raise ValueError(f"capture.samples: {what} asked for, but the evaluation subset has data.eval_size = "
                             f"{self.data.eval_size} samples (positions 0 … {self.data.eval_size - 1})")
        if self.directions.kind == "pca" and len(self.captured_steps()) < 3:
            raise ValueError("directions.kind: 'pca' needs at least 3 captured steps to find two components")
        return self

    @property
    def name(self) -> str:
        """The film's name: the scene file's stem, or 'scene'."""
        return Path(self.source).stem if self.source else "scene"

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


# --------------------------------------------------------------------------------------------------- loading


def _loc_to_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _unwrap_model(annotation) -> Optional[type[BaseModel]]:
    """The BaseModel class inside an annotation like Optional[list[X]], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _model_at(loc: tuple) -> Optional[type[BaseModel]]:
    """The section class that owns the key at ``loc`` (loc without the key itself)."""
    model: Optional[type[BaseModel]] = Scene
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        if field is None:
            # pydantic inserts tags like 'list[int]' or 'function-after[...]' for unions and validators.
            continue
        model = _unwrap_model(field.annotation)
    return model


def _describe(err: dict) -> tuple[str, str]:
    # pydantic inserts union/validator tags ('list[int]', 'constrained-int', 'int') into locations: keep field
    # names and list indices only.
    loc = tuple(p for p in err["loc"]
                if isinstance(p, int) or (p.isidentifier() and p not in ("int", "float", "str", "bool")))
    path = _loc_to_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        allowed = sorted(k for k in owner.model_fields if k != "source") if owner else []
        key = str(loc[-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return path, f"unknown key '{key}'; {hint}allowed here: {', '.join(allowed)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    # Cross-section checks name their key at the start of the message ("grid.range: ..."): use it as the path.
    m = re.match(r"^([a-z_]+(?:\.[a-z_]+|\[\d+\])*): (.*)$", msg, flags=re.S)
    if not path and m:
        path, msg = m.group(1), m.group(2)
    if kind in ("model_type", "dict_type"):
        msg = "must be a table (section), e.g. [" + path + "]"
    elif kind not in ("missing", "value_error") and "input" in err and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    return path, msg


def _dedupe(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # A union field (int | list[int]) fails once per member; keep the first message per path.
    seen, out = set(), []
    for path, msg in problems:
        if path in seen:
            continue
        seen.add(path)
        out.append((path, msg))
    return out


def scene_from_dict(data: dict, source: str = "<scene>") -> Scene:
    """Validate a parsed scene. Raises :class:`SceneError` listing every problem."""
    try:
        scene = Scene.model_validate(data)
    except ValidationError as exc:
        raise SceneError(source, _dedupe([_describe(e) for e in exc.errors()])) from None
    return scene.model_copy(update={"source": source})


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene file. Raises :class:`SceneError` with every problem, each with its key path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SceneError(str(path), [("", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(str(path), [("", f"cannot read the file: {exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(str(path), [("", f"not valid TOML: {exc}")]) from None
    return scene_from_dict(data, source=str(path))


def json_schema() -> str:
    """The JSON Schema of scene files (point a TOML editor at it with a '#:schema' comment)."""
    schema = Scene.model_json_schema()
    schema["properties"].pop("source", None)
    return json.dumps(schema, indent=2)
