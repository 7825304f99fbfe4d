"""The landscape stage: the loss, and its curvature, on a 2D slice through a model's weight space.

A slice is a centre ``c`` (a step's weights) and two directions ``d1``, ``d2`` (dicts ``name → tensor`` shaped
like the parameters: random, PCA of the trajectory, named weights or interpolation from ``directions``, Hessian
eigenvectors from ``curvature``). The stage evaluates ``L(c + alpha d1 + beta d2)`` on a grid of ``(alpha, beta)``,
many grid points per batch (:class:`LandscapeEvaluator`, with the plain per-point loop :func:`reference_grid` as its reference),
and the extreme Hessian eigenvalues on a grid (:class:`HessianOperator`, :func:`curvature_grid`).

Modules, one job each: ``evaluator`` (the public evaluator: strategy choice, batch sizes, threads), ``mlp``,
``vmap`` and ``first_layer`` (its strategies), ``chunks`` (grid points in chunks on worker threads),
``reference`` (the per-point loop), ``batchnorm``, ``dropout`` and ``shared_linear`` (the capture versions of
those layers, swapped in by ``swaps``), ``directions`` and ``curvature``; ``result`` (:class:`Capture`, what a
capture gives the film and notebook users, which can rebuild its model through the training stage).

The evaluators take models, tensors and directions and return arrays: the stage knows nothing of the store or
pixels.
"""

from .batchnorm import MODES
from .curvature import (HessianOperator, NonFiniteCurvature, convexity_ratio, curvature_grid, extreme_eigenpairs,
                        hessian_directions, resample)
from .directions import (check_weight_ref, cosine, flatten, interpolation_directions, normalize, pca_directions,
                         project, random_directions, weight_directions, weight_values, zero_entries)
from .dropout import DROPOUT, UnsupportedDropout, mask_seed
from .evaluator import STRATEGIES, LandscapeEvaluator
from .reference import reference_grid

__all__ = [
    "DROPOUT", "MODES", "STRATEGIES", "HessianOperator", "LandscapeEvaluator", "NonFiniteCurvature",
    "UnsupportedDropout", "check_weight_ref", "convexity_ratio", "cosine", "curvature_grid", "extreme_eigenpairs",
    "flatten", "hessian_directions", "interpolation_directions", "mask_seed", "normalize", "pca_directions",
    "project", "random_directions", "reference_grid", "resample", "weight_directions", "weight_values",
    "zero_entries",
]
