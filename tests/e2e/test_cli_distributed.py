"""``torchrun -m llstudio render`` through torch's own launcher: two CPU ranks, one printed film per scene from
rank 0; and the launcher's environment checked before any rank waits for another."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from conftest import REPO, TINY_TOML, decode
from llstudio.cli import main

LAUNCHER = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.render
def test_torchrun_renders_each_scene_once_from_rank_0(cli_env, isolated_cache, tmp_path):
    (tmp_path / "a.toml").write_text(TINY_TOML)
    (tmp_path / "b.toml").write_text(TINY_TOML.replace("seed = 3", "seed = 4"))
    env = {**cli_env, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                           str(_free_port()), "-m", "llstudio", "render", "a.toml", "b.toml", "-q", "l",
                           "--progress", "none"], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    films = proc.stdout.split()
    assert [f.rsplit("/", 1)[-1] for f in films] == ["a.mp4", "b.mp4"]  # printed once, by rank 0
    for f in films:
        meta, frames = decode(tmp_path / f)
        assert meta["codec"] == "h264" and len(frames) > 1
    assert len(list((isolated_cache / "captures").iterdir())) == 2


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A working directory with the tiny scene, and none of a launcher's variables in the environment."""
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    monkeypatch.chdir(tmp_path)
    for v in LAUNCHER:
        monkeypatch.delenv(v, raising=False)
    return tmp_path


def test_distributed_without_a_launcher_is_exit_2(home, isolated_cache, capsys):
    assert main(["render", "tiny.toml", "--distributed", "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert "torchrun" in err and "MASTER_ADDR" in err
    assert not (isolated_cache / "captures").exists()


@pytest.mark.parametrize("command", [["still", "tiny.toml"], ["export", "tiny.toml", "-f", "npz"]])
def test_still_and_export_refuse_several_ranks(command, home, isolated_cache, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(command) == 2
    assert "only 'render' shares a capture" in capsys.readouterr().err
    assert not (isolated_cache / "captures").exists()


def test_malformed_world_size_is_exit_2(home, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main(["render", "tiny.toml", "--progress", "none"]) == 2
    assert "WORLD_SIZE='two'" in capsys.readouterr().err


def test_an_error_on_rank_0_stops_every_rank(cli_env, isolated_cache, tmp_path):
    """The scene is valid on its own, but names weights the model lacks: known only once rank 0 builds it, while
    rank 1 waits for the runs. Rank 1 hears of it and exits with the same status; nothing hangs."""
    bad = TINY_TOML.replace("seed = 3", 'seed = 3\nkind = "weights"\nweights = ["nope.weight[0,0]", "0.weight[1,1]"]')
    (tmp_path / "bad.toml").write_text(bad)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                           str(_free_port()), "-m", "llstudio", "render", "bad.toml", "--progress", "none"],
                          capture_output=True, text=True, env={**cli_env, "PYTHONPATH": str(REPO)}, cwd=str(tmp_path),
                          timeout=120)
    assert proc.returncode != 0 and not proc.stdout.strip()
    # Each rank prints its line; the launcher may stop the slower one before it does.
    assert ("model has no parameter 'nope.weight'" in proc.stderr
            or "rank 0 failed: bad.toml: 1 problem in the scene file" in proc.stderr)
