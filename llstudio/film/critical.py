"""Critical points of a sampled landscape: minima, maxima and saddles on a grid. Pure numpy.

The term project in ``seeds/002`` marks the critical points of its loss surfaces. On a sampled grid a point is
classified by the ring of its eight neighbours, walked in order around it: all higher → a local minimum, all lower
→ a local maximum, and four or more changes of sign of (neighbour − centre) around the ring → a saddle (the
surface goes up, down, up, down around it). Positions are refined to sub-grid accuracy with the extremum of the
quadratic through the point and its axis neighbours, so markers do not jump from one grid node to the next while
the surface morphs between captured steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The eight neighbours in order around the centre (di, dj).
_RING = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))

KINDS = ("minimum", "maximum", "saddle")


@dataclass(frozen=True)
class CriticalPoint:
    kind: str  # one of KINDS
    alpha: float
    beta: float
    value: float


def _refine(v: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """Sub-grid offset (di, dj) in [-0.5, 0.5] of the extremum of the 1D parabolas through (i, j) along each axis."""
    out = []
    for lo, c, hi in ((v[i - 1, j], v[i, j], v[i + 1, j]), (v[i, j - 1], v[i, j], v[i, j + 1])):
        curv = lo - 2.0 * c + hi
        out.append(float(np.clip(0.5 * (lo - hi) / curv, -0.5, 0.5)) if curv != 0.0 else 0.0)
    return out[0], out[1]


def classify(values: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """Kind of every grid point of ``values`` (nx, ny): 0 none, 1 minimum, 2 maximum, 3 saddle (border: 0).

    Differences within ``rtol`` of the value range are ties and count as neither higher nor lower: a flat plateau
    is then not a field of minima, and rounding noise along a level line does not make saddles. Non-finite values
    are never critical and never make a neighbour critical.
    """
    v = np.asarray(values, dtype=np.float64)
    nx, ny = v.shape
    kind = np.zeros((nx, ny), dtype=np.int8)
    if nx < 3 or ny < 3:
        return kind
    c = v[1:-1, 1:-1]
    # (8, nx-2, ny-2) signs of neighbour − centre, in ring order.
    diffs = np.stack([v[1 + di:nx - 1 + di, 1 + dj:ny - 1 + dj] - c for di, dj in _RING])
    ok = np.isfinite(c) & np.all(np.isfinite(diffs), axis=0)
    finite = v[np.isfinite(v)]
    tol = rtol * float(np.ptp(finite)) if finite.size else 0.0
    diffs = np.nan_to_num(diffs)
    sign = np.where(np.abs(diffs) <= tol, 0.0, np.sign(diffs))
    higher, lower = np.all(sign > 0, axis=0), np.all(sign < 0, axis=0)
    # Changes of sign around the ring, ignoring zeros (ties): compare each non-zero sign with the previous one.
    changes = np.zeros(c.shape, dtype=np.int32)
    for a in range(8):
        s = sign[a]
        prev = np.zeros(c.shape)
        for back in range(1, 8):  # the nearest non-zero sign before a, going backwards around the ring
            cand = sign[(a - back) % 8]
            prev = np.where(prev == 0, cand, prev)
        changes += ((s != 0) & (prev != 0) & (s != prev)).astype(np.int32)
    inner = np.where(higher, 1, np.where(lower, 2, np.where(changes >= 4, 3, 0)))
    kind[1:-1, 1:-1] = np.where(ok, inner, 0)
    return kind


def critical_points(values: np.ndarray, alphas: np.ndarray, betas: np.ndarray,
                    kinds: tuple[str, ...] = KINDS, limit: int = 64) -> list[CriticalPoint]:
    """Critical points of ``values`` (nx, ny) sampled at ``alphas`` (nx,) × ``betas`` (ny,), refined between grid
    nodes; at most ``limit`` of them, the lowest minima, highest maxima and lowest saddles first."""
    v = np.asarray(values, dtype=np.float64)
    kind = classify(v)
    found = []
    for code, name in enumerate(KINDS, start=1):
        if name not in kinds:
            continue
        ii, jj = np.nonzero(kind == code)
        order = np.argsort(v[ii, jj] * (-1.0 if name == "maximum" else 1.0), kind="stable")
        for i, j in zip(ii[order], jj[order]):
            di, dj = _refine(v, int(i), int(j))
            found.append(CriticalPoint(
                name,
                float(np.interp(i + di, np.arange(len(alphas)), alphas)),
                float(np.interp(j + dj, np.arange(len(betas)), betas)),
                float(v[i, j]),
            ))
    return found[:limit]
