"""The scene's still (output.still): a fraction of the film's story between its cards, by default the arrival at
the last captured step. The frame number is a pure function of the schedule; the scene-level one must be the
frame the rendered film shows (the same schedule as Film and PanelFilm build from the capture)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import make_scene
from llstudio.config.scene import TimelineSpec
from llstudio.film.timeline import schedule, still_frame, stretched

STEPS = np.array([0, 2, 5, 10, 20, 40], dtype=np.float64)
RAMP = [{"at": 0.0, "speed": 0.25}, {"at": 0.5, "speed": 1.0}, {"at": 1.0, "speed": 2.0}]
TITLE = {"text": "A film", "seconds": 1.2, "fade": 0.3, "dissolve": 0.5}
END = {"text": "The end", "seconds": 0.8, "fade": 0.2, "dissolve": 0.4}
CARDS = [(TITLE, END), (TITLE, None), (None, END), (None, None)]


def spec(title=TITLE, end=END, **kw):
    return TimelineSpec(**{"seconds_per_step": 0.5, "hold_start": 0.25, "hold_end": 0.3, "hold_each": 0.1,
                           "speed": RAMP, "title_card": title, "end_card": end, **kw})


@pytest.mark.parametrize("title, end", CARDS)
@pytest.mark.parametrize("fps", [5, 12, 30])
def test_a_still_never_lands_in_a_card_and_spans_the_story(title, end, fps):
    sc = schedule(STEPS, spec(title, end), fps)
    first, last = sc.body_start, sc.body_end - 1
    assert (first > 0) == (title is not None) and (last < sc.n_frames - 1) == (end is not None)
    frames = [still_frame(sc, f) for f in np.linspace(0.0, 1.0, 101)]
    assert frames[0] == first and frames[-1] == last and frames[50] == round((first + last) / 2)
    assert all(first <= f <= last for f in frames) and frames == sorted(frames)


@pytest.mark.parametrize("title, end", CARDS)
@pytest.mark.parametrize("fps", [5, 12, 30])
def test_the_default_still_is_the_arrival_at_the_last_captured_step(title, end, fps):
    sc = schedule(STEPS, spec(title, end, hold_end=1.0), fps)
    assert still_frame(sc) == sc.arrive[-1] == still_frame([sc])
    assert sc.body_start <= still_frame(sc) < sc.body_end
    # ... at the start of the end hold, whose frames come after it
    assert still_frame(sc) < still_frame(sc, 1.0)


def test_a_fraction_is_the_same_moment_at_every_fps():
    """A fraction means the same film time whatever the quality's fps (stills are made at -q l)."""
    times = []
    for fps in (15, 24, 30, 60):
        sc = schedule(STEPS, spec(), fps)
        times.append(still_frame(sc, 0.4) / fps)
    assert max(times) - min(times) <= 1 / 15


def test_the_default_waits_for_the_last_panel_to_arrive():
    long = schedule(STEPS, spec(), 10)
    short = schedule(STEPS[:3], stretched(spec(), STEPS[:3], long.n_frames, 10), 10)
    assert short.n_frames == long.n_frames
    assert still_frame([short, long]) == long.arrive[-1] > short.arrive[-1]
    # the first panel's cards are the film's
    assert still_frame([short, long], 1.0) == short.body_end - 1


def test_the_scene_still_is_the_films_frame(tiny_capture, tmp_path):
    """still_index (the scene alone, before training) names the frame the rendered film's timeline puts the last
    captured step at, or the fraction of its card-free frames."""
    from llstudio.pipeline import OutputSettings, make_film, still_index

    timeline = {"seconds_per_step": 0.3, "hold_start": 0.2, "hold_end": 0.5, "speed": RAMP,
                "title_card": TITLE, "end_card": END}
    for still in (None, 0.0, 0.3, 1.0):
        scene = make_scene(tmp_path / "t.toml", timeline=timeline, output={"quality": "l", "still": still})
        film = make_film(dataclasses.replace(tiny_capture, scene=scene), OutputSettings(160, 90, 15))
        sc = film.timeline.schedule
        index = still_index(scene, None, "l")
        assert index == still_frame(sc, still) and film.timeline.card_at(index) is None
        if still is None:
            assert index == film.timeline.frame_of_step(len(tiny_capture.steps) - 1)


def test_a_panel_scene_still_is_the_panel_films_frame(panel_capture):
    """Panels of different length: the default is the longer panel's last arrival; the cards are the film's."""
    from llstudio.landscape.result import PanelCapture
    from llstudio.pipeline import OutputSettings, make_film, still_index

    def with_cards(scene, still=None):
        timeline = scene.timeline.model_copy(update={"title_card": spec().title_card, "end_card": spec().end_card})
        output = scene.output.model_copy(update={"still": still})
        return scene.model_copy(update={"timeline": timeline, "output": output})

    panels = [dataclasses.replace(c, scene=with_cards(c.scene)) for c in panel_capture.panels]
    for still in (None, 0.0, 0.5, 1.0):
        scene = with_cards(panel_capture.scene, still)
        film = make_film(PanelCapture(scene, panels), OutputSettings(160, 90, 15))
        index = still_index(scene, None, "l")
        assert index == still_frame([f.timeline.schedule for f in film.films], still)
        assert film.card(index) is None and 0 < index < film.n_frames - 1
        if still is None:
            assert index == film.films[1].timeline.frame_of_step(len(panels[1].steps) - 1)


@pytest.mark.parametrize("fps", [5, 15, 60])
def test_a_contact_sheet_names_the_still_of_each_frame(fps):
    """The label under each still of a contact sheet is the output.still that shows that frame again (to its two
    decimals: within half a hundredth of the story)."""
    from llstudio.pipeline.render import story_label

    sc = schedule(STEPS, spec(), fps)
    assert story_label(sc, 0) == story_label(sc, sc.n_frames - 1) == "card"
    for f in range(sc.body_start, sc.body_end):
        label = story_label(sc, f)
        tolerance = 0.005 * (sc.body_end - 1 - sc.body_start) + 0.5
        assert label.startswith("still ") and abs(still_frame(sc, float(label.split()[1])) - f) <= tolerance
