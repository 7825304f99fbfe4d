"""Timeline: captured steps → one surface per video frame. Pure numpy units."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from llstudio.config.scene import ScalingSpec, TimelineSpec
from llstudio.film.timeline import Keyframes, Timeline, ease, fill_nonfinite, film_length, scale_loss

INTERPOLATIONS = ["linear", "cubic", "smoothstep"]
STEPS = np.array([0, 4, 8, 12, 16])


def raw_loss(k=5, shape=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 5.0, (k, *shape)), rng.uniform(0.05, 5.0, k)


def timeline(interp="linear", loss=None, center=None, fps=10, hold_start=0.5, sps=0.5, hold_end=0.5,
             **scaling):
    if loss is None:
        loss, c = raw_loss()
        center = c if center is None else center
    spec = TimelineSpec(seconds_per_step=sps, hold_start=hold_start, hold_end=hold_end, interpolation=interp)
    return Timeline(Keyframes(STEPS[: len(loss)], loss, center), spec, ScalingSpec(**scaling), fps)


@pytest.mark.parametrize("interp", INTERPOLATIONS)
def test_frame_at_a_captured_step_shows_that_steps_values_exactly(interp):
    # fps 10, hold 0.5 s, 0.5 s per step: captured step k is shown at frame 5 + 5k exactly.
    loss, center = raw_loss()
    tl = timeline(interp, loss, center)
    scaled = np.log10(loss)
    for k in range(len(loss)):
        f = tl.frame_of_step(k)
        assert f == 5 + 5 * k
        st = tl.frame(f)
        np.testing.assert_array_equal(st.values, tl.values[k])
        np.testing.assert_allclose(st.values, scaled[k], rtol=1e-12)
        assert st.step == STEPS[k]
        assert st.center_loss == pytest.approx(center[k], rel=1e-12)
        assert st.index == f


@pytest.mark.parametrize("interp", INTERPOLATIONS)
def test_captured_step_values_with_inexact_frame_times(interp):
    # hold 0.1 s, 0.2 s per step at 10 fps: frames 1, 3, 5, ... although 0.1 and 0.2 are not exact in binary.
    loss, center = raw_loss()
    tl = timeline(interp, loss, center, fps=10, hold_start=0.1, sps=0.2, hold_end=0.1)
    for k in range(len(loss)):
        f = tl.frame_of_step(k)
        assert f == 1 + 2 * k
        st = tl.frame(f)
        np.testing.assert_allclose(st.values, tl.values[k], rtol=1e-12, atol=1e-12)
        assert st.step == pytest.approx(STEPS[k], abs=1e-9)


@pytest.mark.parametrize("interp", ["linear", "cubic"])
def test_captured_step_values_are_unchanged_with_inexact_frame_times(interp):
    loss, center = raw_loss()
    tl = timeline(interp, loss, center, fps=10, hold_start=0.1, sps=0.2, hold_end=0.1)
    for k in range(len(loss)):
        st = tl.frame(tl.frame_of_step(k))
        assert st.step == STEPS[k]
        np.testing.assert_array_equal(st.values, tl.values[k])


@pytest.mark.parametrize("fps", [10, 15, 24, 30, 60])
@pytest.mark.parametrize("k", [2, 5, 31])
def test_n_frames_matches_film_length(fps, k):
    spec = TimelineSpec(seconds_per_step=0.2, hold_start=0.1, hold_end=0.3)
    loss = np.ones((k, 2, 2))
    tl = Timeline(Keyframes(np.arange(k), loss, np.ones(k)), spec, ScalingSpec(), fps)
    duration, n = film_length(k, spec, fps)
    assert duration == pytest.approx(0.1 + (k - 1) * 0.2 + 0.3)
    assert n == round(duration * fps)
    assert tl.n_frames == n and tl.duration == duration


def test_film_length_is_at_least_one_frame():
    spec = TimelineSpec(seconds_per_step=0.001, hold_start=0.0, hold_end=0.0)
    assert film_length(2, spec, 10)[1] == 1


def test_holds_show_first_and_last_step():
    tl = timeline("cubic")
    for f in range(0, tl.frame_of_step(0) + 1):
        np.testing.assert_array_equal(tl.frame(f).values, tl.values[0])
        assert tl.frame(f).step == 0
    last = len(STEPS) - 1
    for f in range(tl.frame_of_step(last), tl.n_frames):
        np.testing.assert_array_equal(tl.frame(f).values, tl.values[last])
        assert tl.frame(f).step == STEPS[last]


def test_linear_and_smoothstep_between_steps():
    loss, center = raw_loss()
    lin = timeline("linear", loss, center, fps=20, hold_start=0.0, sps=1.0)
    smo = timeline("smoothstep", loss, center, fps=20, hold_start=0.0, sps=1.0)
    v = lin.values
    # halfway: both are the mean
    np.testing.assert_allclose(lin.frame(10).values, 0.5 * (v[0] + v[1]), rtol=1e-12)
    np.testing.assert_allclose(smo.frame(10).values, 0.5 * (v[0] + v[1]), rtol=1e-12)
    # a quarter of the way: linear 0.25, smoothstep 0.25² (3 − 0.5) = 0.15625
    np.testing.assert_allclose(lin.frame(5).values, 0.75 * v[0] + 0.25 * v[1], rtol=1e-12)
    np.testing.assert_allclose(smo.frame(5).values, 0.84375 * v[0] + 0.15625 * v[1], rtol=1e-12)
    assert lin.frame(5).step == pytest.approx(1.0)  # steps 0 → 4, a quarter of the way


def test_cubic_overshoot_is_bounded_and_stays_in_the_film_range():
    # 'cubic' keeps every value moving through a captured step where it turns (no pause), so it passes a little
    # beyond the captured values around a turn: at most 4/27 of each neighbouring tangent (Hermite basis), never
    # outside the film's range.
    loss, center = raw_loss(k=5, shape=(6, 6), seed=3)
    tl = timeline("cubic", loss, center, fps=30, hold_start=0.0, sps=1.0)
    v = tl.values
    step = np.abs(np.diff(v, axis=0)).max(axis=0)  # the largest change between neighbouring steps, per value
    for f in range(tl.n_frames):
        u = tl.position(f)
        k = min(int(np.floor(u)), len(v) - 2)
        lo, hi = np.minimum(v[k], v[k + 1]), np.maximum(v[k], v[k + 1])
        vals = tl.frame(f).values
        assert np.all(vals >= lo - 0.3 * step - 1e-12) and np.all(vals <= hi + 0.3 * step + 1e-12), f
        assert vals.min() >= v.min() - 1e-12 and vals.max() <= v.max() + 1e-12


@pytest.mark.parametrize("speed", [None, [{"at": 0.0, "speed": 0.5}, {"at": 1.0, "speed": 2.0}]])
def test_cubic_keeps_its_pace_through_captured_steps(speed):
    # A per-value monotone fit stops each value where it turns: the surface slowed by about 35% at every captured
    # step. The spline in film time keeps the frame-to-frame change continuous through every step, also where a
    # speed ramp makes the transitions on either side of it last different numbers of frames.
    loss, center = raw_loss(k=6, shape=(8, 8), seed=5)
    loss[:, 0, 0], loss[:, -1, -1] = 10.0, 0.01  # the film's range: wider than every moving value (no clipping)
    spec = TimelineSpec(seconds_per_step=1.0, hold_start=0.5, hold_end=0.5, interpolation="cubic",
                        **({"speed": speed} if speed else {}))
    tl = Timeline(Keyframes(np.arange(6) * 4, loss, center), spec, ScalingSpec(), 30)
    values = np.array([tl.frame(f).values for f in range(tl.n_frames)])
    for k in range(1, 5):
        f = tl.frame_of_step(k)
        np.testing.assert_array_equal(values[f], tl.values[k])
        # one-sided velocities, second order in the frame step: equal on both sides of the step (C1)
        before = (3 * values[f] - 4 * values[f - 1] + values[f - 2]) / 2
        after = (-3 * values[f] + 4 * values[f + 1] - values[f + 2]) / 2
        assert np.abs(after - before).max() <= 0.05 * np.abs(before).max(), k


def test_cubic_keeps_a_turning_value_moving_through_its_captured_step():
    """A value that turns at a captured step (up, then down by another amount) passes it at its centred slope,
    (v[k+1] - v[k-1]) / (frames of the two transitions): the old per-value monotone fit (PCHIP) stopped it there,
    every turning value at once, which the tiny capture of tests/renderer/test_motion.py cannot show (its values
    hardly turn). Without a speed ramp PCHIP is C1 too, so the pace test above does not catch it."""
    rng = np.random.default_rng(3)
    sign = np.where(np.arange(5) % 2 == 0, 1.0, -1.0)[:, None, None]
    moves = sign * rng.uniform(0.1, 1.0, (5, 6, 6))  # every value turns at every inner step, by its own amounts
    loss = 10.0 ** (np.concatenate([np.zeros((1, 6, 6)), np.cumsum(moves, axis=0)]) / 4)
    loss[:, 0, 0], loss[:, -1, -1] = 100.0, 0.01  # the film's range: wider than every moving value (no clipping)
    spec = TimelineSpec(seconds_per_step=1.0, hold_start=0.5, hold_end=0.5, interpolation="cubic")
    tl = Timeline(Keyframes(np.arange(6) * 4, loss, np.ones(6)), spec, ScalingSpec(), 30)
    values = np.array([tl.values_at(tl.position(f)) for f in range(tl.n_frames)])
    sc = tl.schedule
    for k in range(1, 5):
        f = tl.frame_of_step(k)
        centred = (tl.values[k + 1] - tl.values[k - 1]) / (sc.arrive[k + 1] - sc.arrive[k - 1])
        velocity = (values[f + 1] - values[f - 1]) / 2
        top = np.abs(centred).max()
        assert (np.abs(centred) > 0.3 * top).sum() >= 10  # (the data: many values pass the step at a good pace)
        np.testing.assert_allclose(velocity, centred, rtol=0, atol=0.05 * top)  # PCHIP: off by ~top


def test_cubic_eases_into_and_out_of_held_steps():
    loss, center = raw_loss(k=4, shape=(3, 3), seed=7)
    spec = TimelineSpec(seconds_per_step=1.0, hold_start=0.5, hold_end=0.5, hold_each=0.5, interpolation="cubic")
    tl = Timeline(Keyframes(np.arange(4), loss, center), spec, ScalingSpec(), 30)
    for k in range(4):
        f = tl.frame_of_step(k)
        step_out = np.abs(tl.frame(f + 1).values - tl.values[k]).max()
        move = np.abs(tl.values[min(k + 1, 3)] - tl.values[k]).max()
        assert step_out <= 0.02 * move + 1e-12  # starts from rest: a zero tangent at a held step


def test_film_range_is_constant_frame_range_follows_the_frame():
    loss, center = raw_loss()
    film = timeline("linear", loss, center)
    per_frame = timeline("linear", loss, center, range="frame")
    for f in (0, 7, 12, film.n_frames - 1):
        a, b = film.frame(f), per_frame.frame(f)
        assert (a.vmin, a.vmax) == (film.values.min(), film.values.max())
        assert (b.vmin, b.vmax) == (b.values.min(), b.values.max())
        np.testing.assert_array_equal(a.values, b.values)


# ------------------------------------------------------------------------------------------------ scaling


def test_scale_loss_log_and_clip():
    v = np.array([0.001, 0.1, 1.0, 10.0, 1000.0])
    np.testing.assert_allclose(scale_loss(v, ScalingSpec(log=True)), [-3, -1, 0, 1, 3])
    np.testing.assert_allclose(scale_loss(v, ScalingSpec(log=False)), v)
    np.testing.assert_allclose(scale_loss(v, ScalingSpec(log=False, clip=5.0)), [0.001, 0.1, 1.0, 5.0, 5.0])
    np.testing.assert_allclose(scale_loss(v, ScalingSpec(log=True, clip=100.0)), [-3, -1, 0, 1, 2])


def test_scale_loss_zero_is_finite_under_log():
    out = scale_loss(np.array([0.0, 1.0]), ScalingSpec(log=True))
    assert np.all(np.isfinite(out)) and out[0] == -12


def test_timeline_applies_scaling():
    loss, center = raw_loss()
    tl = timeline("linear", loss, center, log=False, clip=2.0)
    np.testing.assert_allclose(tl.values, np.minimum(loss, 2.0))
    assert tl.vmax == pytest.approx(2.0)


def test_fill_nonfinite():
    a = np.array([1.0, np.nan, 3.0, np.inf, -np.inf])
    out, n = fill_nonfinite(a)
    assert n == 3
    np.testing.assert_array_equal(out, [1.0, 3.0, 3.0, 3.0, 3.0])
    same, n0 = fill_nonfinite(np.array([1.0, 2.0]))
    assert n0 == 0
    allbad, n2 = fill_nonfinite(np.array([np.nan, np.nan]))
    assert n2 == 2 and np.all(np.isfinite(allbad))


def test_nan_is_handled_with_a_warning():
    loss, center = raw_loss()
    loss[2, 0, 0] = np.nan
    loss[3, 1, 1] = np.inf
    with pytest.warns(RuntimeWarning, match="2 landscape values are NaN or infinite"):
        tl = timeline("cubic", loss, center)
    assert np.all(np.isfinite(tl.values))
    finite_max = np.log10(np.nanmax(np.where(np.isfinite(loss), loss, np.nan)))
    assert tl.values[2, 0, 0] == pytest.approx(finite_max)
    assert tl.vmax == pytest.approx(finite_max)
    for f in range(tl.n_frames):
        assert np.all(np.isfinite(tl.frame(f).values))


def test_no_warning_for_finite_values():
    loss, center = raw_loss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        timeline("cubic", loss, center)


def test_ease():
    assert ease(0.0, "smoothstep") == 0.0 and ease(1.0, "smoothstep") == 1.0 and ease(0.5, "smoothstep") == 0.5
    assert ease(0.3, "linear") == 0.3


def test_two_captured_steps_with_cubic_falls_back_to_linear():
    loss, center = raw_loss(k=2)
    tl = timeline("cubic", loss, center, fps=10, hold_start=0.0, sps=1.0)
    np.testing.assert_allclose(tl.frame(5).values, 0.5 * (tl.values[0] + tl.values[1]), rtol=1e-12)


def test_eased_range_follows_each_step_smoothly():
    # An early, nearly flat landscape (a narrow range) beside later deep ones: with range = 'eased' every captured
    # step is shown on its own range (sigma 0) or a smoothed one, and the range moves without jumps in between.
    rng = np.random.default_rng(2)
    loss = np.stack([1.0 + s * rng.uniform(0, 1, (6, 6)) for s in (0.01, 0.02, 1.0, 5.0, 6.0)])
    center = loss[:, 0, 0]
    spec = TimelineSpec(seconds_per_step=1.0, hold_start=0.0, hold_end=0.0, interpolation="cubic")
    exact = Timeline(Keyframes(STEPS, loss, center), spec, ScalingSpec(log=False, range="eased", range_smoothing=0),
                     20)
    for k in range(5):
        st = exact.frame(exact.frame_of_step(k))
        assert (st.vmin, st.vmax) == pytest.approx((loss[k].min(), loss[k].max()))
    smooth = Timeline(Keyframes(STEPS, loss, center), spec, ScalingSpec(log=False, range="eased"), 20)
    lo_hi = np.array([[s.vmin, s.vmax] for s in (smooth.frame(f) for f in range(smooth.n_frames))])
    steps = np.abs(np.diff(lo_hi, axis=0)).max(axis=0)
    assert np.all(steps <= 0.1 * np.ptp(lo_hi, axis=0))  # no jump: each frame moves the range by < 10% of its travel
    # the first step's range is much narrower than the film's: its shape fills the height
    assert lo_hi[0, 1] - lo_hi[0, 0] < 0.5 * (loss.max() - loss.min())
    film = Timeline(Keyframes(STEPS, loss, center), spec, ScalingSpec(log=False), 20)
    assert film.frame(0).vmax == pytest.approx(loss.max())


@pytest.mark.parametrize("section, key, value", [("scaling", "range", "steps"), ("scaling", "range_smoothing", -1),
                                                 ("camera", "framing", "tight")])
def test_bad_framing_and_range_values_name_their_key(section, key, value):
    from llstudio.config.scene import scene_from_dict
    from llstudio.errors import SceneError

    from conftest import tiny_dict

    with pytest.raises(SceneError) as info:
        scene_from_dict(tiny_dict(**{section: {key: value}}), source="bad.toml")
    assert f"{section}.{key}" in [p for p, _ in info.value.problems]
    assert info.value.exit_code == 2
