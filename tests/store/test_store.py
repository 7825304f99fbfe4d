"""The capture store and atomic files."""

from __future__ import annotations

import numpy as np
import pytest

from llstudio.errors import CacheError
from llstudio.files import atomic_write
from llstudio.store.keys import canonical_hash
from llstudio.store.store import CaptureDir, CaptureStore, default_root


def test_atomic_write_leaves_no_temp_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "out" / "film.json"

    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("half a file")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(target, failing)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_keeps_the_old_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "data.txt"
    target.write_text("old")

    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("new but broken")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, failing)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.txt"]


def test_atomic_write_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "a" / "b.txt"
    seen = []

    def write(tmp):
        seen.append(tmp)
        with open(tmp, "w") as f:
            f.write("hello")

    atomic_write(target, write)
    assert target.read_text() == "hello"
    assert seen[0] != str(target)
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def test_default_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LLSTUDIO_CACHE", str(tmp_path / "c"))
    assert default_root() == tmp_path / "c"
    assert CaptureStore().root == tmp_path / "c"
    monkeypatch.delenv("LLSTUDIO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "llstudio"


def test_canonical_hash_ignores_key_order_but_not_values():
    a = canonical_hash({"x": 1, "y": [1, 2], "z": {"b": 1, "a": 2}})
    b = canonical_hash({"z": {"a": 2, "b": 1}, "y": [1, 2], "x": 1})
    c = canonical_hash({"x": 1, "y": [2, 1], "z": {"b": 1, "a": 2}})
    assert a == b != c
    assert len(a) == 64


def test_save_step_stores_nan_for_non_finite(tmp_path):
    d = CaptureDir(tmp_path / "cap")
    loss = np.array([[1.0, np.inf], [np.nan, 2.0]])
    d.save_step(12, loss, 1.5)
    assert d.has_step(12) and not d.has_step(11)
    assert d.step_path(12).name == "step_0000012.npz"
    z = d.load_step(12)
    np.testing.assert_array_equal(z["finite"], [[True, False], [False, True]])
    assert np.isnan(z["loss"][0, 1]) and np.isnan(z["loss"][1, 0])
    assert z["loss"][1, 1] == 2.0 and float(z["center_loss"]) == 1.5
    assert not [p for p in d.path.iterdir() if ".part" in p.name]


def test_arrays_and_manifest_round_trip(tmp_path):
    store = CaptureStore(tmp_path)
    d = store.open("abc")
    assert d.read_manifest() is None
    d.write_manifest({"key": "abc", "steps": [0, 4]})
    assert d.read_manifest() == {"key": "abc", "steps": [0, 4]}
    arrays = {"w0/0.weight": np.arange(6.0).reshape(2, 3), "steps": np.array([0, 4])}
    d.save_arrays("trajectory", arrays)
    assert d.has("trajectory") and not d.has("directions")
    back = d.load_arrays("trajectory")
    assert back.keys() == arrays.keys()
    for k in arrays:
        np.testing.assert_array_equal(back[k], arrays[k])


def test_unreadable_cache_file_is_a_cache_error(tmp_path):
    d = CaptureStore(tmp_path).open("k")
    d.step_path(0).write_bytes(b"not an npz file")
    with pytest.raises(CacheError, match="--no-cache"):
        d.load_step(0)


def test_store_list_and_clear(tmp_path):
    store = CaptureStore(tmp_path)
    assert store.list() == [] and store.clear() == 0
    for key in ("k1", "k2"):
        d = store.open(key)
        d.write_manifest({"key": key, "steps": [0, 1, 2]})
        d.save_step(0, np.zeros((2, 2)), 0.0)
    rows = store.list()
    assert sorted(r[0] for r in rows) == ["k1", "k2"]
    assert all(r[1]["steps"] == [0, 1, 2] and r[2] > 0 for r in rows)
    assert store.clear("k1") == 1
    assert [r[0] for r in store.list()] == ["k2"]
    assert store.clear() == 1
    assert store.list() == []


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        target = tmp_path / "f.txt"
        atomic_write(target, lambda tmp: open(tmp, "w").write("x"))
        assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's private 0o600
    finally:
        os.umask(mask)


# ------------------------------------------------------------------------- stale temporary files


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_atomic_write_names_its_temporary_file_with_host_and_pid(tmp_path):
    import os

    from llstudio.files import TEMP_NAME, _host, atomic_write

    seen = []
    atomic_write(tmp_path / "step_0000001.npz", lambda tmp: (seen.append(tmp), open(tmp, "wb").close()))
    m = TEMP_NAME.match(os.path.basename(seen[0]))
    assert m and m["target"] == "step_0000001.npz" and m["host"] == _host() and int(m["pid"]) == os.getpid()


def test_stale_temp_rules():
    from llstudio.files import stale_temp

    alive = {111}.__contains__
    day = 24 * 3600
    # finished files and foreign names are never touched
    for name in ("step_0000001.npz", "manifest.json", ".hidden", ".step_0000001.npz"):
        assert not stale_temp(name, 10 * day, "h", alive)
    # this host: stale as soon as the writer is gone, kept while it lives (until a day old: pids get reused)
    assert stale_temp(".step_0000001.npz.h~222.ab_c9xyz.part.npz", 1.0, "h", alive)
    assert not stale_temp(".step_0000001.npz.h~111.ab_c9xyz.part.npz", 1.0, "h", alive)
    assert stale_temp(".step_0000001.npz.h~111.ab_c9xyz.part.npz", day + 1, "h", alive)
    # another host (shared file system) or an old name without an owner: only by age
    assert not stale_temp(".manifest.json.other~222.ab_c9xyz.part.json", 3600.0, "h", alive)
    assert stale_temp(".manifest.json.other~222.ab_c9xyz.part.json", day + 1, "h", alive)
    assert not stale_temp(".plane.npz.ab_c9xyz.part.npz", 3600.0, "h", alive)
    assert stale_temp(".plane.npz.ab_c9xyz.part.npz", day + 1, "h", alive)


def test_sweep_removes_only_temporary_files_nobody_will_finish(tmp_path):
    import os
    import time

    from llstudio.files import _host

    d = CaptureStore(tmp_path).open("k")
    d.save_step(0, np.zeros((2, 2)), 0.0)
    host = _host()
    dead = d.path / f".step_0000004.npz.{host}~{_dead_pid()}.x1y2z3ab.part.npz"
    live = d.path / f".step_0000008.npz.{host}~{os.getpid()}.x1y2z3ab.part.npz"
    other_host = d.path / ".step_0000012.npz.elsewhere~1.x1y2z3ab.part.npz"
    old = d.path / ".trajectory.npz.q8w7e6r5.part.npz"
    for p in (dead, live, other_host, old):
        p.write_bytes(b"half")
    long_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (long_ago, long_ago))
    assert sorted(p.name for p in d.sweep()) == sorted([dead.name, old.name])
    assert sorted(p.name for p in d.path.iterdir()) == sorted(["step_0000000.npz", live.name, other_host.name])


def test_capture_and_cache_clear_sweep_stale_temporary_files(tmp_path, monkeypatch, capsys):
    from conftest import make_scene
    from llstudio.cli import main
    from llstudio.files import _host
    from llstudio.pipeline import capture_key, capture_scene

    monkeypatch.setenv("LLSTUDIO_CACHE", str(tmp_path))
    store = CaptureStore(tmp_path)
    scene = make_scene(tmp_path / "tiny.toml", training={"steps": 4}, grid={"resolution": 3})
    d = store.open(capture_key(scene, "cpu"))
    dead = d.path / f".step_0000004.npz.{_host()}~{_dead_pid()}.x1y2z3ab.part.npz"
    dead.write_bytes(b"half")
    capture_scene(scene, device="cpu", store=store)
    assert not dead.exists()
    other = store.open("other")
    left = other.path / f".plane.npz.{_host()}~{_dead_pid()}.x1y2z3ab.part.npz"
    left.write_bytes(b"half")
    assert main(["cache", "clear", d.path.name]) == 0
    assert not left.exists() and other.path.exists() and not d.path.exists()
    assert "1 stale temporary file" in capsys.readouterr().out
