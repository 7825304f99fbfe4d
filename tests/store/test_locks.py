"""Store locks: one process computes, another waits; a dead owner's lock is taken over, another host's fresh one is
respected. Real processes and real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from llstudio.files import _host
from llstudio.store.locks import hold, is_stale, read_owner, sweep_locks
from llstudio.store.store import CaptureStore


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lock(path, host, pid, age_s=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "time": time.time() - age_s}))
    if age_s:
        os.utime(path, (time.time() - age_s, time.time() - age_s))


def test_hold_creates_the_lock_with_its_owner_and_removes_it(tmp_path):
    path = tmp_path / "locks" / "capture-k.lock"
    with hold(path) as waited:
        assert waited is False
        owner = read_owner(path)
        assert (owner["host"], owner["pid"]) == (_host(), os.getpid())
        with hold(path) as again:  # the same process again (a nested stage): no wait on itself
            assert again is False
        assert path.exists()
    assert not path.exists()


def test_a_dead_processes_lock_is_taken_over(tmp_path):
    path = tmp_path / "training-k.lock"
    write_lock(path, _host(), dead_pid())
    said = []
    with hold(path, log=said.append, what="training", poll_s=0.01):
        assert read_owner(path)["pid"] == os.getpid()
    assert len(said) == 1 and "taking over the stale lock" in said[0]


def test_a_live_lock_is_waited_for_and_logged_once(tmp_path):
    path = tmp_path / "capture-k.lock"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from llstudio.store.locks import hold\n"
                               "with hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(1.0)\n",
                               str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said = []
        start = time.monotonic()
        with hold(path, log=said.append, what="capture", poll_s=0.02) as waited:
            assert waited
            assert holder.poll() is not None or time.monotonic() - start > 0.5  # only once the holder let go
    finally:
        holder.wait(10)
    assert len(said) == 1 and said[0].startswith(f"capture: waiting for {_host()}:{holder.pid}, which is computing")


def test_another_hosts_fresh_lock_is_respected_and_its_old_one_taken_over(tmp_path):
    path = tmp_path / "capture-k.lock"
    write_lock(path, "some_other_node", dead_pid())  # the pid means nothing on this host
    with pytest.raises(TimeoutError, match="some_other_node"):
        with hold(path, poll_s=0.02, timeout_s=0.2):
            pass
    assert read_owner(path)["host"] == "some_other_node"
    write_lock(path, "some_other_node", 1, age_s=3600)  # no heartbeat for an hour: its node died
    with hold(path, poll_s=0.02, timeout_s=1.0):
        assert read_owner(path)["host"] == _host()


def test_the_heartbeat_keeps_a_held_lock_fresh(tmp_path):
    path = tmp_path / "capture-k.lock"
    with hold(path, heartbeat_s=0.05):
        os.utime(path, (time.time() - 3600, time.time() - 3600))
        time.sleep(0.3)
        assert time.time() - path.stat().st_mtime < 60


def test_is_stale_rules():
    here = _host()
    alive = lambda pid: pid == 42  # noqa: E731
    assert not is_stale({"host": here, "pid": 42}, 1.0, here, alive)
    assert is_stale({"host": here, "pid": 43}, 1.0, here, alive)
    assert not is_stale({"host": "elsewhere", "pid": 43}, 1.0, here, alive)
    assert is_stale({"host": "elsewhere", "pid": 42}, 601.0, here, alive)
    assert not is_stale(None, 1.0, here, alive)  # being written
    assert is_stale(None, 120.0, here, alive)


def test_store_sweep_removes_stale_locks_only(tmp_path):
    store = CaptureStore(tmp_path)
    write_lock(store.locks / "capture-dead.lock", _host(), dead_pid())
    write_lock(store.locks / "capture-live.lock", _host(), os.getppid())
    removed = store.sweep()
    assert [p.name for p in removed] == ["capture-dead.lock"]
    assert sorted(p.name for p in store.locks.iterdir()) == ["capture-live.lock"]
    assert sweep_locks(tmp_path / "missing") == []

