"""How a capture's work is shared between the ranks of a :class:`~llstudio.parallel.Group`: work done on rank 0
alone and handed to the others, work every rank does its share of, and the shares themselves (steps in rounds of
one per rank, grid rows). A failure on any rank is raised on every rank, so no rank waits for one that has
stopped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..errors import LLStudioError
from ..parallel import DistributedError, Group


class RankFailed(DistributedError):
    """Another rank failed; the exit status is that rank's."""

    def __init__(self, rank: int, message: str, exit_code: int):
        super().__init__(f"rank {rank} failed: {message}")
        self.exit_code = exit_code


@dataclass(frozen=True)
class _Failure:
    rank: int
    message: str
    exit_code: int


def _failure(rank: int, exc: Exception) -> _Failure:
    if isinstance(exc, LLStudioError):
        return _Failure(rank, str(exc).splitlines()[0], exc.exit_code)
    return _Failure(rank, f"{type(exc).__name__}: {exc}", 1)


def on_root(group: Group, fn: Callable[[], Any]) -> Any:
    """``fn()`` run on rank 0 and its value handed to every rank (the others do not call ``fn``)."""
    if group.world == 1:
        return fn()
    if group.is_root:
        try:
            value = fn()
        except Exception as exc:
            group.broadcast(_failure(group.rank, exc))
            _settle(group)
            raise
        group.broadcast(value)
        return value
    value = group.broadcast(None)
    if isinstance(value, _Failure):
        _settle(group)
        raise RankFailed(value.rank, value.message, value.exit_code)
    return value


def _settle(group: Group) -> None:
    """Meet once more after a failure, so that rank 0 does not exit (and its launcher stop the others) before
    they have heard of it."""
    try:
        group.barrier()
    except Exception:  # a rank that is gone already: nothing left to wait for
        pass


def each(group: Group, fn: Callable[[], Any], share: bool = True) -> Any:
    """``fn()`` run on every rank: with ``share`` every rank's value in rank order, on every rank; without it
    this rank's own value (the ranks still meet, so that a failure anywhere stops them all)."""
    if group.world == 1:
        value = fn()
        return [value] if share else value
    mine = None
    try:
        value = fn()
    except Exception as exc:
        mine = exc
        value = _failure(group.rank, exc)
    values = group.all_gather(value if share or mine is not None else None)
    if mine is not None:
        raise mine
    failed = next((v for v in values if isinstance(v, _Failure)), None)
    if failed is not None:
        raise RankFailed(failed.rank, failed.message, failed.exit_code)
    return values if share else value


def rounds(todo: list, world: int) -> list[list]:
    """``todo`` in rounds of ``world`` items, item ``r`` of a round for rank ``r``; the last round may be short."""
    return [todo[i:i + world] for i in range(0, len(todo), world)]


def rows_of(group: Group, n: int) -> slice:
    """This rank's share of ``n`` grid rows: a contiguous block, the first ``n % world`` ranks one row more."""
    bounds = np.cumsum([0] + [len(b) for b in np.array_split(np.arange(n), group.world)])
    return slice(int(bounds[group.rank]), int(bounds[group.rank + 1]))


def host(weights: dict) -> dict:
    """``name → tensor`` with every tensor on the CPU: what a collective can hand to a rank on another device."""
    return {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in weights.items()}
