"""One render job and its outcome, the same whatever runs it: a local process pool (``--jobs``), a Slurm array
(``llstudio submit``) or the command line's own process."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Optional

from ..device import resolve_device
from ..errors import LLStudioError
from ..progress import Progress

OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class Job:
    """A render of one scene, with the command line's options; plain values only, so that a job pickles (Slurm)
    and turns into a command line (a local worker process)."""

    scene: str
    quality: Optional[str] = None
    format: Optional[str] = None
    frames: Optional[str] = None
    device: Optional[str] = None
    output: Optional[str] = None
    no_cache: bool = False
    force: bool = False  # render even when the estimated peak memory exceeds the machine's

    def argv(self) -> list[str]:
        """The ``llstudio render`` arguments that do this job."""
        args = ["render", self.scene]
        for flag, value in (("-q", self.quality), ("--format", self.format), ("--frames", self.frames),
                            ("--device", self.device), ("-o", self.output)):
            if value is not None:
                args += [flag, value]
        return args + (["--no-cache"] if self.no_cache else []) + (["--force"] if self.force else [])


@dataclass(frozen=True)
class JobResult:
    """How a job ended: ``status`` ok or failed, its wall time, and the film's path or the one-line error."""

    scene: str
    status: str
    seconds: float
    detail: str
    exit_code: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK


def one_line(exc: BaseException) -> str:
    """An error as one table cell: the first line of its message (a scene error's head and first problem)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if isinstance(exc, LLStudioError):
        return "; ".join(lines[:2]) if lines else type(exc).__name__
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def run_job(job: Job, progress: Optional[Progress] = None) -> JobResult:
    """Load, check, capture and render one scene in this process. An error becomes a failed result (with the exit
    code the command line would give), never an exception: one bad scene must not stop a batch."""
    from ..config.scene import load_scene
    from ..pipeline import capture_scene, check_render, render_film
    from ..pipeline.checks import check_memory

    progress = progress or Progress("none")
    start = time.perf_counter()
    try:
        scene = load_scene(job.scene)
        check_render(scene, job.output, job.format, job.frames, job.quality)
        device = resolve_device(job.device or scene.capture.device)
        check_memory(scene, device, job.quality, job.force)
        cap = capture_scene(scene, device=device, use_cache=not job.no_cache, progress=progress)
        out = render_film(cap, output=job.output, quality=job.quality, frames=job.frames, progress=progress,
                          format=job.format)
    except LLStudioError as exc:
        return JobResult(job.scene, FAILED, time.perf_counter() - start, one_line(exc), exc.exit_code,
                         {"message": str(exc)})  # every problem of a scene, for the job's log
    except Exception as exc:  # noqa: BLE001 - a crash in one scene is that scene's row, not the batch's end
        # The traceback travels with the result, for the job's log: a bug's row alone would not say where it is.
        return JobResult(job.scene, FAILED, time.perf_counter() - start, one_line(exc), 1,
                         {"traceback": traceback.format_exc()})
    return JobResult(job.scene, OK, time.perf_counter() - start, str(out))


def format_table(results: list[JobResult]) -> str:
    """One row per job: scene, status, seconds, the film or the error; then a summary line."""
    rows = [("scene", "status", "seconds", "output / error")]
    rows += [(r.scene, r.status, f"{r.seconds:.1f}", r.detail) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 14)
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} scene(s) rendered"
                 + (f", {failed} failed" if failed else ""))
    return "\n".join(lines)


def batch_exit_code(results: list[JobResult]) -> int:
    """0 when every job succeeded, else 1."""
    return 0 if all(r.ok for r in results) else 1
