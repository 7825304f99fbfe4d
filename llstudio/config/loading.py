"""Reading a scene file: its bytes → TOML → a plain dict, each failure a :class:`SceneError` naming the file."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import SceneError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_scene_data(path: Path) -> dict:
    """The parsed TOML of the scene file at ``path``. Raises :class:`SceneError` when it is missing, unreadable
    or not valid TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SceneError(str(path), [("", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(str(path), [("", f"cannot read the file: {exc}")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(str(path), [("", f"not valid TOML: {exc}")]) from None
