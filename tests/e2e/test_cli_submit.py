"""llstudio submit: scene batches as one submitit job array; --cluster local runs the same jobs as processes of
this machine, which is how these tests render without a Slurm cluster."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("submitit")

from conftest import TINY_TOML, decode, run_cli  # noqa: E402

from llstudio import cli  # noqa: E402

# Valid as a file; only the model (built on the node) shows that it has no weight 'nope'.
BROKEN = TINY_TOML.replace("[directions]\nseed = 3",
                           '[directions]\nkind = "weights"\nweights = ["nope[0]", "0.weight[1,0]"]')


def _scenes(tmp_path, **texts) -> list[str]:
    folder = tmp_path / "scenes"
    folder.mkdir(exist_ok=True)
    for name, text in texts.items():
        (folder / f"{name}.toml").write_text(text)
    return [f"scenes/{name}.toml" for name in texts]


@pytest.mark.render
def test_submit_local_wait_renders_two_scenes_and_prints_the_table(tmp_path, cli_env):
    scenes = _scenes(tmp_path, one=TINY_TOML, two=TINY_TOML.replace("seed = 3", "seed = 4"))
    proc = run_cli(["submit", *scenes, "--cluster", "local", "--wait", "-q", "l", "--gpus-per-job", "0",
                    "--timeout-min", "5", "--logs", "logs"], cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    lines = proc.stdout.splitlines()
    ids = [ln.split() for ln in lines[:2]]
    assert [scene for _, scene in ids] == scenes and all(job_id.isdigit() for job_id, _ in ids)
    assert "2 of 2 scene(s) rendered" in proc.stdout
    for name, scene in (("one", scenes[0]), ("two", scenes[1])):
        film = tmp_path / "renders" / f"{name}.mp4"
        row = next(ln for ln in lines if ln.startswith(scene + " "))
        assert row.split()[1] == "ok" and row.endswith(str(film))
        meta, frames = decode(film)
        assert len(frames) > 1
    # Each job's log says which store and how many threads it used.
    logs = sorted((tmp_path / "logs").glob("*_log.out"))
    assert len(logs) == 2 and all(f"store {cli_env['LLSTUDIO_CACHE']}" in p.read_text() for p in logs)


def test_submit_local_wait_a_scene_that_fails_on_the_node_is_a_failed_row(tmp_path, cli_env):
    """The scene loads, but its named weight is missing from the model: the job finds out, before training."""
    scenes = _scenes(tmp_path, broken=BROKEN)
    proc = run_cli(["submit", *scenes, "--cluster", "local", "--wait", "--logs", "logs"], cli_env, tmp_path)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    row = next(ln for ln in proc.stdout.splitlines() if ln.startswith("scenes/broken.toml "))
    assert row.split()[1] == "failed" and "the model has no parameter 'nope'" in row
    assert "0 of 1 scene(s) rendered, 1 failed" in proc.stdout
    assert not (tmp_path / "renders").exists()


@pytest.mark.parametrize("flags, message", [
    (["--cluster", "slurm"], "--partition is required with --cluster slurm"),
    (["--timeout-min", "0"], "--timeout-min 0: must be at least 1"),
    (["--array-parallelism", "0"], "--array-parallelism 0: must be at least 1"),
    (["--gpus-per-job", "-1"], "--gpus-per-job -1: must be at least 0"),
    (["--cpus-per-job", "0"], "--cpus-per-job 0: must be at least 1"),
    (["--cluster", "debug"], "--cluster debug runs the jobs in this process while it waits for them: add --wait"),
    (["--format", "gif", "--logs", "logs"], None),  # valid: the control case is checked below
])
def test_submit_bad_flags_exit_2_and_submit_nothing(tmp_path, monkeypatch, capsys, flags, message):
    monkeypatch.chdir(tmp_path)
    scenes = _scenes(tmp_path, one=TINY_TOML)
    if message is None:  # a valid request with an invalid scene: exit 2 with its problems, nothing submitted
        (tmp_path / "scenes" / "one.toml").write_text(TINY_TOML.replace("resolution = 5", "resolution = 0"))
        message = "grid.resolution"
    assert cli.main(["submit", *scenes, "--cluster", "local", *flags]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "scenes"]  # no log folder, no renders


def test_submit_non_integer_flag_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["submit", "a.toml", "--timeout-min", "soon"])
    assert exc.value.code == 2 and "--timeout-min: invalid int value: 'soon'" in capsys.readouterr().err


def test_submit_without_submitit_exits_3_with_the_install_command(tmp_path, monkeypatch, capsys):
    import llstudio.jobs.slurm  # noqa: F401 - loaded with submitit present, as any other test would leave it

    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` now raises ImportError
    monkeypatch.chdir(tmp_path)
    scenes = _scenes(tmp_path, one=TINY_TOML)
    assert cli.main(["submit", *scenes, "--cluster", "local", "--wait"]) == 3
    assert "pip install 'llstudio[slurm]'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "scenes"]


def test_submit_to_slurm_without_slurm_exits_3(tmp_path, monkeypatch, capsys):
    import shutil

    if shutil.which("srun"):
        pytest.skip("this machine has Slurm")
    monkeypatch.chdir(tmp_path)
    scenes = _scenes(tmp_path, one=TINY_TOML)
    assert cli.main(["submit", *scenes, "--partition", "gpu"]) == 3
    assert "no Slurm (srun not found)" in capsys.readouterr().err and not (tmp_path / "renders").exists()
