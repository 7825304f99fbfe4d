"""Integrity of cache files: a truncated, bit-flipped, mis-shaped or garbage file is reported once, moved aside and
so recomputed, never fatal; files written before checksums existed still load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llstudio.store.integrity import CHECKSUM, MANIFEST_CHECKSUM, CorruptEntry
from llstudio.store.store import CaptureDir, CaptureStore

STEP = 100

# One file of every kind a store entry holds, as the pipeline writes it (see store.py's layout).
KINDS = {
    "step_0000100": {"loss": np.ones((5, 5)), "finite": np.ones((5, 5), bool), "center_loss": np.array(0.5)},
    "curv_0000100": {"curv_min": np.zeros((3, 3)), "curv_max": np.ones((3, 3)), "done": np.ones((3, 3), bool),
                     "converged": np.ones((3, 3), bool)},
    "trajectory": {"steps": np.array([0, 4]), "train_loss": np.ones(4), "batches": np.zeros((4, 2), np.int64),
                   "w0/fc.weight": np.ones((2, 2)), "w1/fc.weight": np.ones((2, 2))},
    "trajectory_b": {"steps": np.array([0]), "train_loss": np.ones(1), "batches": np.zeros((1, 2), np.int64),
                     "w0/fc.weight": np.ones((2, 2))},
    "directions": {"d1/fc.weight": np.ones((2, 2)), "d2/fc.weight": np.ones((2, 2)), "alphas": np.linspace(-1, 1, 5),
                   "betas": np.linspace(-1, 1, 5), "path": np.zeros((2, 2)), "updates": np.zeros((2, 2))},
    "plane": {"loss": np.ones((5, 5))},
    "run_b": {"center_loss": np.ones(2)},
}


def _log():
    lines: list[str] = []
    return lines, lines.append


def _entry(tmp_path, name, log):
    d = CaptureDir(tmp_path / "captures" / "k", log)
    d.save_arrays(name, KINDS[name])
    return d, d.path / f"{name}.npz"


def truncate(p):
    with open(p, "r+b") as f:
        f.truncate(300)


def overwrite(p):
    data = bytearray(p.read_bytes())
    data[len(data) // 3:len(data) // 3 + 400] = bytes(400)[:len(data) - len(data) // 3]
    p.write_bytes(bytes(data))


def garbage(p):
    p.write_text("{{{")


WHY = {truncate: ("truncated",), overwrite: ("damaged", "checksum mismatch"), garbage: ("not an npz file",)}


@pytest.mark.parametrize("damage", list(WHY))
@pytest.mark.parametrize("name", list(KINDS))
def test_a_damaged_file_is_reported_once_moved_aside_and_missing(tmp_path, name, damage):
    lines, log = _log()
    d, p = _entry(tmp_path, name, log)
    assert d.read_arrays(name) is not None and not lines
    damage(p)
    with pytest.raises(CorruptEntry, match="cache verify"):
        d.load_arrays(name)  # the strict load names the file and the way out
    assert d.read_arrays(name) is None
    assert not p.exists()  # quarantined: the pipeline recomputes it
    assert len(lines) == 1 and str(p) in lines[0] and "corrupt cache file" in lines[0], lines
    assert any(why in lines[0] for why in WHY[damage]), lines  # what was wrong
    assert list((d.path / ".quarantine").iterdir())[0].name.startswith(p.name)
    assert d.read_arrays(name) is None and len(lines) == 1  # once


def test_checksum_mismatch_is_named(tmp_path):
    lines, log = _log()
    d, p = _entry(tmp_path, "step_0000100", log)
    arrays = dict(np.load(p))
    arrays["loss"] = arrays["loss"] * 2  # a valid npz whose contents are not what was written
    np.savez(p, **arrays)
    assert not d.has_step(STEP)
    assert "checksum mismatch" in lines[0]


@pytest.mark.parametrize("name,shape,why", [("step_0000100", (7, 7), "wrong shape: loss is (5, 5), expected (7, 7)"),
                                            ("curv_0000100", (4, 4), "wrong shape: curv_min is (3, 3)")])
def test_a_grid_of_another_resolution_counts_as_corrupt(tmp_path, name, shape, why):
    lines, log = _log()
    d, p = _entry(tmp_path, name, log)
    assert (d.has_step(STEP, shape) if name.startswith("step") else d.load_curvature(STEP, shape)) in (False, None)
    assert why in lines[0] and not p.exists()


def test_missing_keys_count_as_corrupt(tmp_path):
    lines, log = _log()
    d = CaptureDir(tmp_path, log)
    d.save_arrays("step_0000100", {"loss": np.ones((5, 5))})
    assert not d.has_step(STEP) and "wrong keys: finite, center_loss missing" in lines[0]


def test_per_sample_steps_need_their_samples(tmp_path):
    lines, log = _log()
    d = CaptureDir(tmp_path, log)
    d.save_step(STEP, np.ones((5, 5)), 0.5)
    assert d.has_step(STEP, (5, 5)) and not d.has_step(STEP, (5, 5), samples=3)
    assert "no per-sample losses" in lines[0]


def test_files_written_before_checksums_still_load(tmp_path):
    """An existing cache has no checksums: unverified but readable, nothing moved, nothing reported."""
    lines, log = _log()
    d = CaptureStore(tmp_path).open("old", log)
    np.savez(d.step_path(STEP), **KINDS["step_0000100"])
    (d.path / "manifest.json").write_text(json.dumps({"key": "old", "steps": [100]}))
    assert d.has_step(STEP, (5, 5))
    np.testing.assert_array_equal(d.load_step(STEP)["loss"], np.ones((5, 5)))
    assert d.read_manifest() == {"key": "old", "steps": [100]}
    assert not lines and CaptureStore(tmp_path).verify() == (1, 2, [])


def test_new_files_carry_a_checksum_that_loads_do_not_return(tmp_path):
    d = CaptureDir(tmp_path)
    d.save_step(STEP, np.ones((2, 2)), 0.5)
    d.write_manifest({"key": "k"})
    assert CHECKSUM in np.load(d.step_path(STEP)).files and CHECKSUM not in d.load_step(STEP)
    assert MANIFEST_CHECKSUM in json.loads((tmp_path / "manifest.json").read_text())
    assert d.read_manifest() == {"key": "k"}


# The shapes: well-formed JSON without a checksum (as files written before checksums) but not a manifest, as the
# fault suite's 'shape' corruption writes it; its render took the fields as they were and warned of nothing.
SHAPES = ['{"steps": "not a list", "scene": [1, 2, 3], "grid": {"resolution": -1}}',
          '{"key": "k", "steps": "not a list"}', '{"key": "k", "steps": [0, "4"]}', '{"key": 7}']


@pytest.mark.parametrize("text,why", [("{{{", "not JSON"), ("[1, 2]", "not a JSON object"),
                                      (None, "checksum mismatch"), *((t, "wrong shape") for t in SHAPES)])
def test_a_garbage_manifest_is_reported_and_moved_aside(tmp_path, text, why):
    lines, log = _log()
    store = CaptureStore(tmp_path)
    d = store.open("k", log)
    d.write_manifest({"key": "k", "steps": [0, 4]})
    p = d.path / "manifest.json"
    p.write_text(text if text is not None else p.read_text().replace('"k"', '"x"'))
    key, manifest, _, problem = store.list()[0]  # list changes nothing
    assert (key, manifest) == ("k", None) and why in problem and p.exists()
    assert d.read_manifest() is None and not p.exists()  # the capture then writes a new one
    assert why in lines[0] and str(p) in lines[0]


def test_verify_reports_and_repairs_every_kind_of_damage(tmp_path):
    store = CaptureStore(tmp_path)
    d = store.open("k")
    d.write_manifest({"key": "k"})
    for name in ("step_0000100", "directions", "curv_0000100", "plane"):
        d.save_arrays(name, KINDS[name])
    d.save_step(200, np.ones((7, 7)), 0.1)  # another resolution than the directions' axes
    truncate(d.path / "curv_0000100.npz")
    (d.path / "manifest.json").write_text("{{{")
    t = store.open_training("t")
    t.save_arrays("trajectory", KINDS["trajectory"])
    overwrite(t.path / "trajectory.npz")
    entries, files, findings = store.verify()
    assert (entries, files) == (2, 7)
    got = {f.path.name: f.problem for f in findings}
    assert set(got) == {"manifest.json", "curv_0000100.npz", "step_0000200.npz", "trajectory.npz"}
    assert "not JSON" in got["manifest.json"] and "truncated" in got["curv_0000100.npz"]
    assert "wrong shape" in got["step_0000200.npz"]
    assert all(f.repaired and f.moved.parent.name == ".quarantine" for f in findings)
    assert sorted(p.name for p in d.path.glob("*.npz")) == ["directions.npz", "plane.npz", "step_0000100.npz"]
    assert store.verify("k") == (1, 3, [])  # healthy now
    assert store.list()[0][2] > 0 and store.clear() == 1  # quarantine goes with its entry
