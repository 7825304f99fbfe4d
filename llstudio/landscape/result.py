"""What a capture gives the film and the notebook user: :class:`Capture`, its optional parts, and the
:class:`PanelCapture` of a scene with panels."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config.scene import Scene
from ..train.data import load_dataset
from ..train.models import wants_images
from ..train.training import initial_model
from .curvature import convexity_ratio, resample
from .directions import zero_entries


@dataclass(frozen=True)
class RunRecord:
    """One training run on the shared plane. ``plane_path`` (steps, 2): least-squares (alpha, beta) of its weights
    at each captured step; ``center_loss`` (steps,): the loss at those weights (on the evaluation subset);
    ``train_loss`` (training steps,): its mini-batch losses; ``updates`` (steps, 2): the move from each captured
    step to the next on the plane (zero after the last)."""

    name: str
    plane_path: np.ndarray
    center_loss: np.ndarray
    train_loss: np.ndarray
    updates: np.ndarray


@dataclass(frozen=True)
class CurvatureMaps:
    """``[capture.curvature]``: ``curv_min`` and ``curv_max`` (steps, cx, cy), the minimum and maximum eigenvalue
    of the Hessian (all parameters) at ``c_k + alphas[i] * d1 + betas[j] * d2`` on a coarser grid over the loss
    grid's range (``alphas`` (cx,), ``betas`` (cy,)), NaN where not finite or not converged."""

    alphas: np.ndarray
    betas: np.ndarray
    curv_min: np.ndarray
    curv_max: np.ndarray

    @property
    def convexity(self) -> np.ndarray:
        """(steps, cx, cy) ``|curv_min / curv_max|``: near 0 where the surface is locally convex."""
        return convexity_ratio(self.curv_min, self.curv_max)


@dataclass(frozen=True)
class SampleLandscapes:
    """``capture.data = 'samples'``: ``loss`` (steps, S, nx, ny), each chosen sample's own landscape (the
    capture's ``loss`` is their mean); ``center_loss`` (steps, S); ``indices`` (S,), the samples' positions in the
    fixed evaluation subset."""

    loss: np.ndarray
    center_loss: np.ndarray
    indices: np.ndarray


def _from_part(part: str, name: str) -> property:
    """A read-only attribute that is ``getattr(self.<part>, name)``, or None when the part is absent."""
    def get(self):
        value = getattr(self, part)
        return None if value is None else getattr(value, name)
    return property(get, doc=f"``{part}.{name}``, or None without {part}")


@dataclass
class Capture:
    """A captured film's numbers, for the film and for notebook users.

    ``loss`` is (steps, nx, ny) with 'ij' indexing: ``loss[k, i, j]`` is the loss at ``center(k) + alphas[i] *
    scales[k] * d1 + betas[j] * scales[k] * d2``, where ``center(k)`` is ``centers[k]`` in the follow frame and
    the one plane centre ``origin`` in the fixed frame (every step then has the same grid). ``directions`` are two
    dicts ``name → tensor`` shaped like the model's parameters. ``center_loss`` (steps,) is the loss at each
    captured step's own weights; ``plane_path`` (steps, 2) their least-squares (alpha, beta) coordinates on the
    plane (zeros in the follow frame), and ``updates`` (steps, 2) the move from each captured step to the next in
    the same coordinates. ``explained_variance`` holds the PCA ratio of each direction for 'pca' directions,
    ``hessian_eigenvalues`` (2,) the eigenvalues of 'hessian' directions (None for other kinds).
    On a 1D grid (``grid.dimensions = 1``) ``betas`` is ``[0.0]``, ``loss`` is (steps, nx, 1) and d2 is zero.
    ``runs`` lists every training run on the plane, primary first (one record, named 'main', without
    ``[[training.runs]]``); the single-run fields above describe the primary run. ``center_buffers[k]`` are
    the BatchNorm running statistics (name → tensor) at captured step ``k`` (empty dicts without BatchNorm).
    ``scales`` (steps,): with ``grid.zoom``, step ``k``'s axes are ``alphas * scales[k]`` and ``betas *
    scales[k]`` (its curvature map likewise); ``alphas`` and ``betas`` stay the first step's (scale 1) axes. Ones
    without zoom. ``plane_path`` and ``updates`` are in unscaled (alpha, beta) units.

    Optional parts: ``curvature`` (:class:`CurvatureMaps`) with ``[capture.curvature]``, ``samples``
    (:class:`SampleLandscapes`) with ``capture.data = 'samples'``; their arrays are also reachable under the flat
    names ``curv_min``, ``curv_max``, ``convexity``, ``curvature_alphas``, ``curvature_betas``, ``sample_loss``,
    ``sample_center_loss`` and ``sample_indices`` (None without the part).
    """

    scene: Scene
    key: str
    path: Path
    alphas: np.ndarray
    betas: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    center_loss: np.ndarray
    train_loss: np.ndarray
    centers: list = field(repr=False)
    directions: tuple = field(repr=False)
    plane_path: np.ndarray
    updates: np.ndarray
    scales: np.ndarray
    runs: list
    center_buffers: list = field(repr=False)
    device: str = "cpu"
    frame: str = "follow"
    origin: Optional[dict] = field(default=None, repr=False)
    explained_variance: Optional[np.ndarray] = None
    hessian_eigenvalues: Optional[np.ndarray] = None
    curvature: Optional[CurvatureMaps] = None
    samples: Optional[SampleLandscapes] = None

    def center(self, k: int = -1) -> dict:
        """The weights (name → tensor) at which captured step ``k``'s grid is centred, grid point (0, 0): step k's
        own weights in the follow frame, the one plane centre in the fixed frame. With 'weights' directions the two
        named entries are zero there, so that the grid's coordinates are their values."""
        c = self.origin if self.frame == "fixed" else self.centers[k]
        return zero_entries(c, self.scene.directions.weights) if self.scene.directions.kind == "weights" else c

    @property
    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        return self.alphas, self.betas

    @property
    def data(self):
        """The dataset, with the fixed evaluation subset the landscape was measured on (``x_eval``, ``y_eval``)."""
        return load_dataset(self.scene.data, wants_images(self.scene.model), self.scene.source or "<scene>")

    @property
    def eval_data(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return d.x_eval, d.y_eval

    def model(self, k: int = -1):
        """The model with the weights of captured step index ``k`` (default: the last), on the CPU."""
        dtype = getattr(torch, self.scene.capture.dtype)
        m = initial_model(self.scene, self.data, dtype)
        with torch.no_grad():
            for name, p in m.named_parameters():
                p.copy_(self.centers[k][name])
            if self.center_buffers:
                for name, b in m.named_buffers():
                    if name in self.center_buffers[k]:
                        b.copy_(self.center_buffers[k][name])
        return m.eval()

    def convexity_on_grid(self) -> Optional[np.ndarray]:
        """(steps, nx, ny) the convexity ratio interpolated from the curvature grid onto the loss grid; None
        without curvature maps."""
        if self.curvature is None:
            return None
        return resample(self.convexity, self.curvature.alphas, self.curvature.betas, self.alphas, self.betas)

    # The flat names of the optional parts, as notebooks and exports use them: None without the part.
    curv_min = _from_part("curvature", "curv_min")
    curv_max = _from_part("curvature", "curv_max")
    convexity = _from_part("curvature", "convexity")
    curvature_alphas = _from_part("curvature", "alphas")
    curvature_betas = _from_part("curvature", "betas")
    sample_loss = _from_part("samples", "loss")
    sample_center_loss = _from_part("samples", "center_loss")
    sample_indices = _from_part("samples", "indices")


@dataclass
class PanelCapture:
    """The captures of a scene with ``[[panels]]``: ``scene`` is the whole film's scene, ``panels[i]`` the
    :class:`Capture` of ``scene.panel_scenes()[i]`` (panels with the same capture key share the arrays, each with
    its own scene)."""

    scene: Scene
    panels: list

    @property
    def key(self) -> str:
        """The panels' capture keys, joined with '+' (for the film's sidecar)."""
        return "+".join(c.key for c in self.panels)

    @property
    def path(self) -> Path:
        """The directory that holds every panel's capture (the store's capture directory)."""
        return Path(os.path.commonpath([str(c.path) for c in self.panels]))
