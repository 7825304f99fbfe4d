"""Errors llstudio raises on purpose. The CLI turns each into one message and an exit status."""

from __future__ import annotations

import os
import signal
import sys
import threading


class LLStudioError(Exception):
    """Base class: an error whose message is meant for the user, not a traceback."""

    exit_code = 1


class SceneError(LLStudioError):
    """A scene file that cannot be used. Carries every problem found, each with its key path."""

    exit_code = 2

    def __init__(self, path: str, problems: list[tuple[str, str]]):
        self.path = str(path)
        self.problems = list(problems)
        lines = [f"{self.path}: {loc}: {msg}" if loc else f"{self.path}: {msg}" for loc, msg in self.problems]
        n = len(self.problems)
        head = f"{self.path}: {n} problem{'s' if n != 1 else ''} in the scene file"
        super().__init__(head + "\n" + "\n".join("  " + line for line in lines))


class UsageError(LLStudioError):
    """A command-line request that cannot be honoured (bad --frames range, unknown quality, ...)."""

    exit_code = 2


class CacheError(LLStudioError):
    """The capture store is unreadable or inconsistent."""


class RenderError(LLStudioError):
    """Rendering or encoding failed."""


class DiskFull(LLStudioError):
    """A write ran out of space: which file, and how much is free."""


class MissingDependency(LLStudioError):
    """A missing dependency: an encoder, an OpenGL backend, a dataset or an optional package."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """SIGTERM (a ``kill``, a batch system's preemption), raised like Ctrl-C's KeyboardInterrupt, whose subclass it
    is: every clean-up that handles an interruption handles this one too. The command exits 143 (128 + 15)."""

    exit_code = 128 + signal.SIGTERM


def _raise_terminated(signum, frame):
    raise Terminated()


def raise_on_sigterm():
    """From now on SIGTERM raises :class:`Terminated` in the main thread (entry points call this: the command line,
    a --jobs worker, a --split segment); returns the handler it replaced (None elsewhere than the main thread, where
    nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def restore_sigterm(handler) -> None:
    """Put back the handler ``raise_on_sigterm`` returned (for a caller of the command line's main in its process)."""
    if handler is not None:
        signal.signal(signal.SIGTERM, handler)


def _exit_after_the_work(signum, frame):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):  # closed, or the signal came inside a write to it
            pass
    os.write(2, f"llstudio: {signal.Signals(signum).name} after the command had finished; everything it made "
                "was already written\n".encode())
    os._exit(128 + signum)


def exit_on_late_signals() -> None:
    """From now on Ctrl-C and SIGTERM end the process at once with 130 or 143: for the program, once its command
    has returned and only the interpreter's teardown is left (threads joined, atexit handlers), where a
    KeyboardInterrupt would be printed as an ignored exception's traceback and the process would exit 0."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit_after_the_work)
