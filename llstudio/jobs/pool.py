"""``llstudio render a.toml b.toml ... --jobs N``: N scenes at once, each in a worker process of its own
(``jobs.worker``) with its share of the machine (``jobs.slots``).

Each worker's output (its JSON progress lines turned back into text, warnings, a traceback) goes to its log file;
the batch shows one line per running job, and returns one JobResult per scene, in the order given. A failing
scene, or a worker that crashes, is that scene's failed row; the others go on. Ctrl-C interrupts every worker
(SIGINT: each removes its half-written files and releases its store locks) and ends the batch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..config.scene import load_scene
from ..errors import LLStudioError
from ..pipeline import check_output, default_output
from .display import make_display
from .job import FAILED, Job, JobResult, one_line
from .slots import Slot, machine_slots
from .worker import PARENT_VARIABLE, read_result

# Where the workers' logs go: beside the default films, one file per scene, overwritten by the next batch.
LOG_DIR = Path("renders") / ".logs"
POLL_S = 0.1
STOP_GRACE_S = 15.0  # how long interrupted workers get to clean up before they are killed


@dataclass
class Running:
    """A job's worker process and what it last reported: the stage it is in and how far."""

    index: int
    job: Job
    slot: Slot
    log: Path
    result: Path
    proc: subprocess.Popen
    start: float = field(default_factory=time.perf_counter)
    stage: str = "starting"
    done: int = 0
    total: int = 0
    unit: str = ""
    tail: list = field(default_factory=list)  # the last lines that were not progress (a crash's message)
    reader: Optional[threading.Thread] = None

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def validate(jobs: list[Job]) -> dict[int, JobResult]:
    """Load and check every job's scene before any work: the failed rows of those that cannot render (a scene
    error, an encoder the format needs and ffmpeg lacks), by position in ``jobs``."""
    failed, films = {}, {}
    for i, job in enumerate(jobs):
        try:
            scene = load_scene(job.scene)
            film = Path(job.output) if job.output else default_output(scene, check_output(scene, None, job.format))
        except LLStudioError as exc:
            failed[i] = JobResult(job.scene, FAILED, 0.0, one_line(exc), exc.exit_code)
            continue
        if film.resolve() in films:  # two jobs would race to write one file
            failed[i] = JobResult(job.scene, FAILED, 0.0, f"its film {film} is also the film of "
                                  f"{films[film.resolve()]}: give one of them another output.path or name", 2)
        films.setdefault(film.resolve(), job.scene)
    return failed


def log_paths(jobs: list[Job], directory: Path) -> list[Path]:
    """One log file per job, named after its scene (``-2``, ``-3`` … where two scenes share a name)."""
    seen: dict[str, int] = {}
    paths = []
    for job in jobs:
        stem = Path(job.scene).stem or "scene"
        seen[stem] = seen.get(stem, 0) + 1
        name = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
        paths.append(directory / f"{name}.log")
    return paths


def render_batch(jobs: list[Job], n: int, progress: str = "auto", device: Optional[str] = None,
                 log_dir: Path = LOG_DIR) -> list[JobResult]:
    """Validate every job, then run those that can render, at most ``n`` at once; one JobResult per job."""
    results: dict[int, JobResult] = validate(jobs)
    todo = [i for i in range(len(jobs)) if i not in results]
    if todo:
        slots, share = machine_slots(min(n, len(todo)), device)
        display = make_display(progress)
        display.note(f"{len(todo)} scene(s), {share}; logs in {log_dir}/")
        logs = log_paths(jobs, log_dir)
        results.update(run_pool([(i, jobs[i], logs[i]) for i in todo], slots, display))
    return [results[i] for i in range(len(jobs))]


def run_pool(work: list[tuple[int, Job, Path]], slots: list[Slot], display) -> dict[int, JobResult]:
    """Run every (index, job, log) in a worker process, one per free slot; index → JobResult."""
    pending, free = deque(work), deque(slots)
    running: list[Running] = []
    results: dict[int, JobResult] = {}
    try:
        while pending or running:
            while pending and free:
                running.append(start(*pending.popleft(), free.popleft()))
                display.started(running[-1])
            for r in [r for r in running if r.proc.poll() is not None]:
                running.remove(r)
                free.append(r.slot)
                results[r.index] = finish(r)
                display.finished(r, results[r.index])
            display.refresh(running)
            time.sleep(POLL_S)
    except BaseException:
        stop(running)
        raise
    finally:
        display.close()
    return results


def start(index: int, job: Job, log: Path, slot: Slot) -> Running:
    """Start a job's worker with its slot's environment; a thread copies its output into its log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    result = log.with_suffix(".result.json")
    result.unlink(missing_ok=True)
    env = {**os.environ, **slot.env(), PARENT_VARIABLE: str(os.getpid())}
    # A process group of its own: a Ctrl-C in the terminal reaches the batch alone, which interrupts each worker
    # once (a second SIGINT in the middle of a worker's clean-up would cut it short).
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    proc = subprocess.Popen([sys.executable, "-m", "llstudio.jobs.worker", json.dumps(asdict(job)), str(result)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True, bufsize=1, errors="replace", **group)
    r = Running(index, job, slot, log, result, proc)
    r.reader = threading.Thread(target=copy_output, args=(r,), name=f"llstudio-job-{index}", daemon=True)
    r.reader.start()
    return r


def copy_output(r: Running) -> None:
    """Reader thread: the worker's output line by line into its log; progress events update ``r`` instead.

    The log is written as it grows (not through atomic_write): it is there to be read while the job runs, and
    after a crash it is the part that was written that matters."""
    with open(r.log, "w", encoding="utf-8") as log:
        log.write(f"# {r.job.scene}: {' '.join(r.job.argv())}  ({r.slot.describe()})\n")
        for line in r.proc.stdout:
            text = take_event(r, line)
            if text is not None:
                log.write(text if text.endswith("\n") else text + "\n")
                log.flush()


def take_event(r: Running, line: str) -> Optional[str]:
    """Apply one line of a worker's output to ``r``; the text it puts in the log (None: a progress tick)."""
    try:
        event = json.loads(line) if line.startswith("{") else None
    except ValueError:
        event = None
    if not isinstance(event, dict) or "event" not in event:
        r.tail = (r.tail + [line.rstrip()])[-5:] if line.strip() else r.tail
        return line
    if event["event"] == "stage":
        r.stage, r.done, r.total, r.unit = event["stage"], event["done"], event["total"], event.get("unit", "")
        return None
    text = str(event.get("text", ""))
    r.stage, r.total = text.splitlines()[0][:70] if text else r.stage, 0  # the job's line shows its latest news
    return text


def finish(r: Running) -> JobResult:
    """The job's result: what its worker wrote, or a failed row that says how the worker ended."""
    r.reader.join()
    result = read_result(r.result)
    r.result.unlink(missing_ok=True)
    code = r.proc.returncode
    if result is not None:
        return JobResult(result.scene, result.status, r.seconds, result.detail, result.exit_code)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why, code = f"the worker was killed by {name}", 128 - code
    else:
        why = f"the worker exited with status {code} and no result"
    last = next((ln for ln in reversed(r.tail) if ln.strip()), "")
    return JobResult(r.job.scene, FAILED, r.seconds, why + (f": {last}" if last else "") + f" (log {r.log})",
                     code or 1)


def stop(running: list[Running]) -> None:
    """Interrupt every worker (each cleans up on SIGINT), and kill those still running after STOP_GRACE_S."""
    for r in running:
        if r.proc.poll() is None:
            r.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_GRACE_S
    for r in running:
        try:
            r.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()
        if r.reader is not None:
            r.reader.join(timeout=5)
