"""The processes of one capture: a :class:`Group` of ranks (torch.distributed), or :data:`SINGLE`, the one-process
case, so that the pipeline has one code path.

A launcher (``torchrun``, ``srun``, ...) starts one process per rank and describes the group in the environment:
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``.
:func:`from_environment` reads it and joins the group. The collectives carry pickled Python objects (numpy arrays,
CPU tensors): grids and trajectories, never a tensor on a device.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Optional

from .errors import LLStudioError, UsageError

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

# How long a rank waits in a collective for the others. Long, because the other ranks wait in one while rank 0
# trains. Under torchrun a rank that fails takes the others down at once (its agent stops every worker), so this
# bounds a hang only under launchers that do not; LLSTUDIO_DIST_TIMEOUT_MIN overrides it.
DEFAULT_TIMEOUT_MIN = 360


class DistributedError(LLStudioError):
    """The process group cannot be joined, or another rank failed."""


@dataclass(frozen=True)
class Group:
    """``world`` processes, this one ``rank`` (``local_rank`` of ``local_world`` on its node). The base class is
    the one-process group: every collective returns at once."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that trains, writes the store and renders."""
        return self.rank == 0

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj``, on every rank (the others pass anything, e.g. None)."""
        return obj

    def gather(self, obj: Any) -> Optional[list]:
        """Every rank's ``obj``, in rank order, on rank 0; None on the others."""
        return [obj]

    def all_gather(self, obj: Any) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        return [obj]

    def barrier(self) -> None:
        """Wait until every rank gets here."""

    def destroy(self) -> None:
        """Leave the group (idempotent)."""

    def device(self, kind: str) -> str:
        """This rank's device of type ``kind``: ``cuda:LOCAL_RANK`` for 'cuda', else 'cpu'."""
        return f"cuda:{self.local_rank}" if kind == "cuda" else "cpu"


SINGLE = Group()


class TorchGroup(Group):
    """A group of several processes, joined through torch.distributed's default process group."""

    def broadcast(self, obj: Any) -> Any:
        import torch.distributed as dist

        box = [obj if self.is_root else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> Optional[list]:
        import torch.distributed as dist

        out = [None] * self.world if self.is_root else None
        dist.gather_object(obj, out, dst=0)
        return out

    def all_gather(self, obj: Any) -> list:
        import torch.distributed as dist

        out: list = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def destroy(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launched() -> bool:
    """Whether a launcher started this process as one rank of several (``WORLD_SIZE`` > 1)."""
    return _int_env("WORLD_SIZE", 1) > 1


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name}={value!r} in the environment: expected a whole number (set by torchrun)") from None


def describe_environment() -> Group:
    """The group the environment describes, not joined yet; a missing variable is a UsageError naming it."""
    missing = [v for v in ENVIRONMENT if not os.environ.get(v)]
    if missing:
        raise UsageError(f"--distributed: the environment lacks {', '.join(missing)}; start llstudio through "
                         "torchrun (torchrun --nproc-per-node N -m llstudio render SCENE) or a launcher that sets "
                         "RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT")
    rank, world, local = _int_env("RANK", 0), _int_env("WORLD_SIZE", 1), _int_env("LOCAL_RANK", 0)
    local_world = _int_env("LOCAL_WORLD_SIZE", world)
    if not (0 <= rank < world and 0 <= local < local_world):
        raise UsageError(f"RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}, LOCAL_WORLD_SIZE={local_world}: "
                         "a rank must lie below its world size")
    return Group(rank, world, local, local_world)


def from_environment(device_kind: str) -> Group:
    """Join the group the launcher describes: backend 'nccl' when ``device_kind`` is 'cuda' (each rank on
    ``cuda:LOCAL_RANK``), 'gloo' on the CPU. A world of one gives :data:`SINGLE` without torch.distributed."""
    g = describe_environment()
    if g.world == 1:
        return SINGLE
    import torch

    dist = torch.distributed
    if not dist.is_available():
        raise DistributedError(f"WORLD_SIZE={g.world}, but this torch ({torch.__version__}) was built without "
                               "torch.distributed; run one process, or install a torch build that has it")
    backend = "gloo"
    if device_kind == "cuda":
        if g.local_rank >= torch.cuda.device_count():
            raise DistributedError(f"LOCAL_RANK={g.local_rank}, but torch sees {torch.cuda.device_count()} CUDA "
                                   "GPU(s) on this node: start at most one rank per GPU (--nproc-per-node)")
        # nccl's object collectives go through the current CUDA device: this rank's own.
        torch.cuda.set_device(g.local_rank)
        backend = "nccl"
    timeout = datetime.timedelta(minutes=_int_env("LLSTUDIO_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN))
    try:
        dist.init_process_group(backend, rank=g.rank, world_size=g.world, timeout=timeout)
    except Exception as exc:  # RuntimeError, DistStoreError, ValueError: whatever the rendezvous gives
        raise DistributedError(f"rank {g.rank} of {g.world} could not join the process group ({backend} backend, "
                               f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}): {exc}") from None
    return TorchGroup(g.rank, g.world, g.local_rank, g.local_world)


def share_threads(group: Group, cores: int) -> int:
    """CPU threads for each rank on a node: ``LLSTUDIO_THREADS`` when set, else the node's ``cores`` split evenly
    between its ranks. torchrun sets OMP_NUM_THREADS=1 in every rank unless the user set it, which would leave
    all but one core of a CPU node idle per rank; the even split replaces that default."""
    own = _int_env("LLSTUDIO_THREADS", 0)
    return own if own > 0 else max(1, cores // max(1, group.local_world))
