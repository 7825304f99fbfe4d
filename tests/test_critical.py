import numpy as np
import pytest

from llstudio.critical import classify, critical_points


def grid(f, n=41, lo=-1.0, hi=1.0):
    a = np.linspace(lo, hi, n)
    b = np.linspace(lo, hi, n + 4)  # non-square on purpose: catches transposed axes
    A, B = np.meshgrid(a, b, indexing="ij")
    return f(A, B), a, b


def test_bowl_has_one_minimum_refined_off_the_grid():
    v, a, b = grid(lambda x, y: (x - 0.123) ** 2 + 2 * (y + 0.311) ** 2)
    pts = critical_points(v, a, b)
    assert [p.kind for p in pts] == ["minimum"]
    # A parabola through three nodes has its vertex exactly where the refinement puts it.
    assert pts[0].alpha == pytest.approx(0.123, abs=1e-9)
    assert pts[0].beta == pytest.approx(-0.311, abs=1e-9)


def test_dome_and_saddle():
    v, a, b = grid(lambda x, y: -(x ** 2) - y ** 2)
    assert [p.kind for p in critical_points(v, a, b)] == ["maximum"]
    v, a, b = grid(lambda x, y: (x - 0.2) ** 2 - (y - 0.1) ** 2)
    pts = critical_points(v, a, b)
    assert [p.kind for p in pts] == ["saddle"]
    assert (pts[0].alpha, pts[0].beta) == (pytest.approx(0.2, abs=1e-9), pytest.approx(0.1, abs=1e-9))


def test_egg_crate_counts():
    # cos(pi x) cos(pi y) on [-1.5, 1.5]^2 with the grid nodes on the critical points: minima at (±1, 0), (0, ±1),
    # maxima at (0, 0), (±1, ±1), saddles at (±0.5, ±0.5) and the like.
    n = 31
    a = np.linspace(-1.5, 1.5, n)
    A, B = np.meshgrid(a, a, indexing="ij")
    v = np.cos(np.pi * A) * np.cos(np.pi * B)
    kinds = classify(v)
    assert (kinds == 1).sum() == 4
    assert (kinds == 2).sum() == 5
    # Saddles at (±0.5, ±0.5); those at ±1.5 lie on the border. Rounding noise along the zero lines x, y = ±0.5
    # must not add more.
    assert (kinds == 3).sum() == 4
    pts = critical_points(v, a, a, kinds=("minimum",))
    got = sorted((round(p.alpha, 6), round(p.beta, 6)) for p in pts)
    assert got == [(-1.0, 0.0), (0.0, -1.0), (0.0, 1.0), (1.0, 0.0)]


def test_plateau_nan_and_border_are_not_critical():
    assert not classify(np.ones((9, 9))).any()
    v, a, b = grid(lambda x, y: x ** 2 + y ** 2, n=9)
    v[4, 6] = np.nan  # the minimum's neighbourhood holds a NaN: it is not claimed
    assert not (classify(v) == 1).any()
    v, a, b = grid(lambda x, y: (x + 1) ** 2 + y ** 2)  # minimum on the border: not interior, not marked
    assert critical_points(v, a, b) == []


def test_limit_and_order():
    n = 61
    a = np.linspace(-3, 3, n)
    A, B = np.meshgrid(a, a, indexing="ij")
    v = np.cos(np.pi * A) * np.cos(np.pi * B) + 0.01 * A
    pts = critical_points(v, a, a, kinds=("minimum",), limit=3)
    assert len(pts) == 3
    assert [p.value for p in pts] == sorted(p.value for p in pts)
