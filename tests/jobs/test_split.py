"""Splitting a film: the frame ranges (pure), the checks of --split, and the segment runner with real processes."""

from __future__ import annotations

import sys
import time

import pytest

from llstudio.errors import RenderError, UsageError
from llstudio.files import stale_temp, temp_path
from llstudio.jobs.split import (MIN_SEGMENT_FRAMES, Segment, check_split, parse_split, plan_segments, remove_parts,
                                 run_segments)
from llstudio.progress import Progress


def test_segments_cover_the_frames_in_order_and_nearly_equal():
    parts = plan_segments(range(0, 100), 3, min_frames=10)
    assert parts == [range(0, 33), range(33, 66), range(66, 100)]
    assert [f for r in parts for f in r] == list(range(100))


def test_segments_of_a_frame_range():
    assert plan_segments(range(30, 90), 2, min_frames=10) == [range(30, 60), range(60, 90)]


def test_a_short_film_makes_fewer_segments():
    assert plan_segments(range(50), 4, min_frames=20) == [range(0, 25), range(25, 50)]
    assert plan_segments(range(5), 4, min_frames=20) == [range(0, 5)]
    assert len(plan_segments(range(2 * MIN_SEGMENT_FRAMES), 8)) == 2


@pytest.mark.parametrize("text, k", [("1", 1), ("2", 2), (" 16 ", 16)])
def test_parse_split(text, k):
    assert parse_split(text) == k


@pytest.mark.parametrize("text, why", [("0", "at least 1"), ("-2", "at least 1"), ("two", "whole number"),
                                       ("1.5", "whole number"), ("", "whole number")])
def test_parse_split_refuses(text, why):
    with pytest.raises(UsageError, match=why):
        parse_split(text)


def test_check_split():
    check_split(1, 3, "gif")  # no split: anything goes
    check_split(2, 1, "png")
    with pytest.raises(UsageError, match="give one scene, not 2"):
        check_split(2, 2, "mp4")
    with pytest.raises(UsageError, match="formats that can: mp4, webm, prores, png"):
        check_split(2, 1, "gif")


def _segment(tmp_path, i, code: str) -> Segment:
    return Segment(i, range(10 * i, 10 * i + 10), temp_path(tmp_path / "film.mp4", f"seg{i:03d}"),
                   [sys.executable, "-c", code], {"LLSTUDIO_THREADS": "1"})


def test_segment_files_are_temporary_names_of_this_process(tmp_path):
    seg = _segment(tmp_path, 0, "")
    assert seg.path.parent == tmp_path and seg.path.suffix == ".mp4"
    assert stale_temp(seg.path.name, 1.0, alive=lambda pid: False)  # a sweep removes them once we are gone
    assert not stale_temp(seg.path.name, 1.0, alive=lambda pid: True)


def test_runner_waits_for_every_segment(tmp_path):
    segs = [_segment(tmp_path, i, "import os, sys; open(os.environ['OUT'], 'w')")
            for i in range(2)]
    segs = [Segment(s.index, s.frames, s.path, s.command, {**s.env, "OUT": str(s.path)}) for s in segs]
    run_segments(segs, Progress("none"))
    assert all(s.path.exists() for s in segs)
    remove_parts(segs)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_segment_stops_the_others_and_says_which(tmp_path):
    slow = _segment(tmp_path, 0, "import time; time.sleep(60)")
    bad = _segment(tmp_path, 1, "import sys; print('llstudio segment: error: no GL', file=sys.stderr); sys.exit(3)")
    start = time.monotonic()
    with pytest.raises(RenderError, match=r"segment 2 \(frames 10:20\) failed with exit status 3: .*no GL"):
        run_segments([slow, bad], Progress("none"))
    assert time.monotonic() - start < 30  # the sleeping one was interrupted, not waited for


def test_remove_parts_takes_a_killed_writers_leftovers(tmp_path):
    seg = _segment(tmp_path, 0, "")
    seg.path.write_bytes(b"half")
    leftover = tmp_path / ("." + seg.path.stem + ".x1y2.part.mp4")  # FilmWriter's temporary name for it
    leftover.write_bytes(b"half")
    keep = tmp_path / "film.mp4"
    keep.write_bytes(b"an older film")
    remove_parts([seg])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film.mp4"]
