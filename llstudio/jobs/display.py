"""What a ``--jobs`` batch shows while it runs: one line per running job (a live block on a terminal), or a line
when each job starts and ends (in a log, under pytest), or nothing (``--progress none``). All on stderr: stdout
gets the batch's table."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .job import JobResult
    from .pool import Running


def job_line(r: "Running") -> str:
    """``[slot] scene  stage  done/total unit  seconds``."""
    far = f"{r.done:,}/{r.total:,} {r.unit}" if r.total else ""
    return f"[{r.slot.index}] {r.job.scene}  {r.stage}  {far}  {r.seconds:.0f} s"


def end_line(r: "Running", result: "JobResult") -> str:
    return f"[{r.slot.index}] {result.status} {r.job.scene} in {result.seconds:.1f} s: {result.detail}"


class Quiet:
    def note(self, text: str) -> None: ...
    def started(self, r: "Running") -> None: ...
    def finished(self, r: "Running", result: "JobResult") -> None: ...
    def refresh(self, running: list) -> None: ...
    def close(self) -> None: ...


class Lines(Quiet):
    """A line when a job starts (where, and its log) and one when it ends."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def started(self, r: "Running") -> None:
        self.note(f"[{r.slot.index}] start {r.job.scene} (pid {r.proc.pid}) on {r.slot.describe()}; log {r.log}")

    def finished(self, r: "Running", result: "JobResult") -> None:
        self.note(end_line(r, result))


class Live(Lines):
    """rich's live display: one line per running job, redrawn in place; start and end lines scroll above it."""

    def __init__(self, stream=None):
        from rich.console import Console
        from rich.live import Live as RichLive

        super().__init__(stream)
        self.console = Console(file=self.stream)
        self.live = RichLive(console=self.console, auto_refresh=False, transient=True)
        self.live.start()
        self.drawn = 0.0

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def refresh(self, running: list) -> None:
        from rich.text import Text

        if time.monotonic() - self.drawn < 0.25:  # four redraws a second are enough to read
            return
        self.drawn = time.monotonic()
        self.live.update(Text("\n".join(job_line(r) for r in running)), refresh=True)

    def close(self) -> None:
        self.live.stop()


def make_display(mode: str, stream=None):
    """``mode`` as for --progress: 'none' shows nothing; 'bar', or 'auto' on a terminal, a live block; else lines."""
    stream = stream or sys.stderr
    if mode == "none":
        return Quiet()
    if mode == "bar" or (mode == "auto" and stream.isatty()):
        return Live(stream)
    return Lines(stream)
