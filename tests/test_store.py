"""The capture store and atomic files."""

from __future__ import annotations

import numpy as np
import pytest

from llstudio.errors import CacheError
from llstudio.files import atomic_write
from llstudio.store import CaptureDir, CaptureStore, canonical_hash, default_root


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
