"""The ``vmap`` and ``linear_first`` strategies: one forward pass vectorised over the grid points of a batch.

Every grid point's weights are formed fresh as ``c + a*d1 + b*d2`` and the model runs on them inside
``torch.func.vmap``, whole (``vmap``) or after its first linear layer, whose three outputs per centre the points
combine (``linear_first``, see ``first_layer``). Linear layers in shared form (``shared_linear``) get no
per-point weights. On a CPU each worker thread runs its own copy of the model (:class:`_Replica`).
"""

from __future__ import annotations

import contextlib
import copy
import threading
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional

import torch
from torch import nn
from torch.func import functional_call, vmap

from .batchnorm import BNState, CaptureBatchNorm, set_mode
from .chunks import reused, run_chunks
from .dropout import CaptureDropout, DropoutState
from .first_layer import split_first_linear
from .shared_linear import SharedLinear, SharedLinearState

if TYPE_CHECKING:  # the evaluator imports this module
    from .evaluator import LandscapeEvaluator


class _Replica(NamedTuple):
    """A copy of the evaluator's model for one worker thread, with the capture states its layers share.

    ``functional_call`` swaps a module's parameters while it runs, and the BatchNorm, dropout and shared-linear
    layers read per-call state, so two threads cannot run one module at once: each worker gets its own copy,
    made once per evaluator (weights come in through ``functional_call``; no copy is made per grid point).
    """
    model: nn.Module
    bn: Optional[BNState]
    drop: Optional[DropoutState]
    linear: Optional[SharedLinearState]
    rest: Optional[nn.Module]  # linear_first: the model after its first layer, else None

    @staticmethod
    def of(model: nn.Module, linear_first: bool) -> "_Replica":
        def state(kind):
            return next((m.state for m in model.modules() if isinstance(m, kind)), None)

        rest = split_first_linear(model).rest if linear_first else None
        return _Replica(model, state(CaptureBatchNorm), state(CaptureDropout), state(SharedLinear), rest)


def replica_pool(ev: "LandscapeEvaluator", workers: int) -> list[_Replica]:
    """``workers`` replicas of the model: the evaluator's own first, copies of it after (kept in
    ``ev._replicas`` for the next call)."""
    while len(ev._replicas) < workers:
        rep = _Replica.of(copy.deepcopy(ev.model), ev.strategy == "linear_first")
        # The copy is taken mid-call (inside evaluate's dropout context): start its states clean.
        if rep.drop is not None:
            rep.drop.masks = None
        if rep.linear is not None:
            rep.linear.armed = rep.linear.coef = None
        ev._replicas.append(rep)
    return ev._replicas[:workers]


def point_weights(center: dict, d1: dict, d2: dict, a: torch.Tensor, b: torch.Tensor, names, scratch: dict,
                  device: torch.device, dtype: torch.dtype) -> dict:
    """Weights of each point, formed fresh (no accumulated in-place walk): name → (P, *shape).

    Two passes per tensor, ``c + a d1`` then ``+ b d2``, into buffers kept in ``scratch`` (a worker's dict)
    from one batch to the next.
    """
    out = {}
    for k in names:
        shape = (-1,) + (1,) * center[k].dim()
        buf = reused(scratch, ("w", k), (len(a),) + tuple(center[k].shape), device, dtype)
        torch.addcmul(center[k], d1[k], a.view(shape), out=buf)
        out[k] = buf.addcmul_(d2[k], b.view(shape))
    return out


def loss_at(ev: "LandscapeEvaluator", rep: _Replica, params: dict, buffers: dict,
            point_loss: Callable) -> torch.Tensor:
    """Loss of the whole model (the replica ``rep``) at one point's ``params`` (vmapped over points by the
    caller), its BatchNorm layers normalising as ``ev.mode`` says."""
    def collect():
        # Without dropout: the recomputed statistics are those of the whole network, and the masks are
        # shaped for the evaluation batch, not for bn_x.
        with rep.drop.using(None) if rep.drop is not None else contextlib.nullcontext():
            functional_call(rep.model, (params, buffers), (ev.bn_x,))

    set_mode(rep.bn, ev.mode, collect)
    return point_loss(functional_call(rep.model, (params, buffers), (ev.x,)), ev.y)


def _armed_weights(center: dict, d1: dict, d2: dict, shared: list[str]) -> Optional[dict]:
    """The stacked weights ``[c; d1; d2]`` (3·out, in) and biases (3, out) of the layers ``shared`` that run in
    shared form, by layer name; None when there are none."""
    if not shared:
        return None

    def stacked(k):
        return torch.stack([center[k], d1[k], d2[k]])

    return {m: (stacked(f"{m}.weight").flatten(0, 1), stacked(f"{m}.bias") if f"{m}.bias" in center else None)
            for m in shared}


@contextlib.contextmanager
def _armed(reps: list[_Replica], armed: Optional[dict], masks: Optional[dict]):
    """The replicas' shared-linear layers armed with ``armed`` inside the block, and the copies' dropout layers
    applying ``masks``, those evaluate() set on the evaluator's own (``reps[0]``); all disarmed afterwards."""
    with contextlib.ExitStack() as stack:
        for rep in reps:
            if rep.linear is not None:
                rep.linear.armed = armed
                stack.callback(setattr, rep.linear, "armed", None)
                stack.callback(setattr, rep.linear, "coef", None)
            if rep.drop is not None and rep is not reps[0]:
                stack.enter_context(rep.drop.using(masks))
        yield


def evaluate_vmap(ev: "LandscapeEvaluator", center: dict, a: torch.Tensor, b: torch.Tensor, bufs: dict,
                  out: torch.Tensor, point_loss: Callable) -> torch.Tensor:
    """The loss at the points ``(a, b)`` into ``out``: batches of ``ev.chunk`` points, each vmapped, on up to
    ``ev.threads`` replicas; ``bufs`` the model's buffers."""
    shared = ev._shared_layers()
    armed = _armed_weights(center, ev.d1, ev.d2, shared)
    linear_first = ev.strategy == "linear_first"
    if linear_first:
        (zc, z1, z2), names = ev._first_layer(center)
        fname = ev.split.name
        bufs = {k: v for k, v in bufs.items() if not k.startswith(fname + ".")}
    else:
        names = ev.names
    names = [k for k in names if k.rpartition(".")[0] not in shared]

    def point_fn(rep: _Replica):
        def one(params, pa, pb):
            if rep.linear is not None:
                rep.linear.coef = torch.stack([pa, pb])
            if linear_first:
                return point_loss(functional_call(rep.rest, (params, bufs), (zc + pa * z1 + pb * z2,)), ev.y)
            return loss_at(ev, rep, params, bufs, point_loss)
        return vmap(one)

    reps = replica_pool(ev, min(ev.threads, -(-len(a) // ev.chunk)))
    free = iter(reps)
    lock = threading.Lock()

    def body(s, e, scratch):
        if "fn" not in scratch:
            with lock:
                scratch["fn"] = point_fn(next(free))
        ac, bc = a[s:e], b[s:e]
        out[s:e] = scratch["fn"](point_weights(center, ev.d1, ev.d2, ac, bc, names, scratch, ev.device, ev.dtype),
                                 ac, bc)

    with _armed(reps, armed, ev.drop_state.masks if ev.drop_state is not None else None):
        run_chunks(len(a), ev.chunk, body, len(reps))
    return out
