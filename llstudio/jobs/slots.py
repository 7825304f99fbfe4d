"""The machine's share of each of N concurrent jobs: a GPU of its own (torch device and EGL device), or a fair
split of the CPU cores, given to the job's process as environment variables before it imports torch or VTK."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

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

    def env(self) -> dict[str, str]:
        """The variables a job's process starts with."""
        env = {name: str(self.threads) for name in THREAD_VARIABLES}
        if self.cuda is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(self.cuda)
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


def plan_slots(jobs: int, cores: int, cuda: list[int], egl: dict[int, int]) -> list[Slot]:
    """``jobs`` slots: with GPUs (their CUDA indices ``cuda``, ``egl`` CUDA index → EGL index) one GPU each, round
    robin when there are more jobs than GPUs; the cores split evenly between jobs either way (at least one each)."""
    threads = max(1, cores // max(1, jobs))
    if not cuda:
        return [Slot(i, threads) for i in range(jobs)]
    return [Slot(i, threads, cuda[i % len(cuda)], egl.get(cuda[i % len(cuda)])) for i in range(jobs)]
