"""The render command's choice of engine: which flags go together, and how many segments one film gets."""

from __future__ import annotations

import pytest

from llstudio.errors import UsageError
from llstudio.jobs.render import RenderRequest, check_request, film_split


def test_one_scene_with_jobs_renders_its_film_in_that_many_segments():
    req = RenderRequest(("a.toml",), jobs=3)
    assert not req.batch
    assert film_split(req, "mp4") == 3
    assert film_split(req, "gif") == 1  # one palette for the whole film: rendered whole


def test_split_wins_and_several_scenes_with_jobs_are_a_batch():
    assert film_split(RenderRequest(("a.toml",), jobs=3, split=2), "mp4") == 2
    assert film_split(RenderRequest(("a.toml",)), "mp4") == 1
    assert RenderRequest(("a.toml", "b.toml"), jobs=1).batch


@pytest.mark.parametrize("req,words", [
    (RenderRequest(("a.toml", "b.toml"), output="x.mp4"), "--output names one film"),
    (RenderRequest(("a.toml", "b.toml"), split=2), "--split 2 splits one film"),
    (RenderRequest(("a.toml", "b.toml"), jobs=2, distributed=True), "--jobs renders scenes"),
    (RenderRequest(("a.toml",), split=2, distributed=True), "--split renders one film"),
])
def test_flags_that_cannot_go_together_are_refused(req, words):
    with pytest.raises(UsageError, match=words):
        check_request(req)
