"""Health checks: can this machine capture, render off-screen and encode? Each check is a small function.

Each check imports what it checks (torch, the encoder, VTK) inside itself: one that cannot be imported fails its own
check with the reason instead of stopping the others.
"""

from __future__ import annotations

import os
import platform
from typing import Callable


def check_python() -> tuple[bool, str]:
    from . import __version__

    return True, f"llstudio {__version__}, Python {platform.python_version()} on {platform.platform()}"


def check_torch() -> tuple[bool, str]:
    import torch

    from .device import resolve_device

    cuda = torch.cuda.is_available()
    extra = f", GPU: {torch.cuda.get_device_name(0)}" if cuda else ""
    return True, (f"torch {torch.__version__}, CUDA available: {cuda}{extra}; device 'auto' → "
                  f"{resolve_device('auto')}; {torch.get_num_threads()} CPU threads")


def check_ffmpeg() -> tuple[bool, str]:
    from .output.encode import available_encoders, ffmpeg_exe
    from .config.presets import FORMATS

    enc = available_encoders()
    wanted = [f.encoder for f in FORMATS.values()]
    have = [e for e in wanted if e in enc]
    missing = [e for e in wanted if e not in enc]
    ok = "libx264" in enc
    text = f"ffmpeg {ffmpeg_exe()}; encoders: {', '.join(have) or 'none'}"
    if missing:
        text += f" (missing: {', '.join(missing)})"
    return ok, text


def check_render() -> tuple[bool, str]:
    from .renderer.backend import render_window_info

    forced = os.environ.get("VTK_DEFAULT_OPENGL_WINDOW")
    info = render_window_info()
    text = f"VTK off-screen window: {info.pop('window')}"
    if forced:
        text += f" (forced by VTK_DEFAULT_OPENGL_WINDOW={forced})"
    elif os.environ.get("VTK_DEFAULT_OPENGL_WINDOW"):
        text += " (no display: chosen by llstudio)"
    text += "".join(f"; {v}" for k, v in info.items() if "renderer" in k or "version" in k)
    return True, text


def check_gpus() -> tuple[bool, str]:
    """Which EGL device (VTK's off-screen renderer) draws on which CUDA GPU: what --jobs gives each job."""
    import torch

    from .renderer.egl import cuda_egl_mapping, egl_cuda_devices

    listed = egl_cuda_devices()
    egl = ("EGL devices cannot be listed" if listed is None else
           f"{len(listed)} EGL device(s), {sum(c is not None for c in listed)} of them NVIDIA (CUDA)")
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    if not cuda:
        return True, f"no CUDA GPU; {egl}: --jobs splits the CPU cores"
    return True, f"{len(cuda)} CUDA GPU(s), {egl}; --jobs gives each job one GPU: {cuda_egl_mapping(cuda).note}"


CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "python": check_python,
    "torch": check_torch,
    "ffmpeg": check_ffmpeg,
    "render": check_render,
    "gpus": check_gpus,
}


def run_checks() -> list[tuple[str, bool, str]]:
    """(name, ok, message) for every check; a check that raises is reported as failed with its error."""
    out = []
    for name, fn in CHECKS.items():
        try:
            ok, msg = fn()
        except Exception as exc:  # a doctor reports, it does not crash
            ok, msg = False, f"{type(exc).__name__}: {exc}"
        out.append((name, ok, msg))
    return out
