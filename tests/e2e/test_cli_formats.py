"""Output formats through the command line: --format picks codec and suffix, and a format that cannot be honoured is refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TINY_TOML, decode, stream_info


def test_cli_refuses_transparency_without_alpha_before_any_work(tmp_path, cli_env):
    from conftest import run_cli

    scene = tmp_path / "t.toml"
    scene.write_text(TINY_TOML.replace('[look]\n', '[look]\nbackground = "transparent"\n')
                     .replace('[output]\n', '[output]\nformat = "png"\n'))
    proc = run_cli(["render", scene, "--format", "mp4", "--progress", "none"], cli_env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "transparent" in proc.stderr and "png or prores" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.toml"]  # no renders/, nothing trained
    assert not any(Path(cli_env["LLSTUDIO_CACHE"]).rglob("*.npz"))


@pytest.mark.render
def test_cli_format_flag_sets_codec_and_suffix(tmp_path, cli_env):
    from conftest import run_cli

    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    proc = run_cli(["render", "tiny.toml", "--format", "webm", "-q", "l", "--frames", "0:3", "--progress", "none"],
                   cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    film = tmp_path / "renders" / "tiny.webm"
    assert proc.stdout.strip() == str(Path("renders") / "tiny.webm")
    assert "Video: vp9" in stream_info(film)
    meta, frames = decode(film)
    assert len(frames) == 3 and tuple(meta["size"]) == (854, 480)
    assert sorted(p.name for p in film.parent.iterdir()) == ["tiny.json", "tiny.webm"]
