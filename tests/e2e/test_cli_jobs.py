"""``llstudio render a.toml b.toml ... --jobs N``: scenes in worker processes of their own, one table at the end.

Real ``python -m llstudio`` batches of tiny scenes: a broken scene (at run time, or invalid) is a failed row while
the others render, two jobs that share a training run train it once, Ctrl-C stops every worker, bad --jobs values
are refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TIMEOUT, TINY_TOML, decode, run_cli

# a and b differ only in their directions: two captures of one training run.
SCENE_B = TINY_TOML.replace("seed = 3", "seed = 4")
assert SCENE_B != TINY_TOML
# Valid, but its model factory raises when the worker builds the model: a failure at run time.
BROKEN = TINY_TOML.replace('kind = "mlp"', 'kind = "custom"\nfactory = "boom:make"')
BOOM = "def make(input_shape, n_classes):\n    raise RuntimeError('the factory broke')\n"
INVALID = TINY_TOML.replace("resolution = 5", "resolution = 1")
TRAINED = re.compile(r"^training: 12/12 steps in", re.M)


@pytest.fixture(scope="module")
def batch(tmp_path_factory, gl_context):
    """`render a.toml b.toml broken.toml invalid.toml --jobs 2`, once for the module's checks: three scenes that
    start, one of them broken at run time, and one that fails validation."""
    home = tmp_path_factory.mktemp("jobs")
    for name, text in (("a", TINY_TOML), ("b", SCENE_B), ("broken", BROKEN), ("invalid", INVALID)):
        (home / f"{name}.toml").write_text(text)
    (home / "boom.py").write_text(BOOM)
    env = {**os.environ, "LLSTUDIO_CACHE": str(home / "cache"), "PYVISTA_OFF_SCREEN": "true", "NO_COLOR": "1"}
    proc = run_cli(["render", "a.toml", "b.toml", "broken.toml", "invalid.toml", "--jobs", "2"], env, home)
    return home, env, proc


def rows(stdout: str) -> dict[str, list[str]]:
    """scene → its table row's cells (status, seconds, output or error)."""
    out = {}
    for line in stdout.splitlines():
        cells = line.split(None, 3)
        if len(cells) == 4 and cells[1] in ("ok", "failed"):
            out[cells[0]] = cells[1:]
    return out


@pytest.mark.render
def test_broken_scenes_are_failed_rows_and_the_others_render(batch):
    home, _, proc = batch
    assert proc.returncode == 1, proc.stderr
    table = rows(proc.stdout)
    assert list(table) == ["a.toml", "b.toml", "broken.toml", "invalid.toml"], proc.stdout
    assert [table[s][0] for s in table] == ["ok", "ok", "failed", "failed"]
    assert "the factory broke" in table["broken.toml"][2]
    assert "grid.resolution" in table["invalid.toml"][2]  # refused before any work, yet only its own row
    assert "2 of 4 scene(s) rendered, 2 failed" in proc.stdout
    assert "renders/.logs/" in proc.stdout
    for name in ("a", "b"):
        film = home / "renders" / f"{name}.mp4"
        assert table[f"{name}.toml"][2] == str(Path("renders") / f"{name}.mp4")
        meta, frames = decode(film)
        assert meta["codec"] == "h264" and len(frames) == 12
    logs = home / "renders" / ".logs"
    assert sorted(p.name for p in logs.iterdir()) == ["a.log", "b.log", "broken.log"]
    assert "the factory broke" in (logs / "broken.log").read_text()
    # Non-terminal progress: a line when each job starts and ends, on stderr.
    assert len(re.findall(r"^\[\d\] start ", proc.stderr, re.M)) == 3, proc.stderr


@pytest.mark.render
def test_two_jobs_sharing_a_training_run_train_it_once(batch):
    home, _, proc = batch
    assert proc.returncode == 1, proc.stderr
    logs = [(home / "renders" / ".logs" / f"{name}.log").read_text() for name in ("a", "b")]
    assert sum(len(TRAINED.findall(log)) for log in logs) == 1, logs
    other = next(log for log in logs if not TRAINED.search(log))
    assert "training: reused the same run's training from cache" in other
    assert len(list((home / "cache" / "trainings").glob("*/trajectory.npz"))) == 1
    assert list((home / "cache" / "locks").iterdir()) == []  # every lock released


@pytest.mark.parametrize("value, message", [("0", "at least 1"), ("-1", "at least 1"), ("x", "whole number")])
def test_bad_jobs_values_exit_2_and_write_nothing(value, message, cli_env, tmp_path):
    (tmp_path / "a.toml").write_text(TINY_TOML)
    proc = run_cli(["render", "a.toml", "a.toml", "--jobs", value], cli_env, tmp_path)
    assert proc.returncode == 2
    assert "--jobs" in proc.stderr and message in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.toml"]


@pytest.mark.render
def test_ctrl_c_stops_every_worker(cli_env, tmp_path):
    for name in ("a", "b"):  # long films: both workers are busy when the batch is interrupted
        (tmp_path / f"{name}.toml").write_text(TINY_TOML.replace("seconds_per_step = 0.2", "seconds_per_step = 3.0")
                                               .replace("seed = 3", "seed = 5" if name == "b" else "seed = 3"))
    err = tmp_path / "err.txt"
    with open(err, "w") as f:
        # SIGINT as a terminal's Ctrl-C delivers it: a suite started in the background (`pytest &`) hands its
        # children SIGINT ignored, and Python then never turns it into KeyboardInterrupt.
        proc = subprocess.Popen([sys.executable, "-m", "llstudio", "render", "a.toml", "b.toml", "--jobs", "2"],
                                cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, stderr=f, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # Both workers busy: each log has a line of news past its header (training, waiting for the other's
        # training, or capture; about ten seconds of work remain).
        start = time.monotonic()
        while (sum(len(log.splitlines()) > 1 for log in _logs(tmp_path)) < 2 and time.monotonic() < start + TIMEOUT
               and proc.poll() is None):
            time.sleep(0.05)
        when, seen = time.monotonic() - start, _logs(tmp_path)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = err.read_text()
    assert rc == 130, f"{log}\nSIGINT after {when:.1f} s; the workers' logs then:\n" + "\n".join(seen)
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", log)]
    assert len(pids) == 2, log
    assert not [pid for pid in pids if _worker_alive(pid, tmp_path)], log
    # Nothing half-written. A worker that finished its film before the signal (on a loaded machine one may) left a
    # whole one, with its sidecar and every frame.
    assert not list((tmp_path / "renders").glob(".*part*")), log
    films = list((tmp_path / "renders").glob("*.mp4"))
    assert len(films) < 2, log
    for film in films:
        sidecar = json.loads(film.with_suffix(".json").read_text())
        assert len(decode(film)[1]) == sidecar["file"]["frames"]


def _worker_alive(pid: int, home: Path) -> bool:
    """Whether ``pid`` is still one of this test's workers (not merely a reused pid: the machine is busy)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return b"llstudio.jobs.worker" in cmd and Path(cwd) == home


def _logs(home: Path) -> list[str]:
    logs = home / "renders" / ".logs"
    return [p.read_text() for p in logs.glob("*.log")] if logs.exists() else []
