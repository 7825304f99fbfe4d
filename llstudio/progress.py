"""One progress bar per stage, with rate and ETA; plain one-line summaries when output is not a terminal."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class Progress:
    """``mode``: 'auto' (bars on a terminal, one summary line per stage otherwise), 'bar', 'none'."""

    def __init__(self, mode: str = "auto", stream=None):
        self.stream = stream or sys.stderr
        self.mode = mode
        self.bars = mode == "bar" or (mode == "auto" and self.stream.isatty())

    def log(self, text: str) -> None:
        if self.mode != "none":
            print(text, file=self.stream, flush=True)

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
        else:
            def advance(n: int = 1) -> None:
                done[0] += n

            yield advance
        el = time.perf_counter() - start
        rate = f", {done[0] / el:,.1f} {unit}/s" if el > 0 and done[0] else ""
        self.log(f"{description}: {done[0]:,}/{total:,} {unit} in {el:.1f} s{rate}")
