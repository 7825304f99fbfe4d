"""One progress bar per stage, with rate and ETA; plain one-line summaries when output is not a terminal; JSON lines
for a parent process (a ``--jobs`` worker reports to the batch that runs it)."""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator


# In 'json' mode, at most one "advance" event per stage every EVENT_EVERY_S seconds (and always its last one).
EVENT_EVERY_S = 0.25


class Progress:
    """``mode``: 'auto' (bars on a terminal, one summary line per stage otherwise), 'bar', 'none', or 'json': one
    JSON object per line, ``{"event": "log", "text": ...}`` and ``{"event": "stage", "stage": ..., "done": ...,
    "total": ..., "unit": ...}`` (with ``"seconds"`` once the stage has ended), for a parent process to read."""

    def __init__(self, mode: str = "auto", stream=None):
        self.stream = stream or sys.stderr
        self.mode = mode
        self.bars = mode == "bar" or (mode == "auto" and self.stream.isatty())

    def log(self, text: str) -> None:
        if self.mode == "json":
            self.event(event="log", text=text)
        elif self.mode != "none":
            print(text, file=self.stream, flush=True)

    def event(self, **fields) -> None:
        """One JSON line (json mode only)."""
        if self.mode == "json":
            print(json.dumps(fields), file=self.stream, flush=True)

    @contextmanager
    def stage(self, description: str, total: int, unit: str = "it") -> Iterator[Callable[[int], None]]:
        """Yields ``advance(n=1)``; prints a summary with the elapsed time and rate when the stage ends."""
        start = time.perf_counter()
        done = [0]
        if self.bars:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            columns = [TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
                       TimeRemainingColumn()]
            with RichProgress(*columns, transient=True, console=None) as bar:
                task = bar.add_task(description, total=total, rate="")

                def advance(n: int = 1) -> None:
                    done[0] += n
                    el = time.perf_counter() - start
                    bar.update(task, advance=n, rate=f"{done[0] / el:,.1f} {unit}/s" if el > 0 else "")

                yield advance
        elif self.mode == "json":
            last = [0.0]
            self.event(event="stage", stage=description, done=0, total=total, unit=unit)

            def advance(n: int = 1) -> None:
                done[0] += n
                now = time.perf_counter()
                if now - last[0] >= EVENT_EVERY_S or done[0] >= total:
                    last[0] = now
                    self.event(event="stage", stage=description, done=done[0], total=total, unit=unit)

            yield advance
        else:
            def advance(n: int = 1) -> None:
                done[0] += n

            yield advance
        el = time.perf_counter() - start
        rate = f", {done[0] / el:,.1f} {unit}/s" if el > 0 and done[0] else ""
        self.event(event="stage", stage=description, done=done[0], total=total, unit=unit, seconds=round(el, 3))
        self.log(f"{description}: {done[0]:,}/{total:,} {unit} in {el:.1f} s{rate}")
