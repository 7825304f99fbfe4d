"""Quality presets: one table drives the ``-q`` choices, their help text and the defaults."""

from __future__ import annotations

from typing import NamedTuple


class Quality(NamedTuple):
    width: int
    height: int
    fps: int
    label: str


QUALITIES: dict[str, Quality] = {
    "l": Quality(854, 480, 15, "low"),
    "m": Quality(1280, 720, 30, "medium"),
    "h": Quality(1920, 1080, 60, "high"),
    "p": Quality(2560, 1440, 60, "production"),
    "k": Quality(3840, 2160, 60, "4k"),
}


def quality_help() -> str:
    """One line per preset, for ``--help`` and the scene reference."""
    return ", ".join(f"{k} = {q.width}x{q.height}@{q.fps} ({q.label})" for k, q in QUALITIES.items())
