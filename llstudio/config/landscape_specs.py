"""The sections the landscape stage reads: [directions], [grid], [capture] and [capture.curvature]."""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, field_validator

from .base import PosInt, check_resolution, Section
from .weight_refs import WEIGHT_REF

# An interpolation endpoint: a captured step number, or 'initial' / 'final' / 'run:NAME' / a checkpoint path.
Endpoint = Union[Annotated[int, Field(ge=0)], Annotated[str, Field(min_length=1)]]


class DirectionsSpec(Section):
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


class GridSpec(Section):
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
        return check_resolution(v, 4097, "[nx, ny]")

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


class CurvatureSpec(Section):
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
        return check_resolution(v, 1025, "[cx, cy]")

    @property
    def shape(self) -> tuple[int, int]:
        """(cx, cy)."""
        return (self.resolution, self.resolution) if isinstance(self.resolution, int) else tuple(self.resolution)


class CaptureSpec(Section):
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

