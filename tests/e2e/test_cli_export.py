"""llstudio export through the command line: files written, exit status 2 for bad input and 3 for a missing h5py."""

from __future__ import annotations

import sys

import numpy as np

from conftest import TINY_TOML, run_cli


def test_cli_export_npz(tmp_path, cli_env):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    out = tmp_path / "out"
    proc = run_cli(["export", "tiny.toml", "--format", "npz", "--output", out, "--progress", "none"], cli_env,
                   tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(out / "tiny.npz")]
    with np.load(out / "tiny.npz") as z:
        assert z["loss"].shape == (4, 5, 5)
        np.testing.assert_array_equal(z["steps"], [0, 4, 8, 12])


def test_cli_bad_format_and_bad_scene_exit_2(tmp_path, cli_env):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    proc = run_cli(["export", "tiny.toml", "--format", "obj"], cli_env, tmp_path)
    assert proc.returncode == 2
    assert "invalid choice: 'obj'" in proc.stderr
    (tmp_path / "bad.toml").write_text(TINY_TOML.replace("resolution = 5", "resolutin = 5"))
    proc = run_cli(["export", "bad.toml", "--format", "npz"], cli_env, tmp_path)
    assert proc.returncode == 2
    assert "grid.resolutin" in proc.stderr
    assert not (tmp_path / "renders").exists()


def test_cli_default_directory_and_missing_h5py(tmp_path, monkeypatch, capsys):
    from llstudio.cli import main

    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)
    assert main(["export", "tiny.toml", "--format", "h5", "--progress", "none"]) == 3
    assert "pip install" in capsys.readouterr().err
    assert not (tmp_path / "renders").exists()  # refused before any work
    assert main(["export", "tiny.toml", "--format", "vts", "--progress", "none"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"renders/tiny_export/tiny_step_{s:07d}.vts" for s in (0, 4, 8, 12)] + \
        ["renders/tiny_export/tiny.pvd"]
    assert (tmp_path / "renders" / "tiny_export" / "tiny.pvd").exists()
