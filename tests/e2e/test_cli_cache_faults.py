"""A damaged cache is never fatal (issue 15, defects 1 and 2): a truncated step file, a garbage manifest; and
``llstudio cache verify`` says what it found and repaired. Real ``python -m llstudio`` subprocesses."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import TINY_TOML, run_cli

STEP = "step_0000004.npz"  # the tiny scene captures steps 0, 4, 8 and 12


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A working directory with the tiny scene captured once (by ``export``, which needs no OpenGL) into its own
    cache; returns (directory, environment, the capture's directory)."""
    home = tmp_path_factory.mktemp("faults")
    (home / "tiny.toml").write_text(TINY_TOML)
    env = {**os.environ, "LLSTUDIO_CACHE": str(home / "cache"), "PYVISTA_OFF_SCREEN": "true", "NO_COLOR": "1"}
    proc = run_cli(["export", "tiny.toml", "--format", "npz", "-o", home / "exp", "--progress", "none"], env, home)
    assert proc.returncode == 0, proc.stderr
    (cdir,) = (home / "cache" / "captures").iterdir()
    return home, env, cdir


def _no_traceback(proc):
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


@pytest.mark.render
def test_a_truncated_step_is_reported_once_and_recomputed(home):
    home, env, cdir = home
    before = dict(np.load(cdir / STEP))
    with open(cdir / STEP, "r+b") as f:
        f.truncate((cdir / STEP).stat().st_size // 2)  # the 1000 bytes, for a step file of the tiny grid
    proc = run_cli(["render", "tiny.toml", "-q", "l", "--frames", "0:2", "-o", home / "a.mp4"], env, home)
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    warnings = [ln for ln in proc.stderr.splitlines() if "corrupt cache file" in ln]
    assert len(warnings) == 1 and str(cdir / STEP) in warnings[0] and "truncated" in warnings[0], proc.stderr
    assert "1 of 4 steps" in proc.stderr  # only that step is recomputed
    after = np.load(cdir / STEP)  # written again, whole: the next run reads it without a word
    np.testing.assert_allclose(after["loss"], before["loss"], rtol=1e-6)


def test_a_garbage_manifest_breaks_neither_list_nor_capture(home):
    home, env, cdir = home
    (cdir / "manifest.json").write_text("{{{")
    proc = run_cli(["cache", "list"], env, home)
    assert proc.returncode == 0 and "corrupt manifest" in proc.stdout and cdir.name in proc.stdout, proc.stderr
    _no_traceback(proc)
    # The capture reads the manifest first with or without --no-cache (the defect's traceback came from there):
    # the cached run, which is quicker, shows both.
    proc = run_cli(["export", "tiny.toml", "--format", "npz", "-o", home / "exp", "--progress", "none"], env, home)
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    assert json.loads((cdir / "manifest.json").read_text())["steps"] == [0, 4, 8, 12]  # rebuilt


def test_cache_verify_reports_and_repairs(home):
    home, env, cdir = home
    data = bytearray((cdir / "step_0000008.npz").read_bytes())
    data[200:600] = bytes(400)  # 400 bytes overwritten inside it
    (cdir / "step_0000008.npz").write_bytes(bytes(data))
    (cdir / "manifest.json").write_text("{{{")
    proc = run_cli(["cache", "verify"], env, home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _no_traceback(proc)
    out = proc.stdout
    assert f"corrupt: {cdir / 'step_0000008.npz'}" in out and f"corrupt: {cdir / 'manifest.json'}" in out, out
    assert "repaired 2 of 2 corrupt file(s)" in out
    assert not (cdir / "step_0000008.npz").exists() and len(list((cdir / ".quarantine").iterdir())) >= 2
    proc = run_cli(["cache", "verify", cdir.name], env, home)
    assert proc.returncode == 0 and "the cache is sound" in proc.stdout, proc.stdout
    proc = run_cli(["cache", "verify", "nosuchkey"], env, home)
    assert proc.returncode == 2 and "no capture or training run nosuchkey" in proc.stderr, proc.stderr
