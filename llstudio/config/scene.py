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

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_serializer,
                      model_validator)

from ..errors import SceneError
from .weight_refs import WEIGHT_REF
from .presets import ALPHA_FORMATS, FORMATS, QUALITIES, format_help, quality_help

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1

# look.background value that renders an alpha channel instead of a colour.
TRANSPARENT = "transparent"

# "4.weight[5,250]": a parameter name (as in model.named_parameters()) and the index of one entry.


class _Section(BaseModel):
    # strict: a TOML string "300" where a number belongs is an error, not a silent conversion.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


PosInt = Annotated[int, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class DataSpec(_Section):
    """What the network learns from, and the fixed subset the landscape is measured on."""

    dataset: Literal["digits", "moons", "blobs", "spirals", "mnist", "fashion_mnist", "cifar10"] = Field(
        "digits",
        description="Dataset. 'digits' is scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, "
        "no download). 'moons', 'blobs' and 'spirals' are synthetic 2D sets generated from the seed. 'mnist', "
        "'fashion_mnist' (28x28, 1 channel) and 'cifar10' (32x32, 3 channels) are read from the torchvision "
        "folder 'root' (training split; never downloaded).",
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
    root: Optional[str] = Field(
        None,
        description="mnist, fashion_mnist, cifar10 only: the torchvision data folder holding MNIST/raw, "
        "FashionMNIST/raw or cifar-10-batches-py. Default: $LLSTUDIO_DATA, else ./data.",
    )
    image_size: Optional[Annotated[int, Field(ge=4, le=256)]] = Field(
        None,
        description="Image datasets only: resize the images to image_size x image_size (bilinear), e.g. 16 or 32 "
        "so that a ResNet or VGG can run on the 8x8 digits. Default: native size.",
    )
    channels: Optional[Literal[1, 3]] = Field(
        None,
        description="Image datasets only: 3 replicates a grey image into RGB (digits, MNIST for a ResNet/VGG); 1 "
        "averages RGB to grey. Default: native channels.",
    )


class ModelSpec(_Section):
    """The network."""

    kind: Literal["mlp", "logistic", "cnn", "resnet", "vgg", "custom"] = Field(
        "mlp",
        description="'mlp': fully connected network; 'logistic': logistic (softmax) regression; 'cnn': the small "
        "MNIST CNN (2 conv layers, max-pool, dropout, 2 fully connected layers); 'resnet': torchvision's ResNet "
        "with BasicBlocks, reduced for small images (3x3 stem, no max-pool, 4 stages of width, 2*width, 4*width, "
        "8*width); 'vgg': torchvision's VGG on VGG-11's layer plan, reduced (base width, fewer stages, small "
        "classifier); 'custom': your own model from 'factory'. Conv models take (N, C, H, W) images.",
    )
    hidden: list[PosInt] = Field(
        default_factory=lambda: [32], description="MLP only: widths of the hidden layers, e.g. [50, 500]."
    )
    activation: Literal["relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu"] = Field(
        "relu", description="MLP only: activation after each hidden layer."
    )
    bias: bool = Field(True, description="Whether linear layers have bias terms.")
    width: Optional[PosInt] = Field(
        None,
        description="cnn, resnet, vgg: base channel width. cnn: channels of the first conv layer (the second has "
        "2*width, the hidden fully connected layer 4*width); default 32, the write-up's network. resnet and vgg: "
        "channels of the first stage, doubled per stage up to 8*width; default 16 (torchvision's full size is 64).",
    )
    depth: Optional[PosInt] = Field(
        None,
        description="resnet: BasicBlocks per stage (1 gives a ResNet-10, 2 a ResNet-18); default 1. vgg: number of "
        "stages of VGG-11's plan (conv counts 1, 1, 2, 2, 2, each stage ending in a 2x2 max-pool), at most 5 and "
        "at most log2 of the image size; default: as many as fit (5 on 32x32 images: VGG-11's features).",
    )
    batch_norm: Optional[bool] = Field(
        None,
        description="cnn, resnet, vgg: BatchNorm after every conv layer. Default: on for resnet, off for cnn and "
        "vgg (as in the write-ups). See capture.mode for how BatchNorm is treated in the landscape.",
    )
    dropout: Optional[Annotated[float, Field(ge=0, lt=1)]] = Field(
        None,
        description="cnn, vgg: probability of every dropout layer (0 removes them). Default: the architecture's "
        "own (cnn: 0.25 after pooling and 0.5 before the last layer; vgg: 0.5 in the classifier). Dropout is "
        "active in training; the landscape is measured with dropout off unless capture.dropout = 'fixed'.",
    )
    factory: Optional[str] = Field(
        None,
        description="custom only: 'package.module:function', called as function(input_shape, n_classes) with "
        "input_shape (C, H, W) for image datasets or (features,) otherwise; it must return a torch.nn.Module that "
        "maps a batch of inputs to (N, n_classes) logits. Only this module is imported, never other scene code.",
    )

    @field_validator("factory")
    @classmethod
    def _factory(cls, v):
        if v is not None and not re.match(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$", v):
            raise ValueError(f"{v!r} is not 'package.module:function', e.g. 'mypkg.nets:make_model'")
        return v


def _check_init(v: Optional[dict[str, float]]) -> Optional[dict[str, float]]:
    for ref in v or {}:
        if not WEIGHT_REF.match(ref):
            raise ValueError(f"{ref!r} is not a weight reference: write the parameter name and the index of the "
                             "entry, e.g. \"0.weight[0,1]\"")
    return v


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
    init_seed: Optional[int] = Field(
        None, description="Seed of the initial weights only, when it should differ from 'seed' (which then sets "
        "the mini-batch order alone). Default: 'seed'."
    )
    init: Optional[dict[str, float]] = Field(
        None,
        description="Starting values of chosen scalar weights, set after the seeded initialisation, e.g. "
        "{\"0.weight[0,0]\" = -3.0, \"0.weight[0,1]\" = 2.5}: the starting point of gradient descent on a "
        "two-weight landscape.",
    )
    train_only: Optional[list[str]] = Field(
        None,
        description="Update only these scalar weights, e.g. [\"2.weight[5,250]\", \"2.weight[5,251]\"]; every other "
        "weight keeps its initial value. With directions.kind = 'weights' on the same weights, the film shows "
        "gradient descent on exactly the landscape drawn (as in 'Gradient descent and loss landscape animations').",
    )
    runs: Optional[list["RunSpec"]] = Field(
        None,
        description="Several training runs sharing one landscape ([[training.runs]] tables): each has a 'name' and "
        "overrides of the keys above (seed, init_seed, init, optimizer, lr, lr_schedule, momentum, weight_decay, "
        "batch_size). Every run trains for 'steps' and is captured at the same steps. The first run is the primary "
        "one: the directions come from it (see directions.pca_runs) and the single-run outputs describe it. Needs "
        "directions.frame = 'fixed' (the default when runs are given).",
    )

    @field_validator("init")
    @classmethod
    def _init(cls, v):
        return _check_init(v)

    @field_validator("train_only")
    @classmethod
    def _train_only(cls, v):
        if v is not None:
            if not v:
                raise ValueError("name at least one weight, or leave train_only out")
            _check_init({ref: 0.0 for ref in v})
        return v

    @field_validator("runs")
    @classmethod
    def _runs(cls, v):
        if v is not None:
            if not v:
                raise ValueError("give at least one run, or leave training.runs out")
            names = [r.name for r in v]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"run names must be unique; repeated: {', '.join(dup)}")
        return v

    def for_run(self, name: Optional[str] = None) -> "TrainingSpec":
        """The spec of one run: these settings with run ``name``'s overrides (the first run when None); without
        runs, these settings. The result has no runs."""
        if not self.runs:
            return self
        run = next((r for r in self.runs if r.name == name), None) if name is not None else self.runs[0]
        if run is None:
            raise KeyError(name)
        # None means "keep [training]'s value" (also for a resolved dump, which writes every key out).
        over = {k: v for k, v in run if k != "name" and v is not None}
        return self.model_copy(update={**over, "runs": None})

    def run_names(self) -> list[str]:
        """Names of the runs, primary first ('main' for a scene without training.runs)."""
        return [r.name for r in self.runs] if self.runs else ["main"]


RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class RunSpec(_Section):
    """One of several training runs: a name and overrides of [training]; keys left out keep [training]'s values."""

    name: str = Field(..., description="Name of the run (letters, digits, '_' and '-'), e.g. 'bs64'; "
                      "directions.start = 'run:bs64' refers to its final weights.")
    seed: Optional[int] = Field(None, description="Seed of the initial weights and of the mini-batch order.")
    init_seed: Optional[int] = Field(None, description="Seed of the initial weights only.")
    init: Optional[dict[str, float]] = Field(None, description="Starting values of chosen scalar weights, e.g. "
                                             "{\"0.weight[0,0]\" = -3.0}.")
    optimizer: Optional[Literal["sgd", "momentum", "adam", "adamw", "rmsprop"]] = Field(None, description="Optimizer.")
    lr: Optional[float] = Field(None, gt=0, description="Learning rate.")
    lr_schedule: Optional[Literal["constant", "cosine"]] = Field(None, description="'constant' or 'cosine'.")
    momentum: Optional[float] = Field(None, ge=0, lt=1, description="Momentum ('momentum' and 'rmsprop').")
    weight_decay: Optional[NonNegFloat] = Field(None, description="L2 weight decay.")
    batch_size: Optional[PosInt] = Field(None, description="Mini-batch size.")

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not RUN_NAME.match(v):
            raise ValueError(f"{v!r} is not a run name: use letters, digits, '_' and '-', e.g. 'bs64'")
        return v

    @field_validator("init")
    @classmethod
    def _init(cls, v):
        return _check_init(v)


TrainingSpec.model_rebuild()

# An interpolation endpoint: a captured step number, or 'initial' / 'final' / 'run:NAME' / a checkpoint path.
Endpoint = Union[Annotated[int, Field(ge=0)], Annotated[str, Field(min_length=1)]]


class DirectionsSpec(_Section):
    """How the two-dimensional slice through weight space is chosen."""

    kind: Literal["random", "pca", "weights", "hessian", "interpolation"] = Field(
        "random",
        description="'random': two Gaussian directions, drawn once and fixed for the whole film. 'pca': the first "
        "two principal components of the weights at the captured steps, relative to the final weights (Li et al. "
        "2018): the plane the training path moves in the most. 'weights': two chosen scalar weights (see "
        "'weights'); the axes are their values and every other weight stays as it is. 'hessian': the eigenvectors "
        "of the two largest Hessian eigenvalues of the evaluation loss (all parameters) at 'hessian_step': the "
        "plane of steepest curvature. Unit length and orthogonal, so the grid's range is a distance in weight "
        "space; the eigenvalues are printed and kept in the manifest. 'interpolation': the line "
        "from 'start' to 'end' (d1 = end - start, unnormalised: alpha = 0 is start, alpha = 1 is end; Goodfellow et "
        "al. 2015), in 2D with a second direction through 'via' or a random one; fixed frame centred at 'start'.",
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
    seed: int = Field(1, description="Seed of the random directions (and of the Hessian solver's start vector).")
    hessian_step: Union[Literal["final"], Annotated[int, Field(ge=0)]] = Field(
        "final", description="kind = 'hessian' only: the weights whose Hessian gives the directions, 'final' or a "
        "captured step number."
    )
    hessian_which: Literal["algebraic", "magnitude"] = Field(
        "algebraic", description="kind = 'hessian' only: 'algebraic' takes the two largest eigenvalues (the "
        "steepest upward curvature); 'magnitude' the two largest in absolute value (a strongly negative one wins)."
    )
    start: Optional[Endpoint] = Field(
        None,
        description="kind = 'interpolation' only: where alpha = 0 is (and the plane's centre). 'initial' or 'final' "
        "weights of the (primary) run, a captured step number, 'run:NAME' for the final weights of run NAME (see "
        "training.runs), or the path of a checkpoint file (a state dict saved with torch.save, loaded with "
        "weights_only=True; relative to the scene file). 'final' and 'run:NAME' are the weights at the last "
        "captured step (the last training step unless capture.steps stops earlier).",
    )
    end: Optional[Endpoint] = Field(
        None, description="kind = 'interpolation' only: where alpha = 1 is; the same choices as 'start'. Default "
        "(with 'start'): 'initial' → 'final'."
    )
    via: Optional[Endpoint] = Field(
        None,
        description="kind = 'interpolation' on a 2D grid only: a third point (same choices as 'start'); the plane "
        "goes through start, end and via, its second direction being via - start orthogonalised against d1 "
        "(unnormalised: via lies at beta = 1). Default: a random direction (seed, normalization, include_biases), "
        "normalised against the start weights and orthogonalised against d1.",
    )
    pca_runs: Literal["primary", "all"] = Field(
        "primary",
        description="kind = 'pca' with several training.runs: the principal components of the primary run's "
        "trajectory, or of all runs' trajectories together.",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, v):
        if v is None:
            return v
        if len(v) not in (1, 2) or len(set(v)) != len(v):
            raise ValueError("must name two different weights, e.g. [\"4.weight[5,250]\", \"4.weight[3,100]\"] "
                             "(one on a 1D grid)")
        for ref in v:
            if not WEIGHT_REF.match(ref):
                raise ValueError(f"{ref!r} is not a weight reference: write the parameter name and the index of "
                                 "the entry, e.g. \"4.weight[5,250]\" or \"2.bias[3]\"")
        return v


def _check_resolution(v, most: int, names: str):
    """A resolution is n or [n_x, n_y], each from 2 to ``most``."""
    vals = [v, v] if isinstance(v, int) else v
    if len(vals) != 2 or any(n < 2 or n > most for n in vals):
        raise ValueError(f"must be an integer from 2 to {most} or a list {names} of two such integers")
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
    dimensions: Literal[1, 2] = Field(
        2,
        description="2: a surface over (alpha, beta); 1: a curve over alpha alone (only the first direction is "
        "used; the loss is stored as (steps, nx, 1) with beta = 0). A 1D grid takes one resolution and no y_range.",
    )
    zoom: float = Field(
        1.0, gt=0, allow_inf_nan=False,
        description="A zoom film: the factor range and y_range are multiplied by from the first captured step to "
        "the last, geometrically in between by step number (scale = zoom ** ((step - first) / (last - first))), "
        "about alpha = beta = 0. 0.01 shrinks [-25, 25] to [-0.25, 0.25] over the film (zooming in); above 1 zooms "
        "out; 1: no zoom. The surface always fills the same square, the path and markers move with the zoom and "
        "the overlay shows the current range.",
    )

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v):
        return _check_resolution(v, 4097, "[nx, ny]")

    @field_validator("range", "y_range")
    @classmethod
    def _range(cls, v):
        if v is not None and v != "auto" and (len(v) != 2 or not v[0] < v[1]):
            raise ValueError("must be [min, max] with min < max")
        return v

    @property
    def shape(self) -> tuple[int, int]:
        """(nx, ny); ny = 1 on a 1D grid."""
        if self.dimensions == 1:
            return (self.resolution if isinstance(self.resolution, int) else self.resolution[0], 1)
        return (self.resolution, self.resolution) if isinstance(self.resolution, int) else tuple(self.resolution)


class CurvatureSpec(_Section):
    """Curvature maps: the minimum and maximum Hessian eigenvalue at each point of a (coarser) grid."""

    enabled: bool = Field(True, description="Capture curvature maps (the table's presence turns them on; set "
                          "false to keep the table but skip them).")
    resolution: Union[PosInt, list[PosInt]] = Field(
        15, description="Points per axis of the curvature grid, which spans the same range as the loss grid: one "
        "number or [cx, cy], at least 2 per axis. Each point costs tens of Hessian-vector products (about as many "
        "forward+backward passes), so keep it coarser than the loss grid; the film interpolates it.",
    )
    tolerance: float = Field(
        1e-3, gt=0, lt=1, description="Relative accuracy of the eigenvalues (ARPACK's tol)."
    )
    max_iterations: PosInt = Field(
        300, description="Most Lanczos restarts per grid point; a point that does not converge is left NaN, with "
        "a warning.",
    )

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v):
        return _check_resolution(v, 1025, "[cx, cy]")

    @property
    def shape(self) -> tuple[int, int]:
        """(cx, cy)."""
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
    memory_mb: Optional[PosInt] = Field(
        None, description="Working-memory budget for one batch of grid points, in MiB; larger is faster up to a "
        "point. Absent: 512 on a CPU; on a GPU a quarter of its free memory, at most 8192.",
    )
    curvature: Optional[CurvatureSpec] = Field(
        None, description="[capture.curvature]: also capture the minimum and maximum Hessian eigenvalue and their "
        "convexity ratio |min/max| on a grid over the same range (losslandscape.com's convexity maps; shown with "
        "look.color_by = 'convexity'). Absent: no curvature.",
    )

    mode: Literal["eval", "train", "recompute_bn"] = Field(
        "eval",
        description="How BatchNorm behaves at each grid point. 'eval': with the running statistics as trained at "
        "the captured step (perturbed weights then meet stale statistics); 'train': with the statistics of the "
        "evaluated batch itself; 'recompute_bn': running statistics recomputed at every grid point from a fixed, "
        "seeded subset of the training data (bn_samples), as Garipov et al. do. Dropout: see capture.dropout.",
    )
    dropout: Literal["off", "fixed"] = Field(
        "off",
        description="How dropout layers behave at each grid point. 'off': as in eval mode, the whole network. "
        "'fixed': as in training, but with ONE mask per dropout layer for each captured step (drawn with "
        "dropout_seed and the step), the same at every grid point of that step: the landscape of one thinned "
        "network, scaled by 1/(1-p) as in training (Dropout2d drops whole channels). Fixed, because a fresh random "
        "mask per grid point (what train mode does on every forward pass) would turn the surface into noise. Each "
        "step shows another thinned network; a fixed-frame plane measured on the evaluation subset has one set of "
        "masks for the whole film. With capture.mode = 'recompute_bn', the statistics pass runs without dropout.",
    )
    dropout_seed: Annotated[int, Field(ge=0)] = Field(
        0,
        description="capture.dropout = 'fixed' only: seeds the masks (together with the step), so a rerun draws "
        "the same ones and another seed another set of thinned networks.",
    )
    bn_samples: PosInt = Field(
        256,
        description="capture.mode = 'recompute_bn' only: training samples (a fixed subset drawn with "
        "data.eval_seed) whose statistics become the BatchNorm running statistics at every grid point.",
    )
    samples: Union[PosInt, list[Annotated[int, Field(ge=0)]]] = Field(
        9,
        description="With data = 'samples': which samples of the fixed evaluation subset get a landscape of their "
        "own. A count n takes the first n samples of the subset, in order; a list names positions in the subset "
        "(0-based, e.g. [0, 5, 17]). Ignored otherwise.",
    )

    @property
    def curvature_on(self) -> bool:
        """Whether curvature maps are captured."""
        return self.curvature is not None and self.curvature.enabled

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


class SpeedKey(_Section):
    """One point of the timeline's speed curve."""

    at: float = Field(..., ge=0, le=1, description="Where in training: fraction of the last captured step number "
                      "(0 = the first captured step, 1 = the last).")
    speed: float = Field(..., gt=0, le=100, description="Relative playback speed there: 1 = seconds_per_step per "
                         "transition, 0.25 = four times slower, 2 = twice as fast.")


class CardSpec(_Section):
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


class LookSpec(_Section):
    """What the surface and its overlays look like."""

    colormap: str = Field("viridis", description="Matplotlib colormap name (e.g. viridis, magma, inferno, cividis).")
    background: str = Field(
        "#0b0e18",
        description="Background colour: a name or '#rrggbb', or 'transparent' (an alpha channel, for compositing; "
        "needs output.format 'png' or 'prores').",
    )
    contours: Annotated[int, Field(ge=0, le=200)] = Field(
        14, description="Number of contour lines drawn on the surface (0: none)."
    )
    contour_color: str = Field("#ffffff", description="Colour of the contour lines.")
    marker: bool = Field(True, description="Mark the minimiser (the current weights) with a sphere.")
    marker_color: str = Field("#ff5a36", description="Colour of the minimiser marker.")
    trail: bool = Field(True, description="Draw the training path so far on the surface (fixed frame).")
    trail_color: str = Field("#f4f4f4", description="Colour of the training path.")
    run_colors: list[str] = Field(
        default_factory=lambda: ["#36c5ff", "#ffd23f", "#7cff6b", "#ff6bd6", "#b388ff"],
        description="Marker and path colours of the further training runs ([[training.runs]] after the first, which "
        "uses marker_color and trail_color), in order; reused cyclically.",
    )
    arrows: bool = Field(True, description="While a step is held (timeline.hold_each), draw its update as an arrow.")
    arrow_color: str = Field("#ffd166", description="Colour of the update arrow.")
    arrow_scale: float = Field(
        1.0, gt=0, description="Length of the update arrow relative to the real update (raise it to see tiny steps)."
    )
    overlay: bool = Field(True, description="Show the title, step and loss as text.")
    text_color: str = Field("#f2f2f2", description="Colour of the text overlay.")
    smooth_shading: bool = Field(True, description="Smooth (Phong) shading instead of flat facets.")
    specular: float = Field(0.35, ge=0, le=1, description="Specular highlight strength of the surface.")
    anti_aliasing: Literal["auto", "none", "msaa", "ssaa"] = Field(
        "auto", description="'ssaa': supersampling (VTK renders at a higher resolution and filters down; the "
        "smoothest edges and contour lines, about 2-3x the render time); 'msaa': 4x multisampling; 'none'. 'auto': "
        "SSAA from 1080 lines up (qualities h, p, k), MSAA below (l, m)."
    )
    background_top: Optional[str] = Field(
        None, description="Colour at the top of a vertical background gradient ('background' is then the bottom "
        "colour). Default: a plain background."
    )
    lighting: Literal["studio", "soft", "dramatic", "flat"] = Field(
        "studio", description="Lighting preset. 'studio': VTK's light kit (key, fill, back and head lights); 'soft': "
        "the light kit dimmed with more ambient light and a gentle highlight; 'dramatic': one low, raking key light "
        "and a faint fill; 'flat': no shading at all, colours exactly as the colormap says."
    )
    pbr: bool = Field(False, description="Physically based material (metallic/roughness) instead of Phong shading.")
    metallic: float = Field(0.0, ge=0, le=1, description="PBR only: 0 = dielectric (plastic), 1 = metal.")
    roughness: float = Field(0.45, ge=0, le=1, description="PBR only: 0 = mirror-smooth, 1 = fully rough.")
    wireframe: bool = Field(False, description="Overlay the grid's mesh lines on the surface.")
    wireframe_color: str = Field("#ffffff", description="Colour of the wireframe overlay.")
    view: Literal["surface", "contours"] = Field(
        "surface", description="'surface': the 3D surface under the camera path; 'contours': a flat, top-down map of "
        "filled contours with contour lines, the path and the marker drawn on it (the camera section is ignored)."
    )
    trail_coloring: Literal["solid", "loss"] = Field(
        "solid", description="'solid': the training path in trail_color; 'loss': coloured by the loss along it "
        "(trail_colormap, on the surface's colour range)."
    )
    trail_colormap: str = Field("plasma", description="Colormap of a trail coloured by loss.")
    epoch: bool = Field(True, description="Show the epoch next to the step in the text overlay.")
    legend: bool = Field(False, description="Show a colour bar with the loss values of the colours.")
    loss_inset: bool = Field(False, description="Show a small chart of the training loss against the step, with a "
                             "dot at the current step.")
    inset_corner: Literal["top_right", "bottom_right", "top_left", "bottom_left"] = Field(
        "top_right", description="Corner of the loss-curve inset."
    )
    color_by: Literal["loss", "convexity"] = Field(
        "loss", description="What colours the surface: 'loss' (its height, with 'colormap'), or 'convexity': the "
        "ratio |lambda_min / lambda_max| of the Hessian's extreme eigenvalues (needs [capture.curvature]), with "
        "'convexity_colormap' over a fixed 0..1 range: 0 locally convex, 1 and above (clipped) as much negative "
        "curvature as positive.",
    )
    convexity_colormap: str = Field("coolwarm", description="Matplotlib colormap of the convexity ratio.")
    convexity_range: list[float] = Field(
        default_factory=lambda: [0.0, 1.0],
        description="[low, high] of the convexity ratio spread over the colormap (clipped outside): near a minimum "
        "the ratio often stays below 0.3, and [0, 0.3] shows its structure.",
    )

    @field_validator("convexity_range")
    @classmethod
    def _convexity_range(cls, v):
        if len(v) != 2 or not 0.0 <= v[0] < v[1]:
            raise ValueError("must be [low, high] with 0 <= low < high")
        return v
    sample: Optional[Annotated[int, Field(ge=0)]] = Field(
        None, description="With capture.data = 'samples': show the landscape of this one sample (0-based, in the "
        "order of capture.samples) instead of their mean. Panels that differ only here share one capture, so a "
        "grid of panels shows every sample's landscape beside their mean.",
    )
    critical_points: bool = Field(
        False, description="Mark the critical points of the shown landscape in every frame: minima (small blue "
        "spheres), maxima (orange) and saddles (white), found on the grid and refined between its nodes.",
    )

    @field_validator("colormap", "trail_colormap", "convexity_colormap")
    @classmethod
    def _cmap(cls, v):
        import matplotlib

        if v not in matplotlib.colormaps:
            close = difflib.get_close_matches(v, list(matplotlib.colormaps), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(f"unknown colormap {v!r}{hint}")
        return v

    @field_validator("run_colors")
    @classmethod
    def _run_colors(cls, v):
        from matplotlib.colors import is_color_like

        bad = [c for c in v if not is_color_like(c)]
        if not v or bad:
            raise ValueError(f"must be a non-empty list of colours (names like 'white' or hex codes like '#1a2b3c'); "
                             f"not colours: {bad}")
        return v

    @field_validator("background", "contour_color", "marker_color", "trail_color", "arrow_color", "text_color",
                     "background_top", "wireframe_color")
    @classmethod
    def _color(cls, v, info):
        from matplotlib.colors import is_color_like

        if info.field_name == "background" and v == TRANSPARENT:
            return v
        if v is not None and not is_color_like(v):
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
    ] = Field("veryfast", description="x264 speed/size trade-off. 'veryfast' (the default) encodes 1080p about "
              "2.3x faster than 'medium' at the same crf, for files of the same size and 0.2 dB lower PSNR on "
              "llstudio's films (measured); 'superfast' and 'ultrafast' double the file size.")
    path: Optional[str] = Field(
        None, description="Where the film goes. Default: renders/<scene file name> under the working directory, "
        "with the format's suffix (.mp4, .webm, .gif, .mov; none for a PNG sequence's directory)."
    )
    format: Literal[tuple(FORMATS)] = Field(  # type: ignore[valid-type]
        "mp4", description="File format: " + format_help() + ". crf applies to mp4 and webm (VP9's scale is "
        "0-63; 30 is typical there). The command line's --format wins."
    )


# ------------------------------------------------------------------------------------------------- panels

# The sections a panel may override. camera, timeline and output are shared by every panel: that is what keeps the
# panels of one film in step (same frames, same camera path, one file).
PANEL_SECTIONS = ("data", "model", "training", "directions", "grid", "capture", "scaling", "look")


class _Override(BaseModel):
    """Base of the partial sections a panel overrides: only the keys written in the file are kept (and dumped)."""

    @model_serializer(mode="wrap")
    def _only_set(self, handler):
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


def _partial(cls: type[_Section]) -> type[_Section]:
    """``cls`` with every field optional and no default, keeping its types, bounds, validators and descriptions:
    a panel's override is checked key by key where it is written (``panels[1].training.batch_size``)."""
    import copy

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


class PanelSpec(_Section):
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


class LayoutSpec(_Section):
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
        from matplotlib.colors import is_color_like

        if not is_color_like(v):
            raise ValueError(f"{v!r} is not a colour: use a name like 'black' or a hex code like '#1a2b3c'")
        return v


def _merge(base: dict, over: dict) -> dict:
    """Deep merge: tables are merged key by key, anything else (numbers, strings, lists) is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _override_title(overrides: dict[str, dict[str, Any]]) -> str:
    # Short enough for a narrow panel: the key without its section, the value without quotes.
    return ", ".join(f"{k} = {v}" for keys in overrides.values() for k, v in keys.items())


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
        g, d, t = self.grid, self.directions, self.training
        if g.dimensions == 1 and g.y_range is not None:
            raise ValueError("grid.y_range: a 1D grid (grid.dimensions = 1) has no beta axis; remove y_range")
        if g.dimensions == 1 and not isinstance(g.resolution, int):
            raise ValueError("grid.resolution: a 1D grid (grid.dimensions = 1) takes one number of points, e.g. 101")
        if d.kind == "weights" and d.weights is not None and len(d.weights) != g.dimensions:
            need = ("two different weights, e.g. [\"4.weight[5,250]\", \"4.weight[3,100]\"]" if g.dimensions == 2
                    else "one weight, e.g. [\"4.weight[5,250]\"]")
            raise ValueError(f"directions.weights: a {g.dimensions}D grid needs {need}; got {len(d.weights)}")
        names = t.run_names() if t.runs else []
        if t.runs:
            if d.frame != "fixed":
                raise ValueError("directions.frame: several training.runs share one landscape, which needs "
                                 "frame = 'fixed' (leave frame out to get it)")
            if self.capture.data != "eval":
                raise ValueError("capture.data: several training.runs share one landscape, measured on the fixed "
                                 "evaluation subset: use data = 'eval'")
        ends = [k for k in ("start", "end", "via") if getattr(d, k) is not None]
        if d.kind != "interpolation" and ends:
            raise ValueError(f"directions.{ends[0]}: only for kind = 'interpolation'")
        if d.kind == "interpolation":
            if d.frame != "fixed":
                raise ValueError("directions.frame: kind = 'interpolation' is one fixed plane centred at "
                                 "directions.start; 'follow' does not apply (leave frame out)")
            if d.center != "final":  # the default, which an interpolation ignores
                raise ValueError("directions.center: kind = 'interpolation' centres the plane at directions.start")
            if d.via is not None and g.dimensions == 1:
                raise ValueError("directions.via: a third point needs a 2D grid (grid.dimensions = 2)")
            for key in ("start", "end", "via"):
                e = getattr(d, key)
                if isinstance(e, int) and e not in self.captured_steps():
                    raise ValueError(f"directions.{key}: step {e} is not a captured step; captured steps are "
                                     f"{self.captured_steps()[:8]}{' ...' if len(self.captured_steps()) > 8 else ''}")
                if isinstance(e, str) and e.startswith("run:") and e[4:] not in names:
                    raise ValueError(f"directions.{key}: {e!r} names no run; "
                                     + (f"the runs are {', '.join(names)}" if names else "the scene has no "
                                        "[[training.runs]]"))
            if d.start == d.end:
                raise ValueError(f"directions.end: the same point as directions.start ({d.start!r}); the line "
                                 "between them would have no direction")
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
        if self.look.background == TRANSPARENT and self.output.format not in ALPHA_FORMATS:
            raise ValueError(f"look.background: 'transparent' needs an output format with alpha: set output.format "
                             f"to {' or '.join(repr(f) for f in ALPHA_FORMATS)} (it is {self.output.format!r})")
        if self.output.path is not None and Path(self.output.path).suffix != FORMATS[self.output.format].suffix:
            want = FORMATS[self.output.format].suffix
            raise ValueError(f"output.path: {self.output.path!r} does not fit output.format = "
                             f"{self.output.format!r}, which writes "
                             + (f"a '{want}' file" if want else "a directory of PNG frames (a path without suffix)"))
        h = self.directions.hessian_step
        if self.directions.kind == "hessian" and isinstance(h, int) and h not in self.captured_steps():
            raise ValueError(f"directions.hessian_step: step {h} is not a captured step (the weights are kept only "
                             f"at captured steps); captured steps are {self.captured_steps()[:8]}"
                             f"{' ...' if len(self.captured_steps()) > 8 else ''}")
        if self.look.sample is not None:
            if self.capture.data != "samples":
                raise ValueError("look.sample: shows one of the per-sample landscapes, which need capture.data = "
                                 "'samples'")
            if self.look.sample >= len(self.capture.sample_indices()):
                raise ValueError(f"look.sample: {self.look.sample} is past the {len(self.capture.sample_indices())} "
                                 "captured samples (capture.samples); count from 0")
        if self.capture.dropout == "fixed" and self.capture.curvature_on:
            raise ValueError("capture.dropout: 'fixed' masks are not applied by curvature maps, which measure the "
                             "network without dropout; use capture.dropout = 'off' with [capture.curvature], or "
                             "remove [capture.curvature] (or set capture.curvature.enabled = false)")
        if self.look.color_by == "convexity" and not self.capture.curvature_on:
            raise ValueError("look.color_by: 'convexity' needs curvature maps: add a [capture.curvature] table")
        self._model_checks()
        if self.capture.data == "samples" and max(self.capture.sample_indices()) >= self.data.eval_size:
            what = (f"{self.capture.samples} samples" if isinstance(self.capture.samples, int)
                    else f"position {max(self.capture.samples)}")
            raise ValueError(f"capture.samples: {what} asked for, but the evaluation subset has data.eval_size = "
                             f"{self.data.eval_size} samples (positions 0 … {self.data.eval_size - 1})")
        if self.directions.kind == "pca" and len(self.captured_steps()) < 3:
            raise ValueError("directions.kind: 'pca' needs at least 3 captured steps to find two components")
        if self.layout.columns is not None and self.panels and self.layout.columns > len(self.panels):
            raise ValueError(f"layout.columns: {self.layout.columns} columns for {len(self.panels)} panels; at most "
                             f"{len(self.panels)}")
        return self

    def _model_checks(self) -> None:
        m = self.model
        if (m.kind == "custom") != (m.factory is not None):
            raise ValueError("model.factory: name a factory ('package.module:function') exactly when "
                             "model.kind = 'custom'")
        conv = ("cnn", "resnet", "vgg")
        for key in ("width", "depth", "batch_norm"):
            if getattr(m, key) is not None and m.kind not in conv:
                raise ValueError(f"model.{key}: applies to model.kind 'cnn', 'resnet' or 'vgg' only "
                                 f"(model.kind is '{m.kind}')")
        if m.depth is not None and m.kind == "cnn":
            raise ValueError("model.depth: applies to model.kind 'resnet' or 'vgg' only (the cnn has 2 conv layers)")
        if m.dropout is not None and m.kind not in ("cnn", "vgg"):
            raise ValueError(f"model.dropout: only model.kind 'cnn' and 'vgg' have dropout layers "
                             f"(model.kind is '{m.kind}')")
        images = ("digits", "mnist", "fashion_mnist", "cifar10")
        for key in ("image_size", "channels"):
            if getattr(self.data, key) is not None and self.data.dataset not in images:
                raise ValueError(f"data.{key}: applies to image datasets only ({', '.join(images)})")
        if m.kind in conv and self.data.dataset not in images:
            raise ValueError(f"model.kind: '{m.kind}' is a conv model and needs an image dataset "
                             f"({', '.join(images)}); data.dataset is '{self.data.dataset}'")
        has_bn = m.kind == "resnet" and m.batch_norm is not False or m.kind in ("cnn", "vgg") and bool(m.batch_norm)
        if self.capture.mode == "recompute_bn" and m.kind != "custom" and not has_bn:
            raise ValueError("capture.mode: 'recompute_bn' recomputes BatchNorm statistics, but this model has no "
                             "BatchNorm layer (set model.batch_norm = true on a cnn, resnet or vgg, or use "
                             "capture.mode = 'eval')")

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
            data = _merge(base, over)
            if spec.title is not None:
                data["title"] = spec.title
            elif over:
                data["title"] = _override_title(over)
            try:
                scene = Scene.model_validate(data)
            except ValidationError as exc:
                for path, msg in _dedupe([_describe(e) for e in exc.errors()]):
                    problems.append((f"panels[{i}]" + (f".{path}" if path else ""), msg))
                continue
            scenes.append(scene.model_copy(update={"source": self.source, "panel": f"panel{i + 1}"}))
        if not problems and self.layout.shared_range and len({(p.scaling.log, p.scaling.clip, p.scaling.range)
                                                               for p in scenes}) > 1:
            problems.append(("layout.shared_range", "one range for all panels needs the same scaling.log, "
                             "scaling.clip and scaling.range in every panel; the panels differ"))
        if not problems and self.layout.shared_range and scenes[0].scaling.range != "film":
            problems.append(("layout.shared_range", "needs scaling.range = 'film' (with 'frame' every frame has a "
                             "range of its own)"))
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
        allowed = sorted(k for k in owner.model_fields if k not in ("source", "panel")) if owner else []
        key = str(loc[-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        if owner is PanelSpec and key in ("camera", "timeline", "output"):
            hint += "camera, timeline and output are shared by every panel (set them in the main scene); "
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
    scene = scene.model_copy(update={"source": source})
    if scene.panels:
        scene.panel_scenes()  # every panel must be a valid scene too: report its problems now, with their paths
    return scene


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
    schema["properties"].pop("panel", None)
    return json.dumps(schema, indent=2)
