"""The machine's share of each of N concurrent jobs: a GPU of its own (torch device and EGL device), or a fair
split of the CPU cores, given to the job's process as environment variables before it imports torch or VTK."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ..renderer.egl import cuda_egl_mapping

# Thread counts of every library a render runs: torch (OpenMP/MKL intra-op), llvmpipe (Mesa's software OpenGL),
# and the video encoder (read by output.encode).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LP_NUM_THREADS", "LLSTUDIO_THREADS")


@dataclass(frozen=True)
class Slot:
    """One concurrent job's share: ``cuda`` the GPU's CUDA index (None on CPUs), ``egl`` the EGL device index
    that renders on the same GPU, ``threads`` the CPU threads it may use."""

    index: int
    threads: int
    cuda: Optional[int] = None
    egl: Optional[int] = None
    # What the job's CUDA_VISIBLE_DEVICES names its GPU by: this process's own entry for CUDA index ``cuda`` when
    # CUDA_VISIBLE_DEVICES is set here (a Slurm allocation, a UUID, a MIG instance), else ``cuda`` itself.
    visible: Optional[str] = None

    def env(self) -> dict[str, str]:
        """The variables a job's process starts with."""
        env = {name: str(self.threads) for name in THREAD_VARIABLES}
        if self.cuda is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.visible if self.visible is not None else str(self.cuda)
            if self.egl is not None:
                env["VTK_DEFAULT_EGL_DEVICE_INDEX"] = str(self.egl)
        return env

    def describe(self) -> str:
        where = f"GPU {self.cuda} (EGL device {self.egl})" if self.cuda is not None else "CPU"
        return f"{where}, {self.threads} thread(s)"


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask, e.g. under Slurm or taskset), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan_slots(jobs: int, cores: int, cuda: list[int], egl: dict[int, int],
               visible: Optional[list[str]] = None) -> list[Slot]:
    """``jobs`` slots: with GPUs (their CUDA indices ``cuda``, ``egl`` CUDA index → EGL index) one GPU each, round
    robin when there are more jobs than GPUs; the cores split evenly between jobs either way (at least one each).
    ``visible``: this process's CUDA_VISIBLE_DEVICES entries, when set, which a job's process must name its GPU by."""
    threads = max(1, cores // max(1, jobs))
    if not cuda:
        return [Slot(i, threads) for i in range(jobs)]
    gpus = [cuda[i % len(cuda)] for i in range(jobs)]
    return [Slot(i, threads, g, egl.get(g), visible[g] if visible and g < len(visible) else None)
            for i, g in enumerate(gpus)]


def visible_devices(environ=None) -> Optional[list[str]]:
    """This process's CUDA_VISIBLE_DEVICES entries (CUDA index i is entry i), or None when it is not set."""
    value = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def cuda_indices(device: Optional[str]) -> list[int]:
    """The CUDA devices a batch may give its jobs: none when ``device`` (--device) is 'cpu' or torch sees no GPU."""
    if device == "cpu":
        return []
    import torch  # only here: planning a CPU batch needs no torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def machine_slots(jobs: int, device: Optional[str] = None) -> tuple[list[Slot], str]:
    """This machine's slots for ``jobs`` concurrent jobs, and a line that says how they share it (the GPU → EGL
    mapping included, see ``renderer.egl``)."""
    cuda = cuda_indices(device)
    mapping = cuda_egl_mapping(cuda)
    slots = plan_slots(jobs, cpu_count(), cuda, mapping.egl, visible_devices())
    share = f"{jobs} job(s) at once, {slots[0].threads} CPU thread(s) each" if slots else "no jobs"
    return slots, share + (f"; GPUs: {mapping.note}" if cuda else "")
