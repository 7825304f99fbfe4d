"""Errors llstudio raises on purpose. The CLI turns each into one message and an exit status."""

from __future__ import annotations


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


class MissingDependency(LLStudioError):
    """A missing dependency: an encoder, an OpenGL backend, a dataset or an optional package."""

    exit_code = 3
