"""The --jobs pool's bookkeeping, with real worker processes: a crashed worker becomes a failed row that says how
it ended; progress lines update the job's line and stay out of its log; the batch's logs get one name per scene."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from llstudio.jobs.job import Job
from llstudio.jobs.pool import Running, finish, log_paths, take_event
from llstudio.jobs.slots import Slot


def running(tmp_path, code: str) -> Running:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    r = Running(0, Job("a.toml"), Slot(0, 1), tmp_path / "a.log", tmp_path / "a.result.json", proc)
    r.reader = threading.Thread(target=lambda: [take_event(r, ln) for ln in proc.stdout])
    r.reader.start()
    proc.wait(60)
    return r


def test_a_worker_killed_by_a_signal_is_a_failed_row(tmp_path):
    r = running(tmp_path, "import os, signal; print('about to crash', flush=True); os.kill(os.getpid(), signal.SIGSEGV)")
    result = finish(r)
    assert not result.ok and result.exit_code == 128 + 11
    assert result.detail.startswith("the worker was killed by SIGSEGV: about to crash")


def test_a_worker_that_exits_without_a_result_is_a_failed_row(tmp_path):
    result = finish(running(tmp_path, "raise SystemExit(3)"))
    assert not result.ok and result.exit_code == 3 and "exited with status 3" in result.detail


def test_progress_events_update_the_job_and_logs_become_text(tmp_path):
    r = running(tmp_path, "pass")
    stage = {"event": "stage", "stage": "capture", "done": 3, "total": 10, "unit": "points"}
    assert take_event(r, json.dumps(stage) + "\n") is None
    assert (r.stage, r.done, r.total) == ("capture", 3, 10)
    assert take_event(r, json.dumps({"event": "log", "text": "training: reused"}) + "\n") == "training: reused"
    assert (r.stage, r.total) == ("training: reused", 0)
    assert take_event(r, "Traceback (most recent call last):\n") == "Traceback (most recent call last):\n"
    assert take_event(r, "{not json\n") == "{not json\n"


def test_each_scene_gets_its_own_log():
    paths = log_paths([Job("x/a.toml"), Job("y/a.toml"), Job("b.toml")], Path("logs"))
    assert [p.name for p in paths] == ["a.log", "a-2.log", "b.log"]


def test_validation_fails_scenes_that_cannot_render_before_any_work(tmp_path):
    from conftest import TINY_TOML
    from llstudio.jobs.pool import validate

    for where in ("x", "y"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "a.toml").write_text(TINY_TOML)
    (tmp_path / "bad.toml").write_text(TINY_TOML.replace("resolution = 5", "resolution = 1"))
    jobs = [Job(str(tmp_path / "x" / "a.toml")), Job(str(tmp_path / "bad.toml")), Job(str(tmp_path / "y" / "a.toml"))]
    failed = validate(jobs)
    assert sorted(failed) == [1, 2]
    assert failed[1].exit_code == 2 and "grid.resolution" in failed[1].detail
    assert "is also the film of" in failed[2].detail  # both would write renders/a.mp4
