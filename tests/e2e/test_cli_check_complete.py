"""`llstudio check` says everything `render` would refuse (defect 10) and prints the capture's time and memory
estimate; `render` refuses a capture that needs more memory than the machine has, before any work (defect 11)."""

from __future__ import annotations

import json

from pathlib import Path

from conftest import TINY_TOML, run_cli, write_mnist


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*") if p.is_file())

MNIST_TOML = TINY_TOML.replace('dataset = "digits"', 'dataset = "mnist"\nroot = "{root}"').replace(
    'kind = "mlp"', 'kind = "cnn"\nwidth = 2').replace('hidden = [8]\nactivation = "tanh"\n', '')
BAD_WEIGHTS = '\n[directions]\nkind = "weights"\nweights = ["conv9.weight[0,0,0,0]", "fc2.bias[0]"]\nseed = 3\n'


def _scene(tmp_path, root, extra: str = "") -> str:
    text = MNIST_TOML.replace("{root}", str(root))
    if extra:
        text = text.replace("[directions]\nseed = 3\n", "") + extra
    (tmp_path / "s.toml").write_text(text)
    return "s.toml"


def test_check_refuses_what_render_refuses(cli_env, isolated_cache, tmp_path):
    assert "[directions]\nseed = 3\n" in MNIST_TOML and 'kind = "cnn"' in MNIST_TOML
    scene = _scene(tmp_path, tmp_path / "no-mnist-here", BAD_WEIGHTS)
    check = run_cli(["check", scene], cli_env, tmp_path)
    assert check.returncode == 3, check.stderr
    assert "s.toml: data.root: data.dataset = 'mnist': not found" in check.stderr
    assert "s.toml: directions.weights[0]:" in check.stderr and "conv9" in check.stderr
    assert "Traceback" not in check.stderr and check.stdout == ""
    render = run_cli(["render", scene, "--progress", "none"], cli_env, tmp_path)
    assert render.returncode == 3 and "MNIST/raw" in render.stderr  # the same refusal, from render

    write_mnist(tmp_path / "data")  # the dataset is there now: only the weight names are wrong, exit 2
    scene = _scene(tmp_path, tmp_path / "data", BAD_WEIGHTS)
    check = run_cli(["check", "--quiet", scene], cli_env, tmp_path)
    assert check.returncode == 2 and "directions.weights[0]" in check.stderr and "data.root" not in check.stderr
    assert files_under(isolated_cache) == []


def test_check_prints_the_time_and_memory_estimate(cli_env, tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    proc = run_cli(["check", "tiny.toml"], cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    est = json.loads(proc.stdout.partition("\n")[2])["estimate"]
    assert est["capture_s"] > 0 and est["peak_memory_mib"] > est["memory_mib"]["process"]
    assert est["capture_time"].startswith("about ") and " MiB" in est["peak_memory"]


HUGE = TINY_TOML.replace("resolution = 5", "resolution = 4097").replace("steps = 12", "steps = 10000").replace(
    "every = 4", "every = 1")


def test_a_huge_grid_is_refused_before_any_work(cli_env, isolated_cache, tmp_path):
    assert "resolution = 4097" in HUGE and "every = 1" in HUGE
    (tmp_path / "huge.toml").write_text(HUGE)  # 10,001 steps of 4097x4097 float64: over a terabyte
    proc = run_cli(["render", "huge.toml", "-o", "out/film.mp4", "--progress", "none"], cli_env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "huge.toml: grid.resolution: this capture needs about" in proc.stderr
    assert "10001 captured steps of 4097x4097 points" in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert files_under(isolated_cache) == [] and not (tmp_path / "out").exists()
    check = run_cli(["check", "--quiet", "huge.toml"], cli_env, tmp_path)  # check says so too (--force: in-process)
    assert check.returncode == 2 and "grid.resolution: this capture needs about" in check.stderr
