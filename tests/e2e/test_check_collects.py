"""`llstudio check` lists every cross-check problem of a scene file, one 'file: key.path: message' line each."""

from __future__ import annotations

from conftest import run_cli

# Three cross-section problems in three sections; each section is valid on its own.
THREE = """\
[grid]
dimensions = 1
resolution = 11
y_range = [-1.0, 1.0]

[look]
color_by = "convexity"

[model]
kind = "mlp"
width = 8
"""


def test_check_lists_every_cross_check_problem(cli_env, tmp_path):
    (tmp_path / "three.toml").write_text(THREE)
    proc = run_cli(["check", "--quiet", "three.toml"], cli_env, tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[0] == "llstudio: error: three.toml: 3 problems in the scene file"
    assert [line.split(": ")[1] for line in lines[1:]] == ["grid.y_range", "look.color_by", "model.width"]
    assert "  three.toml: look.color_by: 'convexity' needs curvature maps" in proc.stderr
