import numpy as np
import pytest

from llstudio.film.critical import classify, critical_points


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


def test_timeline_marks_critical_points_of_each_frame():
    from llstudio.config.scene import ScalingSpec, TimelineSpec
    from llstudio.film.timeline import Keyframes, Timeline

    a = np.linspace(-1, 1, 21)
    A, B = np.meshgrid(a, a, indexing="ij")
    loss = np.stack([1 + (A - 0.3) ** 2 + B ** 2, 1 + (A + 0.3) ** 2 + B ** 2])
    tl = Timeline(Keyframes(np.array([0, 10]), loss, np.array([1.0, 1.0]), alphas=a, betas=a), TimelineSpec(), ScalingSpec(log=False), 10, critical=True)
    first = tl.frame(tl.frame_of_step(0)).critical
    last = tl.frame(tl.frame_of_step(1)).critical
    assert [p.kind for p in first] == ["minimum"] and first[0].alpha == pytest.approx(0.3, abs=1e-9)
    assert last[0].alpha == pytest.approx(-0.3, abs=1e-9)
    assert Timeline(Keyframes(np.array([0, 10]), loss, np.array([1.0, 1.0])), TimelineSpec(), ScalingSpec(log=False), 10).frame(0).critical == ()


@pytest.mark.render
def test_renderer_draws_critical_points():
    from llstudio.film.camera import camera_path
    from llstudio.renderer.plotter import SurfaceRenderer
    from llstudio.config.scene import CameraSpec, LookSpec
    from llstudio.film.timeline import FrameState
    from llstudio.film.critical import critical_points

    a = np.linspace(-1, 1, 21)
    A, B = np.meshgrid(a, a, indexing="ij")
    v = A ** 2 + B ** 2
    pose = camera_path(CameraSpec(), 2, (0, 0, 0.5), 2.0).pose(0)
    imgs = {}
    for on in (False, True):
        look = LookSpec(critical_points=on, marker=False, contours=0, anti_aliasing="none", overlay=False,
                        colormap="gray")
        crit = tuple(critical_points(v, a, a)) if on else ()
        with SurfaceRenderer(a, a, look, 160, 90, 0.5) as r:
            imgs[on] = r.render(FrameState(0, v, 0.0, 1.0, 0.0, 2.0, critical=crit), pose).astype(int)
    # The minimum's marker is blue on a grey surface: strongly blue pixels appear only with it.
    blue = lambda img: ((img[..., 2] - img[..., 0]) > 60).sum()
    assert blue(imgs[False]) == 0 and blue(imgs[True]) > 3
