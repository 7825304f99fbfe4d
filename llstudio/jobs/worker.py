"""One job of a ``--jobs`` batch, in a process of its own: ``python -m llstudio.jobs.worker JOB RESULT``.

``JOB`` is the Job as JSON. The process's share of the machine comes in its environment (``jobs.slots.Slot.env``);
it reports progress as JSON lines on stderr (``Progress('json')``) and writes its JobResult as JSON to ``RESULT``.
Its exit status is the job's (0, or the command line's code for the error); a crash leaves no result file.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path
from typing import Optional

from .. import allocator
from ..errors import Terminated, raise_on_sigterm
from ..files import atomic_write
from ..progress import Progress
from .job import Job, JobResult, run_job

PARENT_VARIABLE = "LLSTUDIO_PARENT_PID"
PR_SET_PDEATHSIG = 1


def limit_threads() -> None:
    """Give torch this job's share of the threads ($LLSTUDIO_THREADS), before any parallel work starts."""
    value = os.environ.get("LLSTUDIO_THREADS", "")
    if not value.isdigit() or int(value) < 1:
        return
    import torch

    torch.set_num_threads(int(value))
    try:
        torch.set_num_interop_threads(int(value))
    except RuntimeError:  # already fixed by earlier parallel work
        pass


def die_with_parent() -> None:
    """Ask Linux to interrupt this worker (SIGINT: clean-up runs) when the batch's process dies, killed or not."""
    parent = os.environ.get(PARENT_VARIABLE, "")
    if not sys.platform.startswith("linux") or not parent.isdigit():
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(parent):  # the parent died before prctl: nobody waits for this job
        os.kill(os.getpid(), signal.SIGINT)


def write_result(path: Path, result: JobResult) -> None:
    text = json.dumps(dataclasses.asdict(result))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_result(path: Path) -> Optional[JobResult]:
    """The JobResult a worker wrote, or None when it wrote none (it crashed or was killed)."""
    try:
        return JobResult(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def main(argv: Optional[list[str]] = None) -> int:
    job_json, result_path = argv if argv is not None else sys.argv[1:]
    job = Job(**json.loads(job_json))
    raise_on_sigterm()
    try:
        die_with_parent()
        limit_threads()
        allocator.tune()
        progress = Progress("json", sys.stderr)
        result = run_job(job, progress)
    except KeyboardInterrupt as exc:
        print("terminated" if isinstance(exc, Terminated) else "interrupted", file=sys.stderr)
        return Terminated.exit_code if isinstance(exc, Terminated) else 130
    if not result.ok:  # the whole error, for the job's log (the table gets its first line)
        print(result.extra.get("traceback") or f"llstudio: error: {result.extra.get('message', result.detail)}",
              file=sys.stderr, flush=True)
    write_result(Path(result_path), dataclasses.replace(result, extra={}))
    return 0 if result.ok else result.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
