"""llstudio render --split: one film rendered in segment processes and joined, against the same film rendered
whole; the checks of --split; a failing segment."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from conftest import TINY_TOML, make_scene, run_cli

# 57 frames at quality l (3 intervals of 1.2 s at 15 fps, plus the holds): two segments of at least 24 frames.
# crf 0 is lossless H.264: the one mp4 setting whose split decodes bit for bit like the whole (see jobs/split.py).
SPLIT_TOML = TINY_TOML.replace("seconds_per_step = 0.2", "seconds_per_step = 1.2").replace(
    'encoder_preset = "ultrafast"', 'encoder_preset = "ultrafast"\ncrf = 0')


def framemd5(path) -> list[str]:
    """pts, duration, size and md5 of every decoded frame."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v",
                          "-f", "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    return [ln for ln in out.splitlines() if not ln.startswith("#")]


@pytest.fixture
def split_toml(tmp_path):
    p = tmp_path / "scenes" / "long.toml"
    p.parent.mkdir()
    p.write_text(SPLIT_TOML)
    return p


@pytest.mark.render
def test_split_film_decodes_to_the_whole_films_frames(tmp_path, cli_env, split_toml):
    out = tmp_path / "out"
    whole = run_cli(["render", split_toml, "-o", out / "whole.mp4", "--frames", "3:", "--progress", "none"],
                    cli_env, tmp_path)
    assert whole.returncode == 0, whole.stderr
    split = run_cli(["render", split_toml, "-o", out / "split.mp4", "--frames", "3:", "--split", "2",
                     "--progress", "bar"], cli_env, tmp_path)
    assert split.returncode == 0, split.stderr
    assert "split: frames 3:57 in 2 segments" in split.stdout + split.stderr
    a, b = framemd5(out / "whole.mp4"), framemd5(out / "split.mp4")
    assert len(a) == 54 and a == b  # same timestamps, same decoded pixels, frame by frame
    sidecars = [json.loads((out / f"{n}.json").read_text()) for n in ("whole", "split")]
    assert sidecars[1]["frames"] == [3, 57] and sidecars[1]["file"]["frames"] == 54
    assert {k: v for k, v in sidecars[0].items() if k != "film"} == {k: v for k, v in sidecars[1].items()
                                                                      if k != "film"}
    # No segment, list or writer's temporary file is left beside the films.
    assert sorted(p.name for p in out.iterdir()) == ["split.json", "split.mp4", "whole.json", "whole.mp4"]


@pytest.mark.parametrize("value", ["0", "two"])  # the rest: tests/jobs/test_split.py
def test_bad_split_values_exit_2_before_any_work(tmp_path, cli_env, tiny_toml, value):
    r = run_cli(["render", tiny_toml, "--split", value], cli_env, tmp_path)
    assert r.returncode == 2 and "--split" in r.stderr, r.stderr
    assert not (tmp_path / "renders").exists()


def test_split_refuses_several_scenes_and_gifs_before_training(tmp_path, cli_env, tiny_toml, isolated_cache):
    r = run_cli(["render", tiny_toml, tiny_toml, "--split", "2"], cli_env, tmp_path)
    assert r.returncode == 2 and "splits one film: give one scene, not 2" in r.stderr, r.stderr
    r = run_cli(["render", tiny_toml, "--split", "2", "--format", "gif"], cli_env, tmp_path)
    assert r.returncode == 2 and "formats that can: mp4, webm, prores, png" in r.stderr, r.stderr
    assert not (tmp_path / "renders").exists() and not any(isolated_cache.rglob("*.npz"))


@pytest.mark.render
def test_a_failing_segment_leaves_no_film_and_no_parts(tmp_path, tiny_capture):
    from llstudio.errors import RenderError
    from llstudio.jobs.split import render_split

    # The session's tiny capture, as a film long enough for two segments (the timeline is no part of the capture);
    # the segments are given another scene than the one captured, and each refuses it before capturing anything.
    scene = make_scene(tmp_path / "long.toml", timeline={"seconds_per_step": 1.2})
    cap = dataclasses.replace(tiny_capture, scene=scene)
    other = tmp_path / "other.toml"
    other.write_text(SPLIT_TOML.replace("seed = 3", "seed = 4"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "film.mp4").write_bytes(b"an older film")
    with pytest.raises(RenderError, match=r"segment [12] \(frames \d+:\d+\) failed with exit status 1: .*"
                                          r"is not the scene the split began with"):
        render_split(cap, 2, scene_file=str(other), output=out / "film.mp4", device="cpu")
    assert sorted(p.name for p in out.iterdir()) == ["film.mp4"]
    assert (out / "film.mp4").read_bytes() == b"an older film"


@pytest.mark.render
@pytest.mark.slow
def test_sigterm_stops_the_segments_and_leaves_nothing(tmp_path, cli_env):
    """``kill -TERM`` of a split render: exit 143 with a message, the segment processes stop (and their
    encoders), and no segment, writer's temporary file or film is left."""
    import os
    import signal
    import sys
    import time

    scene = tmp_path / "long.toml"
    scene.write_text(TINY_TOML.replace("seconds_per_step = 0.2", "seconds_per_step = 6.0"))
    out = tmp_path / "out"
    err = tmp_path / "err.txt"
    with open(err, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "llstudio", "render", scene, "-o", out / "film.mp4",
                                 "--split", "2", "--progress", "none"], cwd=tmp_path, env=cli_env,
                                stdout=subprocess.DEVNULL, stderr=f)
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline and \
                not (out.exists() and sum(".part" in p.name for p in out.iterdir()) >= 2):
            time.sleep(0.1)  # until both segments are encoding (their writers' temporary files are there)
        assert proc.poll() is None, err.read_text()
        segments = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == proc.pid]
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = err.read_text()
    assert rc == 143 and "terminated (SIGTERM)" in log, log
    assert len(segments) == 2 and not [pid for pid in segments if _is_segment(pid)], log
    assert list(out.iterdir()) == [], log


def _is_segment(pid: int) -> bool:
    """Whether ``pid`` is (still) a live segment process (not a pid reused meanwhile, nor a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return b"llstudio.jobs.segment" in Path(f"/proc/{pid}/cmdline").read_bytes() and state != "Z"
    except OSError:
        return False


def _parent(proc_dir) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1
