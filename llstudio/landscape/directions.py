"""Directions that span the slice through weight space.

A direction is a dict ``name → tensor`` shaped like the model's parameters. Directions are drawn on the CPU from a
seeded generator, so the same scene gives the same directions on any device.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..config.scene import DirectionsSpec
from ..config.weight_refs import parse_weight_ref

_EPS = 1e-10


def is_filter_weight(t: torch.Tensor) -> bool:
    """Weights with a filter structure (Linear, Conv) have at least two dimensions; biases and BN have one."""
    return t.dim() >= 2


def random_direction(reference: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A standard Gaussian direction shaped like ``reference`` (CPU, reference dtype)."""
    return {k: torch.randn(v.shape, generator=generator, dtype=torch.float64).to(v.dtype) for k, v in reference.items()}


def normalize(direction: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], how: str,
              include_biases: bool = False) -> dict[str, torch.Tensor]:
    """Scale ``direction`` against ``reference`` weights.

    - ``filter``: every filter (slice along dim 0 of a weight) gets the norm of the matching reference filter;
    - ``layer``: every tensor gets the norm of the matching reference tensor;
    - ``model``: the whole vector gets the norm of the whole reference;
    - ``none``: unchanged.

    One-dimensional tensors (biases, BatchNorm) are zeroed unless ``include_biases``; included ones are scaled
    per tensor (a bias has no filters).
    """
    out: dict[str, torch.Tensor] = {}
    for k, d in direction.items():
        w = reference[k]
        if not is_filter_weight(w) and not include_biases:
            out[k] = torch.zeros_like(d)
            continue
        # Norms in float64: float32 squares overflow for the huge weights of a diverging run.
        if how == "filter" and is_filter_weight(w):
            dn = d.double().flatten(1).norm(dim=1).clamp_min(_EPS)
            wn = w.double().flatten(1).norm(dim=1)
            out[k] = (d.double() * (wn / dn).view(-1, *([1] * (d.dim() - 1)))).to(d.dtype)
        elif how in ("filter", "layer"):
            out[k] = (d.double() * (w.double().norm() / d.double().norm().clamp_min(_EPS))).to(d.dtype)
        else:
            out[k] = d.clone()
    if how == "model":
        included = [k for k in out if include_biases or is_filter_weight(reference[k])]
        dn = torch.sqrt(sum((out[k].double() ** 2).sum() for k in included)).clamp_min(_EPS)
        wn = torch.sqrt(sum((reference[k].double() ** 2).sum() for k in included))
        out = {k: v * (wn / dn).to(v.dtype) for k, v in out.items()}
    return out


def random_directions(spec: DirectionsSpec, reference: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Two seeded random directions, normalised against ``reference`` as the scene asks."""
    g = torch.Generator().manual_seed(spec.seed)
    d1 = random_direction(reference, g)
    d2 = random_direction(reference, g)
    return (normalize(d1, reference, spec.normalization, spec.include_biases),
            normalize(d2, reference, spec.normalization, spec.include_biases))


def _included(reference: dict[str, torch.Tensor], include_biases: bool) -> list[str]:
    return [k for k, v in reference.items() if include_biases or is_filter_weight(v)]


def pca_directions(weights: list[dict[str, torch.Tensor]], reference: dict[str, torch.Tensor],
                   include_biases: bool = False) -> tuple[dict, dict, np.ndarray]:
    """First two principal components of the trajectory ``weights[k] - reference`` (Li et al. 2018, sec. 7).

    Returns two orthonormal directions (unit length, zero on excluded tensors) and the explained-variance ratio
    of each, from scikit-learn's PCA (which centres the differences on their mean).
    """
    from sklearn.decomposition import PCA

    keys = _included(reference, include_biases)
    rows = np.stack([torch.cat([(w[k] - reference[k]).double().reshape(-1) for k in keys]).numpy()
                     for w in weights])
    pca = PCA(n_components=2, svd_solver="full").fit(rows)
    out = []
    for comp in pca.components_:
        d, i = {}, 0
        for k, v in reference.items():
            if k in keys:
                d[k] = torch.from_numpy(comp[i:i + v.numel()].reshape(v.shape).copy()).to(v.dtype)
                i += v.numel()
            else:
                d[k] = torch.zeros_like(v)
        out.append(d)
    return out[0], out[1], pca.explained_variance_ratio_.copy()


def project(weights: list[dict[str, torch.Tensor]], center: dict[str, torch.Tensor], d1: dict,
            d2: Optional[dict]) -> np.ndarray:
    """Least-squares coordinates (alpha, beta) of each ``weights[k] - center`` on the plane of d1, d2: (K, 2).
    With ``d2`` None (a 1D grid), the coordinate along the line of d1, and beta = 0."""
    cols = [flatten(d1).double()] + ([] if d2 is None else [flatten(d2).double()])
    basis = torch.stack(cols, dim=1)  # (P, 1 or 2)
    c = flatten(center).double()
    diffs = torch.stack([flatten(w).double() - c for w in weights], dim=1)  # (P, K)
    # Weights of a diverged run (inf/NaN) have no coordinates: NaN, and LAPACK never sees them.
    ok = torch.isfinite(diffs).all(dim=0)
    coords = torch.full((2, diffs.shape[1]), float("nan"), dtype=torch.float64)
    if d2 is None:
        coords[1] = 0.0
    if bool(ok.any()):
        coords[:basis.shape[1], ok] = torch.linalg.lstsq(basis, diffs[:, ok]).solution
    return coords.T.numpy()


def check_weight_ref(ref: str, reference: dict[str, torch.Tensor]) -> tuple[str, tuple[int, ...]]:
    """Parse ``ref`` and check it names one entry of a parameter; the error lists what the model has."""
    name, index = parse_weight_ref(ref)
    listing = ", ".join(f"{k} {tuple(v.shape)}" for k, v in reference.items())
    if name not in reference:
        raise ValueError(f"the model has no parameter '{name}'; its parameters are: {listing}")
    shape = tuple(reference[name].shape)
    if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
        raise ValueError(f"index {list(index)} does not pick one entry of '{name}', whose shape is {shape}")
    return name, index


def weight_directions(refs: list[str], reference: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """Unit directions along two single weights: moving along them changes those weights and nothing else.
    With one weight (a 1D grid), the second direction is zero."""
    out = []
    for ref in refs:
        name, index = check_weight_ref(ref, reference)
        d = {k: torch.zeros_like(v) for k, v in reference.items()}
        d[name][index] = 1.0
        out.append(d)
    if len(out) == 1:
        out.append(zeros_like(reference))
    return out[0], out[1]


def zero_entries(weights: dict[str, torch.Tensor], refs: list[str]) -> dict[str, torch.Tensor]:
    """A copy of ``weights`` with the named entries set to zero, so that grid coordinates are their values."""
    out = dict(weights)
    for ref in refs:
        name, index = parse_weight_ref(ref)
        out[name] = out[name].clone()
        out[name][index] = 0.0
    return out


def weight_values(weights: list[dict[str, torch.Tensor]], refs: list[str]) -> np.ndarray:
    """(K, 2): the values of the two named weights at each of ``weights`` (beta = 0 with one named weight)."""
    idx = [parse_weight_ref(r) for r in refs]
    out = np.zeros((len(weights), 2))
    out[:, :len(idx)] = [[float(w[name][index]) for name, index in idx] for w in weights]
    return out


def flatten(direction: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in direction.values()])


def cosine(d1: dict[str, torch.Tensor], d2: dict[str, torch.Tensor]) -> float:
    """Cosine similarity of two directions (random ones are nearly orthogonal in high dimension)."""
    a, b = flatten(d1).double(), flatten(d2).double()
    return float(a @ b / (a.norm() * b.norm()).clamp_min(_EPS))


def zeros_like(reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A zero direction: the unused second direction of a 1D grid."""
    return {k: torch.zeros_like(v) for k, v in reference.items()}


def orthogonalize(d: dict[str, torch.Tensor], against: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``d`` minus its component along ``against`` (one Gram-Schmidt step over the whole weight vector, computed in
    float64 and cast back to each tensor's dtype)."""
    a, v = flatten(against).double(), flatten(d).double()
    c = float(v @ a) / max(float(a @ a), _EPS)
    return {k: (d[k].double() - c * against[k].double()).to(d[k].dtype) for k in d}


def interpolation_directions(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor],
                             via: Optional[dict[str, torch.Tensor]], spec: DirectionsSpec,
                             dimensions: int) -> tuple[dict, dict, str]:
    """Directions of the line (1D) or plane (2D) through checkpoints, centred at ``start``.

    d1 = end - start, unnormalised (alpha = 0 is start, alpha = 1 is end), over every parameter, biases included
    (the interpolated model is a real model). In 2D, d2 is ``via - start`` or a seeded random direction (normalised
    against ``start`` as ``spec`` asks), either way orthogonalised against d1 (Gram-Schmidt). Returns d1, d2 (zero
    in 1D) and a sentence saying how d2 was made, for the manifest.
    """
    d1 = {k: (end[k].double() - start[k].double()).to(start[k].dtype) for k in start}
    if float(flatten(d1).double().norm()) == 0.0:
        raise ValueError("the start and end weights are identical: there is no line between them")
    if dimensions == 1:
        return d1, zeros_like(start), "none (1D grid)"
    if via is not None:
        raw = {k: (via[k].double() - start[k].double()).to(start[k].dtype) for k in start}
        how = "via - start, orthogonalised against d1 (Gram-Schmidt), unnormalised: via lies at beta = 1"
    else:
        g = torch.Generator().manual_seed(spec.seed)
        raw = normalize(random_direction(start, g), start, spec.normalization, spec.include_biases)
        how = (f"random (seed {spec.seed}), {spec.normalization}-normalised against the start weights, then "
               "orthogonalised against d1 (Gram-Schmidt)")
    d2 = orthogonalize(raw, d1)
    if float(flatten(d2).double().norm()) <= 1e-12 * float(flatten(d1).double().norm()):
        raise ValueError("the via point lies on the line through start and end: the three points span no plane")
    return d1, d2, how
