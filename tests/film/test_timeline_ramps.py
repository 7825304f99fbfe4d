"""Timeline speed ramps and title/end cards: pure numpy units."""

from __future__ import annotations

import numpy as np
import pytest

from llstudio.errors import SceneError
from llstudio.config.scene import ScalingSpec, TimelineSpec
from llstudio.film.timeline import Keyframes, Timeline, card_mix, film_length, schedule, transition_seconds

from conftest import make_scene

STEPS = np.array([0, 2, 5, 10, 20, 40])
K = len(STEPS)
RAMP = [{"at": 0.0, "speed": 0.25}, {"at": 0.5, "speed": 1.0}, {"at": 1.0, "speed": 2.0}]
TITLE = {"text": "A film", "subtitle": "of a run", "seconds": 1.2, "fade": 0.3, "dissolve": 0.5}
END = {"text": "The end", "seconds": 0.8, "fade": 0.2, "dissolve": 0.4}


def data(seed=0, shape=(4, 3)):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 5.0, (K, *shape)), rng.uniform(0.05, 5.0, K)


def timeline(interp="cubic", fps=12, title=TITLE, end=END, speed=RAMP, hold_each=0.0, **kw):
    spec = TimelineSpec(seconds_per_step=0.5, hold_start=0.25, hold_end=0.3, hold_each=hold_each,
                        interpolation=interp, speed=speed, title_card=title, end_card=end)
    loss, center = data()
    return Timeline(Keyframes(STEPS, loss, center), spec, ScalingSpec(**kw), fps)


def test_transition_seconds_follow_the_ramp():
    spec = TimelineSpec(seconds_per_step=0.5, speed=RAMP)
    secs = transition_seconds(STEPS, spec)
    # middles of the transitions in fractions of training: 1, 3.5, 7.5, 15, 30 over 40
    mid = np.array([1, 3.5, 7.5, 15, 30]) / 40
    speed = np.interp(mid, [0, 0.5, 1], [0.25, 1, 2])
    np.testing.assert_allclose(secs, 0.5 / speed)
    assert secs[0] > 3 * secs[-1]  # slow at the start, fast at the end
    np.testing.assert_allclose(transition_seconds(STEPS, TimelineSpec(seconds_per_step=0.5)), 0.5)


@pytest.mark.parametrize("interp", ["linear", "cubic", "smoothstep"])
@pytest.mark.parametrize("fps", [7, 12, 30])
def test_exact_at_captured_frames_with_ramp_and_cards(interp, fps):
    tl = timeline(interp, fps=fps, hold_each=0.2)
    loss, center = data()
    for k in range(K):
        f = tl.frame_of_step(k)
        st = tl.frame(f)
        assert tl.position(f) == k
        np.testing.assert_array_equal(st.values, tl.values[k])
        np.testing.assert_allclose(st.values, np.log10(loss[k]), rtol=1e-12)
        assert st.step == STEPS[k] and st.card is None


@pytest.mark.parametrize("fps", [5, 12, 60])
def test_ramp_is_monotone_and_covers_every_step(fps):
    tl = timeline(fps=fps)
    u = np.array([tl.position(f) for f in range(tl.n_frames)])
    assert u[0] == 0.0 and u[-1] == K - 1
    assert np.all(np.diff(u) >= 0)
    shown = {int(x) for x in u if x == int(x)}
    assert shown == set(range(K))  # every captured step is shown exactly on some frame
    sc = tl.schedule
    assert np.all(np.diff(sc.arrive) > 0) and np.all(sc.leave >= sc.arrive)
    assert 0 < sc.body_start <= sc.arrive[0] and sc.leave[-1] < sc.body_end <= tl.n_frames


def test_ramp_makes_the_start_slower_in_frames():
    tl = timeline(fps=30, title=None, end=None)
    gaps = np.diff(tl.schedule.arrive)
    secs = transition_seconds(STEPS, tl.spec)
    np.testing.assert_allclose(gaps, secs * 30, atol=1)
    assert gaps[0] > 3 * gaps[-1]


def test_film_length_counts_cards_and_ramp():
    spec = TimelineSpec(seconds_per_step=0.5, hold_start=0.25, hold_end=0.3, speed=RAMP,
                        title_card=TITLE, end_card=END)
    duration, n = film_length(K, spec, 12, STEPS)
    expected = 1.2 + 0.25 + float(np.sum(transition_seconds(STEPS, spec))) + 0.3 + 0.8
    assert duration == pytest.approx(expected)
    assert n == round(expected * 12) == timeline().n_frames
    assert schedule(STEPS, spec, 12).n_frames == n


def test_estimate_uses_the_ramp_and_cards(tmp_path):
    from llstudio.pipeline import estimate

    plain = estimate(make_scene(tmp_path / "a.toml"), "l")
    scene = make_scene(tmp_path / "b.toml", timeline={"speed": [{"at": 0.0, "speed": 0.5}], "title_card": TITLE})
    slow = estimate(scene, "l")
    # 3 transitions of 0.2 s at half speed: 0.6 s more, plus the 1.2 s card
    assert slow["duration_s"] == pytest.approx(plain["duration_s"] + 0.6 + 1.2)


def test_cards_cover_their_frames_and_fade():
    tl = timeline(fps=10)
    sc = tl.schedule
    assert sc.body_start == 12 and tl.n_frames - sc.body_end == 8
    title = [tl.card_at(f) for f in range(sc.body_start)]
    end = [tl.card_at(f) for f in range(sc.body_end, tl.n_frames)]
    assert all(c is not None and c.text == "A film" and c.subtitle == "of a run" for c in title)
    assert all(c is not None and c.text == "The end" for c in end)
    assert all(tl.card_at(f) is None for f in range(sc.body_start, sc.body_end))
    # The title starts on the bare background (veil 1, no text) and dissolves into the film.
    assert title[0].veil == 1.0 and title[0].opacity == 0.0
    assert title[5].opacity == 1.0 and title[5].veil == 1.0
    veils = [c.veil for c in title]
    assert np.all(np.diff(veils) <= 0) and veils[-1] < 0.2
    # The end card is the same backwards: the film dissolves into it, the text fades out at the very end.
    ev = [c.veil for c in end]
    assert np.all(np.diff(ev) >= 0) and ev[0] < 0.5 and ev[-1] == 1.0
    assert end[-1].opacity == 0.0


def test_card_frames_keep_the_film_range_and_show_first_and_last_step():
    tl = timeline(fps=10)
    frames = [tl.frame(f) for f in range(tl.n_frames)]
    assert {(s.vmin, s.vmax) for s in frames} == {(tl.values.min(), tl.values.max())}
    sc = tl.schedule
    for f in range(sc.body_start):
        np.testing.assert_array_equal(frames[f].values, tl.values[0])
    for f in range(sc.body_end, tl.n_frames):
        np.testing.assert_array_equal(frames[f].values, tl.values[-1])


def test_card_mix_eases():
    from llstudio.config.scene import CardSpec

    card = CardSpec(text="x", seconds=2.0, fade=0.5, dissolve=1.0)
    assert card_mix(card, 0.0, True) == (0.0, 1.0)
    assert card_mix(card, 0.25, True) == (0.5, 1.0)  # smoothstep at the middle of the fade
    assert card_mix(card, 1.5, True)[1] == pytest.approx(0.5)
    assert card_mix(card, 2.0, True) == (0.0, 0.0)
    assert card_mix(card, 0.5, False) == pytest.approx((0.5, 0.5))


def test_trail_values_epoch_and_curve_in_frame_state():
    loss, center = data()
    path = np.cumsum(np.full((K, 2), 0.1), axis=0)
    curve = (np.arange(41), np.linspace(2.0, 0.5, 41))
    spec = TimelineSpec(seconds_per_step=0.5, hold_start=0.0, hold_end=0.0, interpolation="linear")
    tl = Timeline(Keyframes(STEPS, loss, center, path=path), spec, ScalingSpec(), 10, curve=curve, steps_per_epoch=4.0)
    st = tl.frame(tl.frame_of_step(3))
    assert st.epoch == pytest.approx(10 / 4)
    assert st.curve[0] is tl.curve[0] and st.curve[1] is tl.curve[1]
    assert st.trail_values.shape == (len(st.trail),)
    assert st.trail_values[-1] == pytest.approx(np.log10(center[3]))
    assert st.trail_values[0] == pytest.approx(np.log10(center[0]))


def test_scene_validation_of_ramps_and_cards(tmp_path):
    with pytest.raises(SceneError) as e:
        make_scene(tmp_path / "x.toml", timeline={"speed": [{"at": 0.5, "speed": 1.0}, {"at": 0.2, "speed": 1.0}],
                                                   "title_card": {"text": "t", "seconds": 1.0, "fade": 0.8,
                                                                  "dissolve": 0.5}})
    paths = dict(e.value.problems)
    assert "strictly increasing" in paths["timeline.speed"]
    assert "must not exceed seconds" in paths["timeline.title_card"]
    with pytest.raises(SceneError) as e:
        make_scene(tmp_path / "x.toml", timeline={"speed": [{"at": 0.0, "speed": 0.0}]})
    assert "timeline.speed[0].speed" in dict(e.value.problems)
