"""Quality presets and output formats: one table each drives the ``-q`` and ``--format`` choices, their help text,
the defaults, and (formats) the rules a film's format must meet, checked by the scene and before rendering."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Optional, Union


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


class OutputFormat(NamedTuple):
    suffix: str  # "" for a directory of frames
    encoder: str  # the ffmpeg encoder it needs
    alpha: bool  # can carry a transparent background
    label: str


# One table drives output.format, --format, the default file suffix and the encoder checked before rendering.
FORMATS: dict[str, OutputFormat] = {
    "mp4": OutputFormat(".mp4", "libx264", False, "H.264 in MP4, yuv420p, BT.709: plays everywhere"),
    "webm": OutputFormat(".webm", "libvpx-vp9", False, "VP9 in WebM, yuv420p: for web pages"),
    "gif": OutputFormat(".gif", "gif", False, "animated GIF with one palette for the film, at most 640 px wide and "
                        "25 fps"),
    "png": OutputFormat("", "png", True, "a directory NAME/ of frame_00000.png ... (RGBA when transparent)"),
    "prores": OutputFormat(".mov", "prores_ks", True, "ProRes 4444 in a QuickTime .mov, with alpha when "
                           "transparent: for video editors"),
}

ALPHA_FORMATS = tuple(k for k, f in FORMATS.items() if f.alpha)


def format_help() -> str:
    """One line per output format, for ``--help`` and the scene reference."""
    return "; ".join(f"{k} = {f.label}" for k, f in FORMATS.items())


def writes(fmt: str) -> str:
    """What format ``fmt`` writes, for messages: "a '.mp4' file", or a directory for a PNG sequence."""
    want = FORMATS[fmt].suffix
    return f"a '{want}' file" if want else "a directory of PNG frames (a path without suffix)"


def format_problem(fmt: str, alpha: bool = False, path: Union[str, Path, None] = None) -> Optional[str]:
    """Why a film cannot be written in format ``fmt`` (with an alpha channel when ``alpha``; to ``path`` when
    given), or None when it can: the format must be known, its suffix must be the path's ('' for a directory of
    frames), and an alpha channel needs a format that carries one. The first rule broken, in words."""
    if fmt not in FORMATS:
        return f"unknown output format '{fmt}': choose one of {', '.join(FORMATS)}"
    if path is not None and Path(path).suffix != FORMATS[fmt].suffix:
        return f"output {str(path)!r} does not fit format '{fmt}', which writes {writes(fmt)}"
    if alpha and not FORMATS[fmt].alpha:
        return (f"a transparent background needs an output format with alpha ({' or '.join(ALPHA_FORMATS)}), "
                f"not '{fmt}'")
    return None
