"""The ``mlp`` strategy: ``Sequential(Flatten?, Linear, act, Linear, act, ..., Linear)`` models, many grid points
per batched matrix product, written into reused buffers.

Feature-major layout, (points, features, samples): each layer is W_p @ H_p with the weights as stored, which runs
faster than H_p @ W_p^T on CPU BLAS, narrow output layers especially. Everything at a point that is linear in
(1, a, b), the moved layers' weights and biases and the pre-activation where the per-point work starts, is formed
for the whole batch at once from rows c, d1, d2 of a (3, m) basis into reused buffers: fresh multi-megabyte
activations per point cost more in page faults than in arithmetic on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import nn
from torch.func import vmap

from .chunks import reused, run_chunks
from .dropout import CaptureDropout
from .first_layer import FirstLinear

if TYPE_CHECKING:  # the evaluator imports this module
    from .evaluator import LandscapeEvaluator

_ELEMENTWISE = {
    nn.ReLU: lambda t, m: t.relu_(),
    nn.Sigmoid: lambda t, m: t.sigmoid_(),
    nn.Tanh: lambda t, m: t.tanh_(),
    nn.ELU: lambda t, m: nn.functional.elu(t, m.alpha, inplace=True),
    nn.LeakyReLU: lambda t, m: nn.functional.leaky_relu(t, m.negative_slope, inplace=True),
    nn.GELU: lambda t, m: t.copy_(nn.functional.gelu(t, approximate=m.approximate)),
    nn.Identity: lambda t, m: t,
    nn.Dropout: lambda t, m: t,  # capture runs in eval mode
    CaptureDropout: lambda t, m: m.feature_major_(t),  # dropout = 'fixed': the mask of this layer, (n, features)
}


class MLPPlan:
    """The layers after a model's first linear one: ``('linear', (name, has_bias))`` or ``('act', (fn, module))``
    with ``fn`` from the in-place activations above."""

    def __init__(self, split: FirstLinear):
        prefix, fname, first, rest = split
        self.prefix, self.fname, self.first = prefix, fname, first
        self.layers: list[tuple[str, object]] = []
        for name, mod in rest.named_children():
            if isinstance(mod, nn.Linear):
                self.layers.append(("linear", (name, mod.bias is not None)))
            elif type(mod) in _ELEMENTWISE:
                self.layers.append(("act", (_ELEMENTWISE[type(mod)], mod)))
            else:
                raise TypeError(type(mod).__name__)

    @staticmethod
    def supports(split: Optional[FirstLinear]) -> bool:
        """Whether the model cut as ``split`` (None: not cut) is one this strategy evaluates."""
        if split is None or not isinstance(split.first, nn.Linear):
            return False
        return all(isinstance(m, nn.Linear) or type(m) in _ELEMENTWISE for m in split.rest.children())

    def point_floats(self, d1: dict, n: int) -> int:
        """Values one grid point keeps in the batch buffers when every layer after the first moves: the weights
        and biases of those layers, the first layer's output and the last one's, each (features, n)."""
        linear = [what for kind, what in self.layers if kind == "linear"]
        f0 = int(d1[f"{self.fname}.weight"].shape[0])  # the first layer's outputs
        floats = f0 * n + (_width(d1, linear[-1]) if linear else f0) * n
        for name, has_bias in linear:
            floats += d1[f"{name}.weight"].numel() + (d1[f"{name}.bias"].numel() if has_bias else 0)
        return floats

    def group_size(self, d1: dict, n: int, itemsize: int) -> int:
        """Points per matrix product on a CPU.

        A group's widest hidden activation stays within about 2 MB, one point's at least. Larger groups, and
        tiles of samples or of hidden units small enough for L2, measured slower on the 2-core target: the
        per-point products are compute-bound, and smaller ones run further from the BLAS peak.
        """
        widest = max(_width(d1, what) for kind, what in self.layers if kind == "linear") \
            if any(kind == "linear" for kind, _ in self.layers) else 1
        return max(1, 2 * 2**20 // (widest * n * itemsize))


def _width(d1: dict, what) -> int:
    """Output features of the plan's linear layer ``what`` = (name, has_bias)."""
    return int(d1[f"{what[0]}.weight"].shape[0])


def skip_unmoved_layers(plan: MLPPlan, center: dict, d1: dict, d2: dict, zc, z1, z2):
    """Where the per-point work starts: ``(index into plan.layers, zc, z1, z2)``, each z (features, n).

    Layers the directions leave alone compute the same values at every grid point. While the input of a
    linear layer is such a constant h, its output is linear in its weights, ``(c + a d1 + b d2) h = c h +
    a d1 h + b d2 h``: three products per centre instead of one per point. The first layer is the case the
    evaluator always uses; with named weights of the output layer (``directions.kind = 'weights'``) every
    layer but the last is constant, and a grid point costs an (out, n) sum and the loss.
    """
    if bool(z1.any()) or bool(z2.any()):
        return 0, zc, z1, z2
    h = zc.clone()  # activations below work in place
    for i, (kind, what) in enumerate(plan.layers):
        if kind == "act":
            fn, mod = what
            h = fn(h, mod)
            continue
        name, has_bias = what
        keys = [f"{name}.weight"] + ([f"{name}.bias"] if has_bias else [])

        def lin(params):
            y = params[keys[0]] @ h
            return y + params[keys[1]].unsqueeze(1) if has_bias else y

        if any(bool(d[k].any()) for d in (d1, d2) for k in keys):
            return i + 1, lin(center), lin(d1), lin(d2)
        h = lin(center)
    zero = torch.zeros_like(h)
    return len(plan.layers), h, zero, zero


@dataclass
class _PerPoint:
    """The per-point work from where it starts: the activations of the start values (``head``), then ``steps``,
    ``('act', fn, module)`` or ``('linear', weight index, bias index or None)`` into the parameters formed per
    point from ``wbasis`` (shapes ``shapes``, sizes ``sizes``); ``last`` the index of the last linear step
    (-1: none); ``zbasis`` the start values' basis, ``f0`` their features, ``n`` the samples."""
    head: list
    steps: list[tuple]
    shapes: list[tuple]
    sizes: list[int]
    last: int
    f0: int
    out_features: int
    zbasis: torch.Tensor
    wbasis: torch.Tensor
    n: int

    @staticmethod
    def of(layers: list, center: dict, d1: dict, d2: dict, zc, z1, z2, n: int) -> "_PerPoint":
        """The per-point work of ``layers`` (the plan's, from where it starts) with start values ``z*``."""
        k = next((i for i, (kind, _) in enumerate(layers) if kind == "linear"), len(layers))
        head, tail = layers[:k], layers[k:]  # activations of the start values, then the per-point layers
        keys: list[str] = []
        steps: list[tuple] = []
        for kind, what in tail:
            if kind == "act":
                steps.append(("act",) + tuple(what))
                continue
            name, has_bias = what
            steps.append(("linear", len(keys), len(keys) + 1 if has_bias else None))
            keys += [f"{name}.weight"] + ([f"{name}.bias"] if has_bias else [])
        last = max((i for i, st in enumerate(steps) if st[0] == "linear"), default=-1)
        shapes = [tuple(center[k].shape) for k in keys]
        f0 = zc.shape[0]
        zbasis = torch.stack([z.reshape(-1) for z in (zc, z1, z2)])
        wbasis = torch.stack([torch.cat([d[k].reshape(-1) for k in keys]) if keys else zc.new_zeros(0)
                              for d in (center, d1, d2)])
        return _PerPoint(head, steps, shapes, [center[k].numel() for k in keys], last, f0,
                         shapes[steps[last][1]][0] if last >= 0 else f0, zbasis, wbasis, n)


def _feature_major_loss(point_loss: Callable) -> Callable:
    """Feature-major outputs (p, C, n) → (p,): the scene's losses have a batched form; other callables are
    vmapped over the transposed outputs."""
    return getattr(point_loss, "feature_major", None) or \
        (lambda lg, y, f=vmap(point_loss, in_dims=(0, None)): f(lg.transpose(1, 2), y))


def _batch_logits(work: _PerPoint, a, b, scratch: dict, group: int, device, dtype) -> torch.Tensor:
    """The outputs (p, out_features, n) at the points ``(a, b)`` (p,), ``group`` points per matrix product."""
    def buffer(tag, shape):
        return reused(scratch, tag, shape, device, dtype)

    p = len(a)
    ac, bc = a.unsqueeze(1), b.unsqueeze(1)

    def at_points(basis, tag):
        # c + a d1 + b d2 for every point, elementwise (as the plain loop forms its weights): a matrix
        # product would be one call, but under TF32 or bf16 matmul settings it would round the weights.
        t = torch.addcmul(basis[0], basis[1], ac, out=buffer(tag, (p, basis.shape[1])))
        return t.addcmul_(basis[2], bc)

    h0 = at_points(work.zbasis, "z").view(p, work.f0, work.n)
    for _, (fn, mod) in work.head:
        h0 = fn(h0, mod)
    if work.last < 0:
        return h0
    flat = at_points(work.wbasis, "w")
    params = [t.view((p,) + shape) for t, shape in zip(flat.split(work.sizes, 1), work.shapes)]
    logits = buffer("logits", (p, work.out_features, work.n))
    for lo in range(0, p, group):
        _forward_group(work, h0, params, logits, lo, min(lo + group, p), buffer)
    return logits


def _forward_group(work: _PerPoint, h0, params: list, logits, lo: int, hi: int, buffer: Callable) -> None:
    """The per-point steps of points ``lo:hi`` of the batch, from their start values ``h0`` into ``logits``."""
    n = work.n
    # One point at a time (the CPU case from N = 512 on): 2-D products, a little faster than batched ones of
    # one matrix each.
    one = hi - lo == 1
    h = h0[lo] if one else h0[lo:hi]
    for i, step in enumerate(work.steps):
        if step[0] == "act":
            h = step[1](h, step[2])
            continue
        _, wi, bi = step
        w = params[wi][lo] if one else params[wi][lo:hi]
        shape = (w.shape[-2], n) if one else (hi - lo, w.shape[-2], n)
        nxt = (logits[lo] if one else logits[lo:hi]) if i == work.last else buffer(("h", i, shape), shape)
        if bi is None:
            (torch.mm if one else torch.bmm)(w, h, out=nxt)
        elif one:
            torch.addmm(params[bi][lo].unsqueeze(1), w, h, out=nxt)
        else:
            torch.baddbmm(params[bi][lo:hi].unsqueeze(2), w, h, out=nxt)
        h = nxt


def evaluate_mlp(ev: "LandscapeEvaluator", center: dict, a, b, zc, z1, z2, out: torch.Tensor,
                 point_loss: Callable) -> torch.Tensor:
    """The loss at the points ``(a, b)`` into ``out``: batches of ``ev.chunk`` points (more when layers are
    skipped), ``ev.group`` points per matrix product; ``z*`` the first layer's outputs (n, features)."""
    batched_loss = _feature_major_loss(point_loss)
    n = len(ev.x)
    zc, z1, z2 = (z.reshape(n, -1).T.contiguous() for z in (zc, z1, z2))
    start, zc, z1, z2 = skip_unmoved_layers(ev.plan, center, ev.d1, ev.d2, zc, z1, z2)
    work = _PerPoint.of(ev.plan.layers[start:], center, ev.d1, ev.d2, zc, z1, z2, n)
    # ev.chunk fits the per-point values of every layer; skipped layers leave room for more points.
    full = ev.plan.point_floats(ev.d1, n)
    chunk = min(8192, ev.chunk * max(1, full // (work.wbasis.shape[1] + (work.f0 + work.out_features) * n)))
    group = ev.group or chunk

    def body(s, e, scratch):
        out[s:e] = batched_loss(_batch_logits(work, a[s:e], b[s:e], scratch, group, ev.device, ev.dtype), ev.y)

    run_chunks(len(a), chunk, body, ev.threads)
    return out
