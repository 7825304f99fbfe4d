"""Landscape capture: ``L(centre + alpha*d1 + beta*d2)`` on a grid, many grid points per batch.

The evaluator never copies the model per point and never walks weights with in-place ``add_``: every grid point's
weights are formed fresh as ``c + a*d1 + b*d2``, in batched matrix products (the ``mlp`` strategy, ``mlp``) or
inside a vectorised (``torch.func.vmap``) forward pass (``vmap``). When the model starts with a linear layer
(after parameter-free ones such as ``Flatten``), that layer's output is linear in its weights, so it is computed
three times per centre (for ``c``, ``d1`` and ``d2``) instead of once per point (``first_layer``).

Models with BatchNorm are captured in one of three modes (eval, train, recompute_bn; see ``batchnorm``) through
the ``vmap`` strategy, with the running statistics of each captured step passed in as buffers. In the vmap
strategies on a GPU a linear layer that a grid point sends few rows through runs in shared form
(``shared_linear``; see ``SHARED_LINEAR_ROWS``), and on a CPU each worker thread runs its own copy of the model.
Dropout is off, or applied with one fixed set of masks that :meth:`LandscapeEvaluator.dropout_masks` draws (see
``dropout``).

This module holds the public API: the strategy choice, batch sizes within the memory budget, worker threads,
data, buffers and reductions. It knows nothing of files or pixels.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.func import vmap

from ..device import exact_float32
from .batchnorm import capture_batch_norm
from .dropout import DROPOUT, draw_masks, probe_shapes, swap_dropout
from .first_layer import FirstLinear, first_layer_outputs, split_first_linear
from .mlp import MLPPlan, evaluate_mlp
from .shared_linear import swap_linear
from .vmap import _Replica, evaluate_vmap

STRATEGIES = ("auto", "mlp", "linear_first", "vmap")


class LandscapeEvaluator:
    """Evaluates the loss on points of a 2D slice through weight space, many points per batch.

    ``model`` gives the architecture (its current weights are not used); ``x`` (n, ...) and ``y`` (n,) are the
    evaluation data; ``loss`` maps (outputs (n, C), targets (n,)) to a scalar; ``d1`` and ``d2`` are directions by
    parameter name. Everything is moved to ``device`` and ``dtype`` once.

    Strategies, fastest that applies first: ``mlp`` (batched matrix products into reused buffers, first layer
    computed three times per centre instead of once per point), ``linear_first`` (vmap over the rest of the model,
    first layer as above), ``vmap`` (vmap over the whole model).

    ``mode`` says how BatchNorm layers normalise (``batchnorm``): 'eval' with the running statistics (the model's
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
        # Batch statistics (and the recompute pass) need the whole model inside one vmapped function.
        strategy, split = self._choose_strategy(strategy, split_first_linear(self.model),
                                                whole=self.bn_state is not None and mode != "eval")
        split = self._swap_shared_linear(strategy, split)
        self.strategy, self.split = strategy, split
        self.plan = MLPPlan(split) if strategy == "mlp" else None
        # Worker threads of the vmap strategies each run their own copy (made on first use, then kept).
        self._replicas = [_Replica(self.model, self.bn_state, self.drop_state, self.linear_state,
                                   split.rest if strategy == "linear_first" else None)]
        self.memory_mb = memory_mb or self.default_memory_mb(self.device)
        self.chunk = self._chunk_size(self.memory_mb)
        self.group = self._group_size()

    @staticmethod
    def _choose_strategy(strategy: str, split: Optional[FirstLinear], whole: bool) -> tuple[str, Optional[FirstLinear]]:
        """``(strategy, split)``: ``strategy`` checked, 'auto' resolved to the fastest that applies to the model
        cut as ``split``; ``whole``: the model must run whole (no split)."""
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if whole:
            split = None
        if strategy == "auto":
            strategy = "mlp" if MLPPlan.supports(split) else ("linear_first" if split else "vmap")
        if strategy in ("mlp", "linear_first") and split is None or strategy == "mlp" and not MLPPlan.supports(split):
            raise ValueError(f"strategy {strategy!r} does not apply to this model")
        return strategy, split

    def _swap_shared_linear(self, strategy: str, split: Optional[FirstLinear]) -> Optional[FirstLinear]:
        """Swap the linear layers that may run in shared form (``shared_linear``) for the vmap strategies: every
        nn.Linear the vmapped forward pass meets, each with the rows one evaluation sample sends it
        (``self._linear_rows``). Returns ``split`` again, cut anew for linear_first: its 'rest' must hold the
        swapped layers."""
        self._linear_rows: dict[str, int] = {}
        self.linear_state = None
        if strategy not in ("vmap", "linear_first"):
            return split
        first = split.name if strategy == "linear_first" else None
        self._linear_rows = self._rows_per_sample(
            [n for n, m in self.model.named_modules() if isinstance(m, nn.Linear) and n not in ("", first)])
        self.linear_state = swap_linear(self.model, list(self._linear_rows))
        return split_first_linear(self.model) if strategy == "linear_first" else split

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
        ``numpy.random.default_rng(entropy)`` (see ``dropout.mask_seed``); {} when there is no dropout layer
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
        """The linear layers that run in shared form for the current evaluation data (see ``shared_linear``)."""
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
            per_point = self.plan.point_floats(self.d1, len(self.x)) * itemsize
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
        """Points per matrix product in the ``mlp`` strategy on a CPU (None elsewhere: the whole batch); see
        :meth:`MLPPlan.group_size`."""
        if self.strategy != "mlp" or self.device.type != "cpu":
            return None
        return self.plan.group_size(self.d1, len(self.x), torch.finfo(self.dtype).bits // 8)

    def _first_layer(self, center):
        """The first layer's outputs at the centre and both directions, and the other parameters' names (the
        ``mlp`` and ``linear_first`` strategies; see ``first_layer``)."""
        return first_layer_outputs(self.split, self.x, self.names, center, self.d1, self.d2)

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
        if hasattr(loss, "feature_major"):  # the batched form the mlp strategy uses (see train.models.Loss)
            per_sample.feature_major = lambda logits, y: loss.feature_major(logits, y, mean=False)
        return per_sample

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
        """:meth:`evaluate` by the evaluator's strategy, everything on its device and in its dtype."""
        bufs = self._buffers_for(buffers)
        point_loss = self._point_loss(reduction)
        center = {k: center[k].to(device=self.device, dtype=self.dtype) for k in self.names}
        a = a.to(device=self.device, dtype=self.dtype)
        b = b.to(device=self.device, dtype=self.dtype)
        out = torch.empty((len(a),) if reduction == "mean" else (len(a), len(self.x)), device=self.device,
                          dtype=self.dtype)
        if self.strategy == "mlp":
            (zc, z1, z2), _ = self._first_layer(center)
            return evaluate_mlp(self, center, a, b, zc, z1, z2, out, point_loss)
        return evaluate_vmap(self, center, a, b, bufs, out, point_loss)

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
