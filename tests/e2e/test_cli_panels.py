"""Scenes with panels through the command line: check, render, still and export, and a bad panel's exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import PANELS_TOML


def test_bad_panel_scene_exits_2_from_the_cli(cli_env, tmp_path):
    from conftest import run_cli

    (tmp_path / "bad.toml").write_text(PANELS_TOML.replace("batch_size = 64", "batch_size = -1"))
    proc = run_cli(["check", "bad.toml"], cli_env, tmp_path)
    assert proc.returncode == 2
    assert "bad.toml: panels[1].training.batch_size: Input should be greater than 0" in proc.stderr


@pytest.mark.render
def test_cli_render_still_check_and_export_a_panel_scene(panel_capture, tmp_path, monkeypatch, capsys):
    """In-process through cli.main (the subprocess path is the same code; it is tested for plain scenes), with the
    panels' captures already cached by the panel_capture fixture."""
    from PIL import Image

    from llstudio.cli import main
    from conftest import decode

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLSTUDIO_CACHE", str(panel_capture.panels[0].path.parent.parent))  # <root>/captures/<key>
    (tmp_path / "cmp.toml").write_text(PANELS_TOML)

    def run(*args) -> str:
        capsys.readouterr()
        assert main([*args, "--progress", "none"] if args[0] != "check" else list(args)) == 0
        return capsys.readouterr().out

    assert run("render", "cmp.toml", "-q", "l", "--frames=-2:").strip() == "renders/cmp.mp4"
    meta, frames = decode(tmp_path / "renders" / "cmp.mp4")
    assert tuple(meta["size"]) == (854, 480)
    assert len(frames) == 2
    left, right = frames[-1][:, :426].astype(int), frames[-1][:, 428:].astype(int)
    assert np.abs(left - right).mean() > 5  # viridis beside magma
    sidecar = json.loads((tmp_path / "renders" / "cmp.json").read_text())
    assert sidecar["capture_key"].count("+") == 1 and len(sidecar["resolved_scene"]["panels"]) == 2
    assert sidecar["n_frames_total"] == 18 and sidecar["frames"] == [16, 18]

    run("still", "cmp.toml", "-q", "l", "--frame", "-1", "-o", "still.png")
    with Image.open(tmp_path / "still.png") as im:
        assert im.size == (854, 480)

    cost = json.loads(run("check", "cmp.toml", "-q", "l").partition("\n")[2])["cost"]
    assert [p["title"] for p in cost["panels"]] == ["batch size 4", "batch size 64"] and cost["frames"] == 18

    run("export", "cmp.toml", "-f", "npz", "-o", "exp")
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["cmp_panel1.npz", "cmp_panel2.npz"]
    with np.load(tmp_path / "exp" / "cmp_panel2.npz") as z:
        assert json.loads(str(z["scene"]))["training"]["batch_size"] == 64
