"""End to end through the command line: ``python -m llstudio ...`` in a subprocess, real training, capture,
VTK rendering and ffmpeg encoding; the film is decoded back and checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import llstudio
from conftest import REPO, TINY_TOML, decode, make_scene, run_cli


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    """A working directory with the tiny scene, and an environment whose cache lives beside it."""
    home = tmp_path_factory.mktemp("cli")
    (home / "tiny.toml").write_text(TINY_TOML)
    env = dict(os.environ)
    env.update({"LLSTUDIO_CACHE": str(home / "cache"), "PYVISTA_OFF_SCREEN": "true", "NO_COLOR": "1"})
    return home, env


@pytest.fixture(scope="module")
def rendered(cli_home, gl_context):
    """`llstudio render tiny.toml -q l -o out/film.mp4`, once for the module's checks."""
    home, env = cli_home
    film = home / "out" / "film.mp4"
    proc = run_cli(["render", "tiny.toml", "-q", "l", "-o", film, "--progress", "none"], env, home)
    return proc, film


# ------------------------------------------------------------------------------------------------ render


@pytest.mark.render
def test_render_exits_zero_and_prints_the_film(rendered):
    proc, film = rendered
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(film)
    assert film.exists() and film.stat().st_size > 1000


@pytest.mark.render
def test_film_format(rendered):
    proc, film = rendered
    assert proc.returncode == 0, proc.stderr
    meta, frames = decode(film)
    assert meta["codec"] == "h264"
    assert tuple(meta["size"]) == (854, 480)
    assert meta["fps"] == 15
    assert meta["pix_fmt"].startswith("yuv420p")
    assert frames[0].shape == (480, 854, 3)


@pytest.mark.render
def test_film_has_the_estimated_number_of_frames(rendered):
    from llstudio.pipeline import estimate

    _, film = rendered
    _, frames = decode(film)
    expected = estimate(make_scene("tiny.toml"), "l")["frames"]
    assert expected == 12
    assert len(frames) == expected


@pytest.mark.render
def test_film_changes_from_frame_to_frame(rendered):
    _, film = rendered
    _, frames = decode(film)
    changed = [np.mean(np.abs(a.astype(int) - b.astype(int)) > 8) for a, b in zip(frames, frames[1:])]
    assert all(c > 0.001 for c in changed), changed  # the camera moves on every frame
    assert np.mean(np.abs(frames[0].astype(int) - frames[-1].astype(int)) > 8) > 0.05


@pytest.mark.render
def test_sidecar_and_nothing_else_in_the_output_dir(rendered, cli_home):
    from llstudio.pipeline import capture_key

    home, _ = cli_home
    _, film = rendered
    sidecar = film.with_suffix(".json")
    info = json.loads(sidecar.read_text())
    key = capture_key(make_scene("tiny.toml"), "cpu")
    assert info["capture_key"] == key
    assert info["film"] == "film.mp4"
    assert info["frames"] == [0, 12] and info["n_frames_total"] == 12
    assert (info["width"], info["height"], info["fps"]) == (854, 480, 15)
    assert info["resolved_scene"]["grid"]["resolution"] == 5
    assert files_under(film.parent) == ["film.json", "film.mp4"]  # no temporary file left behind
    # the capture went to LLSTUDIO_CACHE, not to ~/.cache, and nothing went to the default renders/ dir
    assert (home / "cache" / "captures" / key / "manifest.json").exists()
    assert not (home / "renders").exists()


@pytest.mark.render
def test_frames_range_gives_exactly_those_frames(rendered, cli_home, tmp_path):
    home, env = cli_home
    film = tmp_path / "part.mp4"
    proc = run_cli(["render", "tiny.toml", "-q", "l", "-o", film, "--frames", "0:5", "--progress", "none"],
                   env, home)
    assert proc.returncode == 0, proc.stderr
    meta, frames = decode(film)
    assert len(frames) == 5
    info = json.loads(film.with_suffix(".json").read_text())
    assert info["frames"] == [0, 5] and info["n_frames_total"] == 12
    # the same frames as the full film (same capture, same camera); H.264 is lossy, so compare loosely
    _, full = decode(rendered[1])
    for a, b in zip(frames, full[:5]):
        assert np.mean(np.abs(a.astype(int) - b.astype(int))) < 3.0


@pytest.mark.render
def test_still_writes_a_png_of_the_right_size(rendered, cli_home, tmp_path):
    from PIL import Image

    home, env = cli_home
    png = tmp_path / "still.png"
    proc = run_cli(["still", "tiny.toml", "-q", "l", "--frame", "-1", "-o", png, "--progress", "none"], env, home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(png)
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (854, 480)
        img = np.asarray(im.convert("RGB"))
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20
    assert files_under(tmp_path) == ["still.png"]


@pytest.mark.render
def test_doctor(cli_env, tmp_path):
    proc = run_cli(["doctor"], cli_env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "libx264" in proc.stdout
    assert proc.stdout.count("[ok]") == 5 and "FAIL" not in proc.stdout
    assert "[ok] gpus " in proc.stdout  # the GPU → EGL device mapping, or that there is no CUDA GPU


@pytest.mark.render
def test_render_two_scenes_when_the_first_is_cached(cli_env, tmp_path):
    from llstudio.pipeline import capture_scene

    (tmp_path / "a.toml").write_text(TINY_TOML)
    (tmp_path / "b.toml").write_text(TINY_TOML.replace("seed = 0", "seed = 5"))
    capture_scene(make_scene(tmp_path / "a.toml"), device="cpu")  # a is cached, b is not
    proc = run_cli(["render", "a.toml", "b.toml", "-q", "l", "--frames", "0:1", "--progress", "none"],
                   cli_env, tmp_path)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert (tmp_path / "renders" / "a.mp4").exists() and (tmp_path / "renders" / "b.mp4").exists()


# ------------------------------------------------------------------------------------------------ check, schema


def test_check_prints_the_cost(cli_env, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    proc = run_cli(["check", "tiny.toml", "-q", "l"], cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    head, _, body = proc.stdout.partition("\n")
    assert head == "# tiny.toml: valid"
    report = json.loads(body)
    cost = report["cost"]
    assert cost["frames"] == 12 and cost["captured_steps"] == 4 and cost["grid"] == "5x5"
    assert cost["grid_evaluations"] == 100 and cost["resolution"] == "854x480" and cost["fps"] == 15
    assert report["scene"]["training"]["steps"] == 12
    quiet = run_cli(["check", "--quiet", "tiny.toml"], cli_env, tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_check_shipped_scenes(cli_env):
    scenes = sorted((REPO / "scenes").glob("*.toml"))
    proc = run_cli(["check", "--quiet", *scenes], cli_env, REPO)
    assert proc.returncode == 0, proc.stderr


def test_schema_and_version(cli_env, tmp_path):
    proc = run_cli(["schema"], cli_env, tmp_path)
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert "grid" in schema["properties"]
    v = run_cli(["--version"], cli_env, tmp_path)
    assert v.returncode == 0 and v.stdout.strip() == "0.1.0"


# ------------------------------------------------------------------------------------------------ failures


def test_bad_scene_exits_2_and_writes_nothing(cli_env, isolated_cache, tmp_path):
    scene = tmp_path / "bad.toml"
    scene.write_text(TINY_TOML.replace("resolution = 5", "resolutin = 5"))
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli(["render", scene, "-q", "l", "-o", out / "film.mp4", "--progress", "none"], cli_env, tmp_path)
    assert proc.returncode == 2
    assert str(scene) in proc.stderr
    assert "grid.resolutin" in proc.stderr and "did you mean 'resolution'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert files_under(out) == []
    assert files_under(isolated_cache) == []
    assert not (tmp_path / "renders").exists()


def test_several_bad_scenes_are_all_reported(cli_env, tmp_path):
    (tmp_path / "a.toml").write_text(TINY_TOML.replace("lr = 0.1", "lr = -1"))
    (tmp_path / "b.toml").write_text(TINY_TOML.replace('colormap', 'x').replace("[look]", '[look]\ncolormap = "viridus"'))
    proc = run_cli(["check", "a.toml", "b.toml"], cli_env, tmp_path)
    assert proc.returncode == 2
    assert "a.toml: training.lr" in proc.stderr
    assert "b.toml: look.colormap" in proc.stderr and "viridis" in proc.stderr


def test_render_of_a_missing_file_exits_2(cli_env, isolated_cache, tmp_path):
    proc = run_cli(["render", tmp_path / "nope.toml", "-q", "l", "--progress", "none"], cli_env, tmp_path)
    assert proc.returncode == 2
    assert "nope.toml" in proc.stderr and "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert files_under(isolated_cache) == []


def test_output_with_several_scenes_is_a_usage_error(cli_env, tmp_path):
    (tmp_path / "a.toml").write_text(TINY_TOML)
    proc = run_cli(["render", "a.toml", "a.toml", "-o", "x.mp4"], cli_env, tmp_path)
    assert proc.returncode == 2
    assert "--output" in proc.stderr
    assert files_under(tmp_path) == ["a.toml"]


def test_no_command_prints_help_and_exits_2(cli_env, tmp_path):
    proc = run_cli([], cli_env, tmp_path)
    assert proc.returncode == 2 and "render" in proc.stdout


# ------------------------------------------------------------------------------------------------ in process


def test_cache_list_and_clear(tiny_scene, isolated_cache, capsys):
    from llstudio.cli import main
    from llstudio.pipeline import capture_scene

    cap = capture_scene(tiny_scene, device="cpu")
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert f"1 capture(s) in {isolated_cache / 'captures'}" in out
    assert cap.key in out and "4 steps" in out and str(tiny_scene.source) in out
    assert main(["cache", "clear", cap.key]) == 0
    assert "removed 1 capture(s)" in capsys.readouterr().out
    assert not cap.path.exists()
    assert main(["cache", "list"]) == 0
    assert capsys.readouterr().out.startswith("0 capture(s)")


def test_readme_default_scene_cost():
    from llstudio.pipeline import estimate
    from llstudio.config.scene import load_scene

    cost = estimate(load_scene(REPO / "scenes" / "digits_ride.toml"))
    # README: "renders/digits_ride.mp4 (1920×1080, 30 fps, 17.5 s)"
    assert cost["resolution"] == "1920x1080" and cost["fps"] == 30 and cost["duration_s"] == 17.5
    assert cost["captured_steps"] == 31 and cost["grid"] == "81x81"


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_after_the_command_exits_cleanly(sig, code):
    """A Ctrl-C or SIGTERM that lands once the command has returned, in the interpreter's teardown (the fault
    suite's export kill: its files were written, then SIGINT printed an ignored KeyboardInterrupt's traceback and
    the process exited 0), exits 130 or 143 with one line and no traceback."""
    program = ("import os, sys, time\nsys.argv = ['llstudio', '--version']\nfrom llstudio.cli import run\n"
               f"code = run()\nos.kill(os.getpid(), {int(sig)})\ntime.sleep(30)\nsys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "after the command had finished" in proc.stderr
    assert proc.stdout.strip() == llstudio.__version__
