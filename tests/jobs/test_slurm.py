"""llstudio submit's pieces without a cluster: the request's checks, submitit's parameters, the jobs' absolute
paths, the checkpointable runner, and a job that dies turned into a table row."""

from __future__ import annotations

import operator
import os

import pytest

submitit = pytest.importorskip("submitit")

from llstudio.config.scene import load_scene  # noqa: E402
from llstudio.errors import UsageError  # noqa: E402
from llstudio.jobs import slurm  # noqa: E402
from llstudio.jobs.job import Job  # noqa: E402
from llstudio.jobs.slots import cpu_count  # noqa: E402


def test_request_problems_name_every_bad_flag_at_once():
    req = slurm.Request(cluster="slurm", gpus_per_job=-1, cpus_per_job=0, timeout_min=0, array_parallelism=0)
    problems = slurm.request_problems(req)
    assert len(problems) == 5
    for flag in ("--partition", "--gpus-per-job -1", "--cpus-per-job 0", "--timeout-min 0", "--array-parallelism 0"):
        assert any(p.startswith(flag) for p in problems), (flag, problems)
    assert slurm.request_problems(slurm.Request(cluster="local", gpus_per_job=0)) == []
    assert "add --wait" in slurm.request_problems(slurm.Request(cluster="debug"))[0]
    with pytest.raises(UsageError, match="--timeout-min 0: must be at least 1"):
        slurm.check_request(slurm.Request(cluster="local", timeout_min=0))


def test_executor_parameters_one_task_per_scene():
    req = slurm.Request(cluster="slurm", partition="gpu", gpus_per_job=2, cpus_per_job=8, timeout_min=90,
                        array_parallelism=4)
    assert slurm.executor_parameters(req) == {
        "name": "llstudio", "timeout_min": 90, "nodes": 1, "tasks_per_node": 1, "gpus_per_node": 2,
        "cpus_per_task": 8, "slurm_partition": "gpu", "slurm_array_parallelism": 4}
    # Left to the cluster when not given.
    assert "cpus_per_task" not in slurm.executor_parameters(slurm.Request(cluster="local"))


def test_submitted_jobs_carry_absolute_paths(tmp_path, monkeypatch, tiny_toml):
    """What a node unpickles names the scene, the film and the store absolutely, whatever its working directory;
    the debug executor submits without running anything until a result is asked for (here, never)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLSTUDIO_CACHE", "relative-cache")
    jobs = slurm.make_jobs([load_scene("scenes/tiny.toml")], quality="l", device="cpu")
    (sj,) = slurm.submit(slurm.Request(cluster="debug", logs="logs", wait=True), jobs)
    delayed = sj.submission()
    assert isinstance(delayed.function, slurm.SceneRunner)
    assert delayed.function.cache == str(tmp_path / "relative-cache")
    (job,) = delayed.args
    assert job == Job(scene=str(tiny_toml), quality="l", device="cpu", output=str(tmp_path / "renders/tiny.mp4"))
    assert (tmp_path / "logs").is_dir()
    # Without --wait the command says where to look.
    said = slurm.follow_up(slurm.Request(cluster="local", logs="logs"), [sj], jobs)
    assert f"logs in {tmp_path / 'logs'}" in said and f"films go to {tmp_path / 'renders'}" in said


def test_two_scenes_writing_one_film_are_refused(tmp_path, tiny_toml):
    other = tmp_path / "other" / "tiny.toml"
    other.parent.mkdir()
    other.write_text(tiny_toml.read_text())
    with pytest.raises(UsageError, match="would both write"):
        slurm.make_jobs([load_scene(tiny_toml), load_scene(other)])


def test_checkpoint_resubmits_the_same_runner_with_the_same_job():
    runner = slurm.SceneRunner("/shared/cache")
    job = Job(scene="/shared/scenes/a.toml", quality="h")
    assert isinstance(runner, submitit.helpers.Checkpointable)
    delayed = runner.checkpoint(job)
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert delayed.function is runner and delayed.args == (job,) and delayed.kwargs == {}


def test_prepare_node_sets_the_store_and_the_allocation_threads(monkeypatch):
    import torch

    before = torch.get_num_threads()
    for name in ("LLSTUDIO_CACHE", "OMP_NUM_THREADS", "LP_NUM_THREADS", "LLSTUDIO_THREADS"):
        monkeypatch.delenv(name, raising=False)
    try:
        threads = slurm.prepare_node("/shared/cache")
        assert threads == cpu_count() == torch.get_num_threads()
        assert os.environ["LLSTUDIO_CACHE"] == "/shared/cache"
        assert os.environ["LP_NUM_THREADS"] == os.environ["LLSTUDIO_THREADS"] == str(threads)
    finally:
        torch.set_num_threads(before)


def test_a_job_that_dies_is_a_failed_row_with_its_reason_and_log(tmp_path):
    """Real local jobs (no torch, a second each): one raises outside run_job, one exits without a result."""
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="local")
    executor.update_parameters(timeout_min=1)
    raised = executor.map_array(operator.truediv, [1], [0])
    vanished = executor.map_array(os._exit, [7])
    sjobs = raised + vanished
    vanished[0]._results_timeout_s = 0  # no result file will come: do not wait for a slow filesystem
    results = slurm.collect(sjobs, [Job("a.toml"), Job("b.toml")], ["a.toml", "b.toml"], poll_s=0.2)
    assert [(r.scene, r.status, r.exit_code) for r in results] == [("a.toml", "failed", 1), ("b.toml", "failed", 1)]
    assert results[0].detail.startswith("ZeroDivisionError: division by zero (log ")
    assert str(raised[0].paths.stdout) in results[0].detail
    assert results[1].detail.startswith("no result: has not produced any output")
