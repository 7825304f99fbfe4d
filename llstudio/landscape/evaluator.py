"""Landscape capture: ``L(centre + alpha*d1 + beta*d2)`` on a grid, many grid points per batch.

The evaluator never copies the model per point and never walks weights with in-place ``add_``: every grid point's
weights are formed fresh as ``c + a*d1 + b*d2`` inside a vectorised (``torch.func.vmap``) forward pass. When the
model starts with a linear layer (after parameter-free ones such as ``Flatten``), that layer's output is linear in
its weights, so it is computed three times per centre (for ``c``, ``d1`` and ``d2``) instead of once per point.

Models with BatchNorm are captured in one of three modes (eval, train, recompute_bn; see ``bncapture``) through
the ``vmap`` strategy, with the running statistics of each captured step passed in as buffers. In the vmap
strategies on a GPU a linear layer that a grid point sends few rows through runs in shared form
(``linearcapture``; see ``SHARED_LINEAR_ROWS``), and on a CPU each worker thread runs its own copy of the model. Dropout is off, or
applied with one fixed set of masks that :meth:`LandscapeEvaluator.dropout_masks` draws (see ``dropcapture``).

This module knows nothing of files or pixels.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from .batchnorm import BNState, CaptureBatchNorm, capture_batch_norm, set_mode
from ..device import exact_float32
from .dropout import DROPOUT, CaptureDropout, DropoutState, draw_masks, probe_shapes, swap_dropout
from .shared_linear import SharedLinear, SharedLinearState, swap_linear

_LINEAR_FIRST = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _split_first_linear(model: nn.Module):
    """(prefix modules without parameters, the first linear layer's name, the rest as a Sequential) or None."""
    if not isinstance(model, nn.Sequential):
        return None
    children = list(model.named_children())
    k = 0
    while k < len(children) and not any(True for _ in children[k][1].parameters()) and \
            not any(True for _ in children[k][1].buffers()):
        k += 1
    if k >= len(children) or not isinstance(children[k][1], _LINEAR_FIRST):
        return None
    prefix = nn.Sequential(OrderedDict(children[:k]))
    name, first = children[k]
    # Keep the original child names so parameter names ("3.weight") are those of the full model.
    rest = nn.Sequential(OrderedDict(children[k + 1:]))
    return prefix, name, first, rest



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


class _MLPPlan:
    """A fast path for ``Sequential(Flatten?, Linear, act, Linear, act, ..., Linear)`` models.

    Grid points are processed a few at a time with batched matrix products written into preallocated buffers:
    fresh multi-megabyte activations per point cost more in page faults than in arithmetic on a CPU.
    """

    def __init__(self, split):
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
    def supports(split) -> bool:
        if split is None or not isinstance(split[2], nn.Linear):
            return False
        return all(isinstance(m, nn.Linear) or type(m) in _ELEMENTWISE for m in split[3].children())

STRATEGIES = ("auto", "mlp", "linear_first", "vmap")


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

        rest = _split_first_linear(model)[3] if linear_first else None
        return _Replica(model, state(CaptureBatchNorm), state(CaptureDropout), state(SharedLinear), rest)


class LandscapeEvaluator:
    """Evaluates the loss on points of a 2D slice through weight space, many points per batch.

    ``model`` gives the architecture (its current weights are not used); ``x`` (n, ...) and ``y`` (n,) are the
    evaluation data; ``loss`` maps (outputs (n, C), targets (n,)) to a scalar; ``d1`` and ``d2`` are directions by
    parameter name. Everything is moved to ``device`` and ``dtype`` once.

    Strategies, fastest that applies first: ``mlp`` (batched matrix products into reused buffers, first layer
    computed three times per centre instead of once per point), ``linear_first`` (vmap over the rest of the model,
    first layer as above), ``vmap`` (vmap over the whole model).

    ``mode`` says how BatchNorm layers normalise (``bncapture``): 'eval' with the running statistics (the model's
    own buffers, or those passed to :meth:`evaluate`), 'train' with the statistics of the evaluated batch,
    'recompute_bn' with statistics recomputed at every point from ``bn_x`` (m, ...), a fixed subset of training
    inputs. Models with BatchNorm in a mode other than 'eval' use the vmap strategy.

    ``dropout`` 'off' leaves dropout layers off (eval mode); 'fixed' applies them with the masks given to
    :meth:`evaluate` (from :meth:`dropout_masks`), the same masks at every grid point, on every strategy. The
    'recompute_bn' statistics pass runs without dropout.
    On a CPU every strategy splits grid points across ``threads`` workers (default: torch's thread count), each
    running torch single-threaded (the vmap strategies on a copy of the model each); torch's thread setting is
    restored afterwards. ``evaluate`` and ``grid``
    take ``reduction='none'`` for the loss of each sample instead of their mean, on every strategy.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Callable,
                 d1: dict[str, torch.Tensor], d2: dict[str, torch.Tensor], device: torch.device,
                 dtype: torch.dtype, memory_mb: Optional[int] = None, strategy: str = "auto", mode: str = "eval",
                 bn_x: Optional[torch.Tensor] = None, threads: Optional[int] = None, dropout: str = "off"):
        self.device, self.dtype = device, dtype
        # CPU only: grid points are split across this many worker threads, each running torch single-threaded.
        # None: torch's intra-op thread count. CUDA work is queued from one thread (its kernels are parallel already).
        self.threads = 1 if device.type != "cpu" else max(1, threads if threads is not None else torch.get_num_threads())
        self.model = model.to(device=device, dtype=dtype).eval()
        self.bn_state = capture_batch_norm(self.model, mode, bn_x)
        self.mode = mode
        if dropout not in DROPOUT:
            raise ValueError(f"unknown dropout {dropout!r}: choose one of {', '.join(DROPOUT)}")
        # 'off' leaves the model's dropout layers alone (eval mode: the identity), as before 'fixed' existed.
        self.drop_state = swap_dropout(self.model) if dropout == "fixed" else None
        self._drop_shapes: Optional[dict] = None  # the dropout layers' input shapes for self.x, probed on demand
        self.bn_x = None if bn_x is None else bn_x.to(device=device, dtype=dtype)
        self.loss = loss
        self.x = x.to(device=device, dtype=dtype)
        self.y = y.to(device=device)
        self.names = [k for k, _ in self.model.named_parameters()]
        self.buffers = {k: v for k, v in self.model.named_buffers()}
        self.d1 = {k: d1[k].to(device=device, dtype=dtype) for k in self.names}
        self.d2 = {k: d2[k].to(device=device, dtype=dtype) for k in self.names}
        split = _split_first_linear(self.model)
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if self.bn_state is not None and mode != "eval":
            # Batch statistics (and the recompute pass) need the whole model inside one vmapped function.
            split = None
        if strategy == "auto":
            strategy = "mlp" if _MLPPlan.supports(split) else ("linear_first" if split else "vmap")
        if strategy in ("mlp", "linear_first") and split is None or strategy == "mlp" and not _MLPPlan.supports(split):
            raise ValueError(f"strategy {strategy!r} does not apply to this model")
        # Linear layers that run in shared form when a grid point sends few rows through them (linearcapture):
        # every nn.Linear the vmapped forward pass meets, each with the rows one evaluation sample sends it.
        self._linear_rows: dict[str, int] = {}
        self.linear_state = None
        if strategy in ("vmap", "linear_first"):
            first = split[1] if strategy == "linear_first" else None
            self._linear_rows = self._rows_per_sample(
                [n for n, m in self.model.named_modules() if isinstance(m, nn.Linear) and n not in ("", first)])
            self.linear_state = swap_linear(self.model, list(self._linear_rows))
            if strategy == "linear_first":
                split = _split_first_linear(self.model)  # its 'rest' must hold the swapped layers
        self.strategy, self.split = strategy, split
        self.plan = _MLPPlan(split) if strategy == "mlp" else None
        # Worker threads of the vmap strategies each run their own copy (made on first use, then kept).
        self._replicas = [_Replica(self.model, self.bn_state, self.drop_state, self.linear_state,
                                   split[3] if strategy == "linear_first" else None)]
        self.memory_mb = memory_mb or self.default_memory_mb(self.device)
        self.chunk = self._chunk_size(self.memory_mb)
        self.group = self._group_size()

    def set_data(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Evaluate on other samples from now on (e.g. each step's mini-batch); batch sizes follow them."""
        self.x = x.to(device=self.device, dtype=self.dtype)
        self.y = y.to(device=self.device)
        self.chunk = self._chunk_size(self.memory_mb)
        self.group = self._group_size()
        self._drop_shapes = None

    @property
    def has_dropout(self) -> bool:
        """Whether masks apply: dropout = 'fixed' and the model has dropout layers."""
        return self.drop_state is not None

    def dropout_masks(self, entropy: list[int]) -> dict[str, torch.Tensor]:
        """Masks for the current evaluation data (dropout layer name → tensor on the device), drawn from
        ``numpy.random.default_rng(entropy)`` (see ``dropcapture.mask_seed``); {} when there is no dropout layer
        or dropout is 'off'. The layers' input shapes come from one probe forward pass, repeated after
        :meth:`set_data`."""
        if self.drop_state is None:
            return {}
        if self._drop_shapes is None:
            # Running statistics: any statistics give the same shapes.
            with self.bn_state.using("eval") if self.bn_state is not None else contextlib.nullcontext():
                self._drop_shapes = probe_shapes(self.drop_state, lambda: self.model(self.x))
        return draw_masks(self.drop_state, self._drop_shapes, entropy, self.device, self.dtype)

    # A linear layer runs in shared form when a grid point sends at most this many rows through it, by device
    # type. Per point, shared form costs 3 * rows * (in * out) multiply-adds inside one large product; per-point
    # weights cost two passes over in * out values plus rows * (in * out) multiply-adds in many small products.
    # On the 2-core CPU target, with the small MNIST CNN's 9216 -> 128 classifier and per-point weights in reused
    # buffers, shared form measured slower (8 rows a point: 285 vs 308 points/s; 16 rows: 139 vs 188), so it is
    # off there. A GPU reads memory far faster than a CPU but the per-point weights are megabytes a point, which
    # one shared product avoids: on there up to 64 rows, a choice still to be measured (benchmarks/gpu_check.sh).
    SHARED_LINEAR_ROWS = {"cpu": 0, "cuda": 64}

    def _rows_per_sample(self, names: list[str]) -> dict[str, int]:
        """Rows one evaluation sample sends through each of the linear layers ``names`` (1 for a classifier on
        flat features; more when the layer is applied along extra dimensions). One forward pass of one sample."""
        rows: dict[str, int] = {}
        self._probe([(self.model.get_submodule(n),
                      lambda m, inp, _out, n=n: rows.__setitem__(n, inp[0].numel() // m.in_features)) for n in names])
        return {n: rows[n] for n in names if n in rows}

    def _probe(self, hooks: list[tuple[nn.Module, Callable]]) -> None:
        """One forward pass of one evaluation sample with the forward hooks ``[(module, hook)]`` attached."""
        handles = [m.register_forward_hook(h) for m, h in hooks]
        try:
            with torch.no_grad():
                self.model(self.x[:1])
        finally:
            for h in handles:
                h.remove()

    def _shared_layers(self) -> list[str]:
        """The linear layers that run in shared form for the current evaluation data (see linearcapture)."""
        n = len(self.x) + (len(self.bn_x) if self.mode == "recompute_bn" else 0)
        limit = self.SHARED_LINEAR_ROWS.get(self.device.type, 0)
        return [name for name, r in self._linear_rows.items() if r * n <= limit]

    @staticmethod
    def default_memory_mb(device: torch.device) -> int:
        """The batch budget when none is given: 512 MiB on a CPU (batches beyond a few megabytes a worker gain
        nothing there); on a GPU a quarter of its free memory, at most 8 GiB, so that a batch fills the GPU."""
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            return int(max(512, min(8192, free // 4 // 2**20)))
        return 512

    def _chunk_size(self, memory_mb: int) -> int:
        """Grid points per batch so that the batches of all worker threads (weights, activations) fit in
        ``memory_mb``.

        On a CPU the ``mlp`` strategy's batch holds only each point's weights, first and last activations (the
        hidden ones are computed ``self.group`` points at a time): a few megabytes per worker thread, so that the
        Python work per batch is shared by enough points and the batch still comes back from cache.
        """
        itemsize = torch.finfo(self.dtype).bits // 8
        if self.strategy == "mlp" and self.device.type == "cpu":
            per_point = self._mlp_point_floats() * itemsize
            return int(max(1, min(8192, min(memory_mb * 2**20, 4 * 2**20) // per_point)))
        sizes: list[int] = []
        self._probe([(m, lambda _m, _i, out: sizes.append(out[0].numel()))
                     for m in self.model.modules() if len(list(m.children())) == 0])
        n = len(self.x) + (len(self.bn_x) if self.mode == "recompute_bn" else 0)
        weights = sum(p.numel() for p in self.model.parameters())
        for name in self._shared_layers():
            # No per-point weights; three outputs per row instead of one.
            lin = self.model.get_submodule(name)
            weights -= sum(p.numel() for p in lin.parameters())
            weights += 3 * self._linear_rows[name] * n * lin.out_features
        per_point = (weights + 2 * n * sum(sizes)) * itemsize
        # Each worker thread holds a batch of its own.
        return int(max(1, min(8192, memory_mb * 2**20 // self.threads // max(per_point, 1))))

    def _group_size(self) -> Optional[int]:
        """Points per matrix product in the ``mlp`` strategy on a CPU (None elsewhere: the whole batch).

        A group's widest hidden activation stays within about 2 MB, one point's at least. Larger groups, and
        tiles of samples or of hidden units small enough for L2, measured slower on the 2-core target: the
        per-point products are compute-bound, and smaller ones run further from the BLAS peak.
        """
        if self.strategy != "mlp" or self.device.type != "cpu":
            return None
        widest = max(self._width(what) for kind, what in self.plan.layers if kind == "linear") \
            if any(kind == "linear" for kind, _ in self.plan.layers) else 1
        itemsize = torch.finfo(self.dtype).bits // 8
        return max(1, 2 * 2**20 // (widest * len(self.x) * itemsize))

    def _points(self, center: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor, names,
                scratch: Optional[dict] = None) -> dict:
        """Weights of each point, formed fresh (no accumulated in-place walk): name → (P, *shape).

        Two passes per tensor, ``c + a d1`` then ``+ b d2``, into buffers kept in ``scratch`` (a worker's dict)
        from one batch to the next: a batch's weights can be hundreds of megabytes, and fresh temporaries of
        that size cost more in page faults than the arithmetic.
        """
        out = {}
        for k in names:
            shape = (-1,) + (1,) * center[k].dim()
            size = (len(a),) + tuple(center[k].shape)
            buf = None if scratch is None else scratch.get(("w", k))
            if buf is None or buf.shape != size:
                buf = torch.empty(size, device=self.device, dtype=self.dtype)
                if scratch is not None:
                    scratch[("w", k)] = buf
            torch.addcmul(center[k], self.d1[k], a.view(shape), out=buf)
            out[k] = buf.addcmul_(self.d2[k], b.view(shape))
        return out

    def _first_layer(self, center):
        prefix, fname, first, _ = self.split
        x0 = prefix(self.x)
        fkeys = [k for k in self.names if k.startswith(fname + ".")]

        def local(d):
            return {k[len(fname) + 1:]: d[k] for k in fkeys}

        # The first layer is linear in its weights: f(x; c + a d1 + b d2) = f(x; c) + a f(x; d1) + b f(x; d2).
        zs = [functional_call(first, local(p), (x0,)) for p in (center, self.d1, self.d2)]
        return zs, [k for k in self.names if k not in fkeys]

    def _loss_at(self, rep: _Replica, params: dict, buffers: dict, point_loss: Callable) -> torch.Tensor:
        """Loss of the whole model (the replica ``rep``) at one point's ``params`` (vmapped over points by the
        caller); ``point_loss`` from :meth:`_point_loss`."""
        def collect():
            # Without dropout: the recomputed statistics are those of the whole network, and the masks are
            # shaped for the evaluation batch, not for bn_x.
            with rep.drop.using(None) if rep.drop is not None else contextlib.nullcontext():
                functional_call(rep.model, (params, buffers), (self.bn_x,))

        set_mode(rep.bn, self.mode, collect)
        return point_loss(functional_call(rep.model, (params, buffers), (self.x,)), self.y)

    def _replica_pool(self, workers: int) -> list[_Replica]:
        """``workers`` replicas of the model: the evaluator's own first, copies of it after."""
        while len(self._replicas) < workers:
            rep = _Replica.of(copy.deepcopy(self.model), self.strategy == "linear_first")
            # The copy is taken mid-call (inside evaluate's dropout context): start its states clean.
            if rep.drop is not None:
                rep.drop.masks = None
            if rep.linear is not None:
                rep.linear.armed = rep.linear.coef = None
            self._replicas.append(rep)
        return self._replicas[:workers]

    def _buffers_for(self, buffers: Optional[dict]) -> dict:
        """The model's buffers, with those given (e.g. a captured step's BatchNorm running statistics) instead."""
        out = dict(self.buffers)
        for k, v in (buffers or {}).items():
            if k in out:
                out[k] = v.to(device=self.device, dtype=out[k].dtype)
        return out

    REDUCTIONS = ("mean", "none")

    def _point_loss(self, reduction: str) -> Callable:
        """``(outputs (n, C), targets (n,))`` → the mean loss (scalar), or with ``'none'`` each sample's loss (n,).

        A sample's loss is the scene's loss on a batch of that one sample, so the mean of the (n,) values is the
        mean loss for the losses llstudio uses (both average over samples).
        """
        if reduction not in self.REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}: choose one of {', '.join(self.REDUCTIONS)}")
        if reduction == "mean":
            return self.loss
        loss = self.loss
        each = vmap(lambda o, t: loss(o.unsqueeze(0), t.unsqueeze(0)))

        def per_sample(o, t):
            return each(o, t)
        if hasattr(loss, "feature_major"):  # the batched form the mlp strategy uses (see models.Loss)
            per_sample.feature_major = lambda logits, y: loss.feature_major(logits, y, mean=False)
        return per_sample

    def _run_chunks(self, n: int, body: Callable[[int, int, dict], None], threads: int = 1,
                    chunk: Optional[int] = None) -> None:
        """Call ``body(start, stop, scratch)`` for every chunk of ``n`` points (``chunk``, default ``self.chunk``,
        points each), on up to ``threads`` threads.

        Each worker thread runs torch single-threaded and pulls the next chunk when done (so a core slowed by
        other processes takes fewer chunks); ``scratch`` is the worker's own dict for reusable buffers. Two
        single-threaded workers beat one two-threaded pass here: the per-point matrices are too small for
        intra-op parallelism to pay for its synchronisation. torch releases the GIL inside its kernels.
        """
        chunk = chunk or self.chunk
        starts = range(0, n, chunk)
        workers = min(threads, len(starts))
        if workers <= 1:
            scratch: dict = {}
            for s in starts:
                body(s, min(s + chunk, n), scratch)
            return
        todo = iter(starts)
        lock = threading.Lock()
        stop = threading.Event()

        def worker():
            torch.set_num_threads(1)
            scratch: dict = {}
            with torch.no_grad():
                while not stop.is_set():
                    with lock:
                        s = next(todo, None)
                    if s is None:
                        return
                    body(s, min(s + chunk, n), scratch)

        before = torch.get_num_threads()
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="llstudio-grid") as pool:
                futures = [pool.submit(worker) for _ in range(workers)]
                try:
                    for f in futures:
                        f.result()
                finally:
                    stop.set()  # an error or Ctrl-C in one place stops the others after their current chunk
        finally:
            # set_num_threads in a worker also changes torch's process-wide default for new threads: restore it.
            torch.set_num_threads(before)

    @torch.no_grad()
    def evaluate(self, center: dict[str, torch.Tensor], a: torch.Tensor, b: torch.Tensor,
                 buffers: Optional[dict[str, torch.Tensor]] = None, reduction: str = "mean",
                 masks: Optional[dict[str, torch.Tensor]] = None) -> torch.Tensor:
        """Loss at the points ``center + a[i]*d1 + b[i]*d2``; ``a``, ``b`` (P,) → (P,) on the device.

        ``buffers`` (name → tensor) replace the model's own, e.g. the BatchNorm running statistics of the step
        whose weights ``center`` are. With ``reduction='none'``: (P, n), the loss of each of the n evaluation
        samples at each point. ``masks`` (from :meth:`dropout_masks`): with dropout = 'fixed', the dropout masks
        applied at every point (required when the model has dropout layers).
        """
        st = self.drop_state
        if st is None:
            if masks:
                raise ValueError("dropout masks given, but the evaluator applies none (dropout = 'off' or no "
                                 "dropout layer)")
            return self._evaluate(center, a, b, buffers, reduction)
        missing = [n for n in st.names if n not in (masks or {})]
        if missing:
            raise ValueError(f"dropout = 'fixed' needs a mask for every dropout layer (see dropout_masks); missing: "
                             f"{', '.join(missing)}")
        with st.using({n: masks[n].to(device=self.device, dtype=self.dtype) for n in st.names}):
            return self._evaluate(center, a, b, buffers, reduction)

    def _evaluate(self, center, a, b, buffers, reduction) -> torch.Tensor:
        with exact_float32(self.device):  # cuDNN's TF32 convolutions would round every value on a GPU
            return self._evaluate_exact(center, a, b, buffers, reduction)

    def _evaluate_exact(self, center, a, b, buffers, reduction) -> torch.Tensor:
        bufs = self._buffers_for(buffers)
        point_loss = self._point_loss(reduction)
        center = {k: center[k].to(device=self.device, dtype=self.dtype) for k in self.names}
        a = a.to(device=self.device, dtype=self.dtype)
        b = b.to(device=self.device, dtype=self.dtype)
        out = torch.empty((len(a),) if reduction == "mean" else (len(a), len(self.x)), device=self.device,
                          dtype=self.dtype)
        if self.strategy not in ("vmap", "linear_first"):
            (zc, z1, z2), _ = self._first_layer(center)
            return self._evaluate_mlp(center, a, b, zc, z1, z2, out, point_loss)
        shared = self._shared_layers()
        armed = None
        if shared:
            def stacked(k):
                return torch.stack([center[k], self.d1[k], self.d2[k]])

            armed = {m: (stacked(f"{m}.weight").flatten(0, 1),
                         stacked(f"{m}.bias") if f"{m}.bias" in center else None) for m in shared}
        linear_first = self.strategy == "linear_first"
        if linear_first:
            (zc, z1, z2), names = self._first_layer(center)
            fname = self.split[1]
            bufs = {k: v for k, v in bufs.items() if not k.startswith(fname + ".")}
        else:
            names = self.names
        names = [k for k in names if k.rpartition(".")[0] not in shared]

        def point_fn(rep: _Replica):
            def one(params, pa, pb):
                if rep.linear is not None:
                    rep.linear.coef = torch.stack([pa, pb])
                if linear_first:
                    return point_loss(functional_call(rep.rest, (params, bufs), (zc + pa * z1 + pb * z2,)), self.y)
                return self._loss_at(rep, params, bufs, point_loss)
            return vmap(one)

        reps = self._replica_pool(min(self.threads, -(-len(a) // self.chunk)))
        free = iter(reps)
        lock = threading.Lock()

        def body(s, e, scratch):
            if "fn" not in scratch:
                with lock:
                    scratch["fn"] = point_fn(next(free))
            ac, bc = a[s:e], b[s:e]
            out[s:e] = scratch["fn"](self._points(center, ac, bc, names, scratch), ac, bc)

        main_masks = self.drop_state.masks if self.drop_state is not None else None
        with contextlib.ExitStack() as stack:
            for rep in reps:
                if rep.linear is not None:
                    rep.linear.armed = armed
                    stack.callback(setattr, rep.linear, "armed", None)
                    stack.callback(setattr, rep.linear, "coef", None)
                if rep.drop is not None and rep is not reps[0]:
                    stack.enter_context(rep.drop.using(main_masks))  # evaluate() set the evaluator's own
            self._run_chunks(len(a), body, len(reps))
        return out

    def _skip_unmoved_layers(self, center, zc, z1, z2):
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
        for i, (kind, what) in enumerate(self.plan.layers):
            if kind == "act":
                fn, mod = what
                h = fn(h, mod)
                continue
            name, has_bias = what
            keys = [f"{name}.weight"] + ([f"{name}.bias"] if has_bias else [])

            def lin(params):
                y = params[keys[0]] @ h
                return y + params[keys[1]].unsqueeze(1) if has_bias else y

            if any(bool(d[k].any()) for d in (self.d1, self.d2) for k in keys):
                return i + 1, lin(center), lin(self.d1), lin(self.d2)
            h = lin(center)
        zero = torch.zeros_like(h)
        return len(self.plan.layers), h, zero, zero

    def _evaluate_mlp(self, center, a, b, zc, z1, z2, out, point_loss):
        """The ``mlp`` strategy: batches of ``self.chunk`` points, ``self.group`` points per matrix product.

        Feature-major layout, (points, features, samples): each layer is W_p @ H_p with the weights as stored,
        which runs faster than H_p @ W_p^T on CPU BLAS, narrow output layers especially. Everything at a point
        that is linear in (1, a, b), the moved layers' weights and biases and the pre-activation where the
        per-point work starts, is formed for the whole batch at once from rows c, d1, d2 of a (3, m) basis into
        reused buffers: no per-point tensors are allocated.
        """
        # Feature-major outputs (p, C, n) → (p,): the scene's losses have a batched form; other callables are
        # vmapped over the transposed outputs.
        batched_loss = getattr(point_loss, "feature_major", None) or \
            (lambda lg, y, f=vmap(point_loss, in_dims=(0, None)): f(lg.transpose(1, 2), y))
        n = len(self.x)
        zc, z1, z2 = (z.reshape(n, -1).T.contiguous() for z in (zc, z1, z2))
        start, zc, z1, z2 = self._skip_unmoved_layers(center, zc, z1, z2)
        layers = self.plan.layers[start:]
        k = next((i for i, (kind, _) in enumerate(layers) if kind == "linear"), len(layers))
        head, tail = layers[:k], layers[k:]  # activations of the start values, then the per-point layers
        keys: list[str] = []
        steps: list[tuple] = []  # ('act', fn, module) or ('linear', weight key index, bias key index or None)
        for kind, what in tail:
            if kind == "act":
                steps.append(("act",) + tuple(what))
                continue
            name, has_bias = what
            steps.append(("linear", len(keys), len(keys) + 1 if has_bias else None))
            keys += [f"{name}.weight"] + ([f"{name}.bias"] if has_bias else [])
        last = max((i for i, st in enumerate(steps) if st[0] == "linear"), default=-1)
        shapes = [tuple(center[k].shape) for k in keys]
        sizes = [center[k].numel() for k in keys]
        f0 = zc.shape[0]
        out_features = shapes[steps[last][1]][0] if last >= 0 else f0
        zbasis = torch.stack([z.reshape(-1) for z in (zc, z1, z2)])
        wbasis = torch.stack([torch.cat([d[k].reshape(-1) for k in keys]) if keys else zc.new_zeros(0)
                              for d in (center, self.d1, self.d2)])
        # self.chunk fits the per-point values of every layer; skipped layers leave room for more points.
        full = self._mlp_point_floats()
        chunk = min(8192, self.chunk * max(1, full // (wbasis.shape[1] + (f0 + out_features) * n)))
        group = self.group or chunk

        def body(s, e, bufs):
            def buffer(tag, shape):
                t = bufs.get(tag)
                if t is None or t.shape != shape:
                    t = bufs[tag] = torch.empty(shape, device=self.device, dtype=self.dtype)
                return t

            p = e - s
            ac, bc = a[s:e].unsqueeze(1), b[s:e].unsqueeze(1)

            def at_points(basis, tag):
                # c + a d1 + b d2 for every point, elementwise (as the plain loop forms its weights): a matrix
                # product would be one call, but under TF32 or bf16 matmul settings it would round the weights.
                t = torch.addcmul(basis[0], basis[1], ac, out=buffer(tag, (p, basis.shape[1])))
                return t.addcmul_(basis[2], bc)

            h0 = at_points(zbasis, "z").view(p, f0, n)
            for _, (fn, mod) in head:
                h0 = fn(h0, mod)
            if last < 0:
                logits = h0
            else:
                flat = at_points(wbasis, "w")
                params = [t.view((p,) + shape) for t, shape in zip(flat.split(sizes, 1), shapes)]
                logits = buffer("logits", (p, out_features, n))
                for lo in range(0, p, group):
                    hi = min(lo + group, p)
                    # One point at a time (the CPU case from N = 512 on): 2-D products, a little faster than
                    # batched ones of one matrix each.
                    one = hi - lo == 1
                    h = h0[lo] if one else h0[lo:hi]
                    for i, step in enumerate(steps):
                        if step[0] == "act":
                            h = step[1](h, step[2])
                            continue
                        _, wi, bi = step
                        w = params[wi][lo] if one else params[wi][lo:hi]
                        shape = (w.shape[-2], n) if one else (hi - lo, w.shape[-2], n)
                        nxt = (logits[lo] if one else logits[lo:hi]) if i == last else buffer(("h", i, shape), shape)
                        if bi is None:
                            (torch.mm if one else torch.bmm)(w, h, out=nxt)
                        elif one:
                            torch.addmm(params[bi][lo].unsqueeze(1), w, h, out=nxt)
                        else:
                            torch.baddbmm(params[bi][lo:hi].unsqueeze(2), w, h, out=nxt)
                        h = nxt
            out[s:e] = batched_loss(logits, self.y)

        self._run_chunks(len(a), body, self.threads, chunk)
        return out

    def _mlp_point_floats(self) -> int:
        """Values one grid point keeps in the ``mlp`` strategy's batch buffers when every layer after the first
        moves: the weights and biases of those layers, the first layer's output and the last one's, each
        (features, n)."""
        n = len(self.x)
        linear = [what for kind, what in self.plan.layers if kind == "linear"]
        f0 = int(self.d1[f"{self.plan.fname}.weight"].shape[0])  # the first layer's outputs
        floats = f0 * n + (self._width(linear[-1]) if linear else f0) * n
        for name, has_bias in linear:
            floats += self.d1[f"{name}.weight"].numel() + (self.d1[f"{name}.bias"].numel() if has_bias else 0)
        return floats

    def _width(self, what) -> int:
        """Output features of the plan's linear layer ``what`` = (name, has_bias)."""
        return int(self.d1[f"{what[0]}.weight"].shape[0])

    def grid(self, center: dict[str, torch.Tensor], alphas: np.ndarray, betas: np.ndarray,
             buffers: Optional[dict[str, torch.Tensor]] = None, reduction: str = "mean",
             masks: Optional[dict[str, torch.Tensor]] = None) -> np.ndarray:
        """Loss on the full grid, ``(nx, ny)`` with 'ij' indexing: ``[i, j]`` is at ``(alphas[i], betas[j])``.

        ``buffers`` and ``masks`` as for :meth:`evaluate`. With ``reduction='none'``: ``(n, nx, ny)``, one landscape
        per evaluation sample.
        """
        A, B = np.meshgrid(alphas, betas, indexing="ij")
        vals = self.evaluate(center, torch.as_tensor(A.ravel()), torch.as_tensor(B.ravel()), buffers, reduction,
                             masks)
        vals = vals.cpu().numpy().astype(np.float64)
        if reduction == "mean":
            return vals.reshape(len(alphas), len(betas))
        return np.ascontiguousarray(vals.T.reshape(-1, len(alphas), len(betas)))


def reference_grid(model: nn.Module, center: dict[str, torch.Tensor], d1: dict, d2: dict,
                   alphas: np.ndarray, betas: np.ndarray, x: torch.Tensor, y: torch.Tensor, loss: Callable,
                   on_point: Optional[Callable[[], None]] = None) -> np.ndarray:
    """The plain per-point loop: set the weights, run a forward pass, one grid point at a time.

    Correctness reference for tests and the baseline of ``benchmarks/capture.py``. ``(nx, ny)``, 'ij' indexing.
    The losses stay on the model's device until the end (on a GPU, reading each back would wait for it at every
    point, which would make the baseline slower than it need be), in IEEE float32 as the evaluator computes.
    """
    params = dict(model.named_parameters())
    values = []
    with torch.no_grad(), exact_float32(next(iter(params.values())).device if params else "cpu"):
        for a in alphas:
            for b in betas:
                for k, p in params.items():
                    p.copy_(center[k] + float(a) * d1[k] + float(b) * d2[k])
                values.append(loss(model(x), y).detach())
                if on_point is not None:
                    on_point()
    return torch.stack(values).double().cpu().numpy().reshape(len(alphas), len(betas))
