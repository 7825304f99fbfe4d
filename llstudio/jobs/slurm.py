"""Scene batches on a Slurm cluster through submitit: one job array, one job per scene, each running the same
:func:`~llstudio.jobs.job.run_job` a local render runs, on the GPU and CPU cores its allocation gives it.

Everything a job needs travels in its pickle as absolute paths (the scene, the film, the capture store), so the
node's working directory does not matter; the store and the films must be on a filesystem the nodes share. A job
that is preempted or reaches its time limit is resubmitted by submitit (:class:`SceneRunner` is
checkpointable) and resumes from the store: the training run and every captured step already written are read
back, and only the film is rendered again from its first frame.

submitit is the optional extra ``llstudio[slurm]``; :func:`submitit_module` says how to install it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from ..config.scene import Scene
from ..errors import LLStudioError, MissingDependency, UsageError
from ..progress import Progress
from .job import FAILED, Job, JobResult, run_job
from .slots import Slot, cpu_count

try:  # the optional extra; without it the runner is a plain class and submit() reports how to install it
    from submitit.helpers import Checkpointable, DelayedSubmission
except ImportError:  # pragma: no cover - exercised through submitit_module()
    Checkpointable, DelayedSubmission = object, None

CLUSTERS = ("slurm", "local", "debug")
INSTALL = "pip install 'llstudio[slurm]'"


@dataclass(frozen=True)
class Request:
    """Where and with what each job of the array runs: the submitit cluster, its partition (Slurm), GPUs and CPU
    cores per job (None: the cluster's default), the time limit, how many jobs run at once, the log folder, and
    whether the submitter waits for the outcomes."""

    cluster: str = "slurm"
    partition: Optional[str] = None
    gpus_per_job: int = 1
    cpus_per_job: Optional[int] = None
    timeout_min: int = 60
    array_parallelism: Optional[int] = None
    logs: str = "renders/submit-logs"
    wait: bool = False
    name: str = "llstudio"


def request_problems(req: Request) -> list[str]:
    """Every problem of a request at once, one line each naming the flag (empty: it can be submitted)."""
    problems = []
    if req.cluster not in CLUSTERS:
        problems.append(f"--cluster {req.cluster}: use one of {', '.join(CLUSTERS)}")
    if req.cluster == "debug" and not req.wait:
        problems.append("--cluster debug runs the jobs in this process while it waits for them: add --wait")
    if req.cluster == "slurm" and not req.partition:
        problems.append("--partition is required with --cluster slurm: the Slurm partition (queue) to run in, "
                        "e.g. --partition gpu ('sinfo -s' lists them)")
    for flag, value, least in (("--gpus-per-job", req.gpus_per_job, 0), ("--cpus-per-job", req.cpus_per_job, 1),
                               ("--timeout-min", req.timeout_min, 1),
                               ("--array-parallelism", req.array_parallelism, 1)):
        if value is not None and value < least:
            problems.append(f"{flag} {value}: must be at least {least}")
    return problems


def prepare_logs(logs: str) -> Path:
    """The log folder, absolute and created; a UsageError when it cannot be written."""
    path = Path(logs).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--logs {logs}: cannot create the log folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"--logs {logs}: the folder {path} is not writable")
    return path


def check_request(req: Request) -> None:
    """Everything about the request that can be known before anything is written: one UsageError (exit 2)
    listing every bad flag, then a MissingDependency (exit 3) for a missing submitit or, with --cluster slurm, a
    machine without Slurm's commands."""
    problems = request_problems(req)
    if problems:
        raise UsageError("cannot submit:\n" + "\n".join("  " + p for p in problems))
    submitit = submitit_module()
    if req.cluster == "slurm" and submitit.SlurmExecutor.affinity() <= 0:
        raise MissingDependency("--cluster slurm: this machine has no Slurm (srun not found). Submit from a "
                                "machine of the cluster (its login node), or try the jobs here with --cluster local")


def executor_parameters(req: Request) -> dict:
    """submitit's update_parameters for the request: one task on one node per scene. Generic names apply to
    every cluster (the local executor reads timeout_min and gpus_per_node: it sets CUDA_VISIBLE_DEVICES to that
    many GPUs); ``slurm_`` names only to Slurm."""
    params = {"name": req.name, "timeout_min": req.timeout_min, "nodes": 1, "tasks_per_node": 1,
              "gpus_per_node": req.gpus_per_job}
    if req.cpus_per_job is not None:
        params["cpus_per_task"] = req.cpus_per_job
    if req.partition:
        params["slurm_partition"] = req.partition
    if req.array_parallelism is not None:
        params["slurm_array_parallelism"] = req.array_parallelism
    return params


def make_jobs(scenes: list[Scene], quality: Optional[str] = None, fmt: Optional[str] = None,
              device: Optional[str] = None, no_cache: bool = False) -> list[Job]:
    """One job per scene, with absolute paths for the scene file and the film (its default place under this
    working directory), after the same output checks a render makes. Two scenes that would write the same film
    are a UsageError."""
    # Here, not at the top: this module is the first a node unpickles, and prepare_node must set the thread
    # counts before the render stages load torch and VTK.
    from ..pipeline import check_output, default_output

    jobs, seen = [], {}
    for scene in scenes:
        chosen = check_output(scene, None, fmt)
        out = default_output(scene, chosen).absolute()
        if out in seen:
            raise UsageError(f"{scene.source} and {seen[out]} would both write {out}: give one of them an "
                             "output.path, or submit them separately")
        seen[out] = scene.source
        jobs.append(Job(scene=str(Path(scene.source).absolute()), quality=quality, format=fmt, device=device,
                        output=str(out), no_cache=no_cache))
    return jobs


def prepare_node(cache: str) -> int:
    """On the node, before any torch or VTK work: the capture store the submitter named, and every library's
    threads set to the cores of this job's allocation (its affinity mask). Returns that thread count."""
    os.environ["LLSTUDIO_CACHE"] = cache
    threads = cpu_count()
    os.environ.update(Slot(0, threads).env())
    import torch

    torch.set_num_threads(threads)
    return threads


class SceneRunner(Checkpointable):
    """What each job of the array runs: ``runner(job)`` renders one scene on the node and returns its JobResult
    (run_job never raises). Checkpointable: when Slurm preempts the job or its time runs out, submitit calls
    :meth:`checkpoint` and requeues the same runner with the same job, which resumes from the store."""

    def __init__(self, cache: str, progress: str = "auto"):
        self.cache = cache
        self.progress = progress

    def __call__(self, job: Job) -> JobResult:
        threads = prepare_node(self.cache)
        print(f"llstudio: {job.scene} with {threads} CPU thread(s), store {self.cache}", flush=True)
        result = run_job(job, Progress(self.progress))  # not a terminal: one line per stage, in the job's log
        print(f"llstudio: {result.status} in {result.seconds:.1f} s: {result.detail}", flush=True)
        return result

    def checkpoint(self, job: Job) -> "DelayedSubmission":
        """Resubmit this runner with the same job: the store keeps the training run and every captured step, so
        the next attempt goes on from there. (A signal that lands while VTK is rendering is swallowed by VTK's
        callback, as Ctrl-C is: on the local executor that attempt then finishes the film; Slurm, already asked
        to requeue, ends it and the next attempt renders again from the store.)"""
        return DelayedSubmission(self, job)


def submitit_module():
    """submitit, or a MissingDependency (exit 3) that says how to install it."""
    try:
        import submitit
    except ImportError:
        raise MissingDependency(f"llstudio submit needs submitit, the optional extra llstudio[slurm]: {INSTALL}") \
            from None
    return submitit


def make_executor(req: Request, logs: Path):
    """submitit's executor for the request, every job's pickles and logs in ``logs`` (named by job id)."""
    executor = submitit_module().AutoExecutor(folder=logs, cluster=req.cluster)
    executor.update_parameters(**executor_parameters(req))
    return executor


def submit(req: Request, jobs: list[Job], cache: Optional[str] = None, progress: str = "auto") -> list:
    """Submit ``jobs`` as one job array; returns submitit's jobs in the same order. ``cache``: the store the jobs
    use (default: this process's, made absolute); ``progress``: the jobs' progress mode."""
    from ..pipeline import default_root

    check_request(req)
    executor = make_executor(req, prepare_logs(req.logs))
    runner = SceneRunner(str(Path(cache or default_root()).expanduser().absolute()), progress)
    try:
        return executor.map_array(runner, jobs)
    except submitit_module().core.utils.FailedSubmissionError as exc:
        raise LLStudioError(f"the cluster refused the job array, nothing was submitted: {exc}\nCheck "
                            "--partition, --gpus-per-job, --cpus-per-job and --timeout-min against the "
                            "partition's limits ('sinfo -s', 'scontrol show partition')") from None


def follow_up(req: Request, sjobs: list, jobs: list[Job]) -> str:
    """What to do after submitting without --wait: how to follow the jobs, where their logs and films go."""
    films = ", ".join(sorted({str(Path(j.output).parent) for j in jobs if j.output}))
    if req.cluster == "slurm":
        array = str(sjobs[0].job_id).split("_")[0]
        how = f"follow them with 'squeue -j {array}' ('sacct -j {array}' once they end)"
    else:
        how = "they run as processes of this machine"
    return (f"submitted {len(sjobs)} job(s): {how}; logs in {prepare_logs(req.logs)}; films go to {films}; "
            "'llstudio submit ... --wait' waits and prints the table of outcomes")


def died(job, exc: Exception) -> str:
    """A job that ended without a result (it raised outside run_job, was killed, ran out of memory or of
    requeues) as one table cell: the reason and the log to read."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    if isinstance(exc, submitit_module().core.utils.FailedJobError):
        # The traceback sits between two dashed lines; its last line is the error.
        dashes = [i for i, ln in enumerate(lines) if ln and set(ln) == {"-"}] + [len(lines)] * 2
        body = [ln for ln in lines[dashes[0] + 1:dashes[1]] if ln]
        reason = body[-1] if body else "failed"
    else:  # UncompletedJobError: "Job ID (task: 0) with path ..." then "has not produced any output (state: S)"
        reason = f"no result: {lines[1]}" if len(lines) > 1 else lines[0]
    return f"{reason} (log {job.paths.stdout})"


def collect(sjobs: list, jobs: list[Job], names: Optional[list[str]] = None, poll_s: float = 10,
            on_done: Optional[Callable[[JobResult], None]] = None) -> list[JobResult]:
    """Wait for every job; one JobResult each, in submission order, named by ``names`` (the scene paths as the
    user gave them). A job that died becomes a failed row with its reason and log; ``on_done`` sees each result
    as it arrives."""
    submitit = submitit_module()
    names = names or [j.scene for j in jobs]
    index = {id(sj): i for i, sj in enumerate(sjobs)}
    results: list[Optional[JobResult]] = [None] * len(sjobs)
    for sj in submitit.helpers.as_completed(sjobs, poll_frequency=poll_s):
        i = index[id(sj)]
        try:
            result = sj.result()
        except (submitit.core.utils.FailedJobError, submitit.core.utils.UncompletedJobError) as exc:
            result = JobResult(names[i], FAILED, 0.0, died(sj, exc), 1)  # its run time is unknown
        results[i] = replace(result, scene=names[i])
        if on_done:
            on_done(results[i])
    return results
