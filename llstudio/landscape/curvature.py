"""Curvature of the loss: Hessian-vector products, min/max Hessian eigenvalues on a grid, Hessian directions.

The Hessian is that of the evaluation loss with respect to *all* parameters of the model (weights, biases,
normalisation parameters), at the weights given. It is never formed: every product ``H v`` is one backward pass
through the gradient's graph (reverse over reverse, the graph built once per point), and ARPACK's Lanczos method
(``scipy.sparse.linalg.eigsh``) finds the extreme eigenvalues from such products. ``which="BE"`` asks for both
ends of the spectrum from one Krylov space, so one run per grid point gives the minimum and the maximum
eigenvalue. Grid points are visited in a snake order so that each one starts from the eigenvectors of the point
just before it (its neighbour), which the Lanczos iteration converges from in far fewer products than from a
random vector.

The convexity ratio ``|lambda_min / lambda_max|`` is the map of Li et al. (2018, fig. 7) and losslandscape.com:
near 0 where the surface is locally convex (negative curvature tiny next to the positive one), large where it is
not.

This module knows nothing of files or pixels; it runs on whatever device the tensors it is given live on.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Optional

import numpy as np
import torch
from scipy.interpolate import RegularGridInterpolator
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from torch import nn
from torch.func import functional_call

from ..device import exact_float32
from .batchnorm import capture_batch_norm, set_mode

# Below this many parameters ARPACK does not apply (it needs k < ncv <= n); the Hessian is then formed whole.
_DENSE_BELOW = 8


class NonFiniteCurvature(ArithmeticError):
    """A Hessian-vector product was NaN or infinite (the weights or the loss there are not finite)."""


def _math_attention():
    """Fused scaled-dot-product attention kernels have no double backward: force the math one for HVPs."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch < 2.3
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


class HessianOperator:
    """Hessian-vector products of ``loss(model(x), y)`` with respect to all the model's parameters.

    ``model`` gives the architecture (its current weights are not used); ``x`` (n, ...) and ``y`` (n,) the data;
    ``loss`` maps (outputs (n, C), targets (n,)) to a scalar. Parameters are handled as one flat vector of length
    ``n_params``, in the order of ``model.named_parameters()``; :meth:`flatten` and :meth:`unflatten` convert.
    Everything lives on ``device`` in ``dtype``. ``mode`` is the loss capture's ``capture.mode``, so the Hessian is
    that of the function the landscape shows: BatchNorm normalises with the running statistics ('eval', those
    passed to :meth:`set_buffers`), with the evaluated batch's statistics ('train'), or with statistics recomputed
    from ``bn_x`` at every point ('recompute_bn'); the statistics then depend on the weights, and the Hessian
    differentiates through them. Dropout is off, as in the loss capture.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: Callable,
                 device: torch.device, dtype: torch.dtype, mode: str = "eval",
                 bn_x: Optional[torch.Tensor] = None):
        self.device, self.dtype = torch.device(device), dtype
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.bn_state = capture_batch_norm(self.model, mode, bn_x)
        self.mode = mode
        self.bn_x = None if bn_x is None else bn_x.to(device=self.device, dtype=dtype)
        self.loss = loss
        self.names = [k for k, _ in self.model.named_parameters()]
        self.shapes = [p.shape for _, p in self.model.named_parameters()]
        self.sizes = [p.numel() for _, p in self.model.named_parameters()]
        self.n_params = int(sum(self.sizes))
        self.buffers = {k: v for k, v in self.model.named_buffers()}
        self.products = 0  # Hessian-vector products computed so far (a cost measure)
        self.set_data(x, y)

    def set_buffers(self, buffers: dict[str, torch.Tensor]) -> None:
        """Use these buffers (e.g. a captured step's BatchNorm running statistics) instead of the model's own;
        names not given keep the model's values."""
        own = dict(self.model.named_buffers())
        self.buffers = {k: (buffers[k].to(device=self.device, dtype=v.dtype) if k in buffers else v)
                        for k, v in own.items()}

    def set_data(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Differentiate the loss on other samples from now on (e.g. a step's mini-batch)."""
        self.x = x.to(device=self.device, dtype=self.dtype)
        self.y = y.to(device=self.device)

    # flat vectors ----------------------------------------------------------------------------------------
    def flatten(self, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """``name → tensor`` → (n_params,) on the device, in the operator's dtype."""
        return torch.cat([weights[k].to(device=self.device, dtype=self.dtype).reshape(-1) for k in self.names])

    def unflatten(self, vec: torch.Tensor) -> dict[str, torch.Tensor]:
        """(n_params,) → ``name → tensor`` shaped like the parameters (views of ``vec``)."""
        return {k: t.view(s) for k, t, s in zip(self.names, torch.split(vec, self.sizes), self.shapes)}

    # products --------------------------------------------------------------------------------------------
    def loss_at(self, theta: torch.Tensor) -> torch.Tensor:
        """The loss at flat weights ``theta`` (n_params,), a 0-d tensor."""
        params = self.unflatten(theta)
        set_mode(self.bn_state, self.mode, lambda: functional_call(self.model, (params, self.buffers), (self.bn_x,)))
        return self.loss(functional_call(self.model, (params, self.buffers), (self.x,)), self.y)

    def at(self, theta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``v ↦ H(theta) @ v`` for vectors ``v`` (n_params,).

        The gradient's graph is built once (one forward and one backward pass with ``create_graph``) and every
        product is then one backward pass through it (reverse over reverse). On a CPU this costs a fifth of a
        ``torch.func.jvp(grad(f))`` per product, whose Python-side tracing is repeated for every call.
        """
        t = theta.detach().requires_grad_(True)
        # The attention kernel is chosen in the forward pass; its backward must itself be differentiable.
        with torch.enable_grad(), _math_attention(), exact_float32(self.device):
            g, = torch.autograd.grad(self.loss_at(t), t, create_graph=True)
        if not g.requires_grad:  # the loss is linear in every parameter: the Hessian is zero
            return lambda v: torch.zeros_like(t)

        def product(v: torch.Tensor) -> torch.Tensor:
            with exact_float32(self.device):
                hv, = torch.autograd.grad(g, t, v, retain_graph=True, allow_unused=True)
            self.products += 1
            return torch.zeros_like(t) if hv is None else hv.detach()

        return product

    def hvp(self, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``H(theta) @ v`` for ``v`` (n_params,) or a block ``(m, n_params)`` (one product per row)."""
        product = self.at(theta)
        return product(v) if v.dim() == 1 else torch.stack([product(u) for u in v])

    def dense(self, theta: torch.Tensor) -> torch.Tensor:
        """The whole Hessian (n_params, n_params), from n_params products: for tiny models and tests only."""
        h = self.hvp(theta, torch.eye(self.n_params, device=self.device, dtype=self.dtype))
        return 0.5 * (h + h.T)

    def linear_operator(self, theta: torch.Tensor):
        """``H(theta)`` as a float64 scipy LinearOperator; raises :class:`NonFiniteCurvature` on NaN/inf."""
        product = self.at(theta)

        def matvec(v):
            u = torch.as_tensor(np.ascontiguousarray(v, dtype=np.float64).reshape(-1)).to(self.device, self.dtype)
            hv = product(u)
            if not bool(torch.isfinite(hv).all()):
                raise NonFiniteCurvature("Hessian-vector product is not finite")
            return hv.double().cpu().numpy()

        return LinearOperator((self.n_params, self.n_params), matvec=matvec, dtype=np.float64)


# --------------------------------------------------------------------------------------------- eigenvalues


def _start_vector(n: int, rng: np.random.Generator, warm: Optional[np.ndarray]) -> np.ndarray:
    """ARPACK's starting vector: the warm start (the neighbour's eigenvectors summed, so the Krylov space holds
    both ends of the spectrum from the first step) plus a little noise that keeps it from being exactly
    deficient in some eigen-direction; a seeded random vector without one."""
    v = rng.standard_normal(n)
    if warm is not None and np.all(np.isfinite(warm)) and np.linalg.norm(warm) > 0:
        w = warm / np.linalg.norm(warm)
        v = w + 1e-3 * v / np.linalg.norm(v)
    return v / np.linalg.norm(v)


def extreme_eigenpairs(op: HessianOperator, theta: torch.Tensor, tol: float = 1e-3, max_iterations: int = 300,
                       warm: Optional[np.ndarray] = None, rng: Optional[np.random.Generator] = None):
    """Minimum and maximum eigenvalue of ``H(theta)`` and their eigenvectors.

    Returns ``(lam_min, lam_max, u_min (n,), u_max (n,), converged)``; ``tol`` is ARPACK's relative accuracy of
    the eigenvalues, ``max_iterations`` its number of restarts; ``warm`` (n,) a starting vector. Raises
    :class:`NonFiniteCurvature` when the Hessian there is not finite. Without convergence the values are NaN.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    n = op.n_params
    if n < _DENSE_BELOW:
        h = op.dense(theta).double()
        if not bool(torch.isfinite(h).all()):
            raise NonFiniteCurvature("Hessian is not finite")
        vals, vecs = torch.linalg.eigh(h)
        vecs = vecs.cpu().numpy()
        return float(vals[0]), float(vals[-1]), vecs[:, 0], vecs[:, -1], True
    try:
        vals, vecs = eigsh(op.linear_operator(theta), k=2, which="BE", v0=_start_vector(n, rng, warm), tol=tol,
                           maxiter=max_iterations, ncv=min(n, 20))
    except ArpackNoConvergence:
        nan = np.full(n, np.nan)
        return float("nan"), float("nan"), nan, nan, False
    order = np.argsort(vals)
    return float(vals[order[0]]), float(vals[order[-1]]), vecs[:, order[0]], vecs[:, order[-1]], True


def snake_order(cx: int, cy: int) -> list[tuple[int, int]]:
    """Grid indices (i, j) row by row, every other row reversed, so consecutive points are neighbours."""
    return [(i, j) for i in range(cx) for j in (range(cy) if i % 2 == 0 else range(cy - 1, -1, -1))]


def curvature_grid(op: HessianOperator, center: dict[str, torch.Tensor], d1: dict[str, torch.Tensor],
                   d2: dict[str, torch.Tensor], alphas: np.ndarray, betas: np.ndarray, tol: float = 1e-3,
                   max_iterations: int = 300, seed: int = 0, state: Optional[dict[str, np.ndarray]] = None,
                   on_point: Optional[Callable[[], None]] = None,
                   on_row: Optional[Callable[[dict[str, np.ndarray]], None]] = None) -> dict[str, np.ndarray]:
    """Min and max Hessian eigenvalue at every point ``center + alphas[i]*d1 + betas[j]*d2``.

    Returns ``{"curv_min", "curv_max" (cx, cy) float64, NaN where not computed, not finite or not converged;
    "done" (cx, cy) bool, the points visited; "converged" (cx, cy) bool}`` with 'ij' indexing. ``state``, a
    previous (partial) result of the same call, is resumed: its done points are kept. ``on_row`` receives the
    result so far after every row of the snake (to save it), ``on_point`` is called after every point.
    """
    cx, cy = len(alphas), len(betas)
    if state is None:
        state = {"curv_min": np.full((cx, cy), np.nan), "curv_max": np.full((cx, cy), np.nan),
                 "done": np.zeros((cx, cy), bool), "converged": np.zeros((cx, cy), bool)}
    else:
        state = {k: np.array(state[k]) for k in ("curv_min", "curv_max", "done", "converged")}
    c, u1, u2 = op.flatten(center), op.flatten(d1), op.flatten(d2)
    rng = np.random.default_rng(seed)
    warm: Optional[np.ndarray] = None
    order = snake_order(cx, cy)
    for n, (i, j) in enumerate(order):
        if state["done"][i, j]:
            continue
        # Formed fresh from the centre, never walked: no rounding error accumulates along the grid.
        theta = c + float(alphas[i]) * u1 + float(betas[j]) * u2
        try:
            lo, hi, vlo, vhi, ok = extreme_eigenpairs(op, theta, tol, max_iterations, warm, rng)
        except NonFiniteCurvature:
            lo = hi = float("nan")
            vlo = vhi = None
            ok = False
        state["curv_min"][i, j], state["curv_max"][i, j] = lo, hi
        state["converged"][i, j], state["done"][i, j] = ok, True
        warm = vlo + vhi if ok else None
        if on_point is not None:
            on_point()
        if on_row is not None and (n + 1) % cy == 0:
            on_row(state)
    return state


def convexity_ratio(curv_min: np.ndarray, curv_max: np.ndarray) -> np.ndarray:
    """``|lambda_min / lambda_max|`` elementwise; NaN where either is NaN or lambda_max is 0."""
    lo, hi = np.asarray(curv_min, np.float64), np.asarray(curv_max, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.abs(lo / hi)
    return np.where(np.isfinite(r), r, np.nan)


def resample(values: np.ndarray, src_alphas: np.ndarray, src_betas: np.ndarray, alphas: np.ndarray,
             betas: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``values`` (K, cx, cy) on (src_alphas, src_betas) onto (K, nx, ny) on
    (alphas, betas). NaN points spread NaN to the cells around them."""
    A, B = np.meshgrid(alphas, betas, indexing="ij")
    pts = np.column_stack([A.ravel(), B.ravel()])
    out = np.empty((len(values), len(alphas), len(betas)))
    for k, v in enumerate(values):
        f = RegularGridInterpolator((src_alphas, src_betas), np.asarray(v, np.float64), bounds_error=False,
                                    fill_value=None)
        out[k] = f(pts).reshape(len(alphas), len(betas))
    return out


# ---------------------------------------------------------------------------------------------- directions


def hessian_directions(op: HessianOperator, weights: dict[str, torch.Tensor], which: str = "algebraic",
                       tol: float = 1e-10, seed: int = 0, max_iterations: Optional[int] = None):
    """The top two Hessian eigenvectors at ``weights``, as orthonormal directions.

    ``which``: 'algebraic' (the two largest eigenvalues) or 'magnitude' (the two largest in absolute value).
    Returns ``(d1, d2, eigenvalues (2,))`` with ``d1``, ``d2`` dicts ``name → tensor`` (CPU, shaped like the
    parameters, unit norm, orthogonal), ordered by decreasing eigenvalue (or magnitude). An eigenvector's sign is
    arbitrary: each is flipped so that its entry of largest magnitude is positive, so a scene always gives the
    same film.
    """
    if which not in ("algebraic", "magnitude"):
        raise ValueError(f"which must be 'algebraic' or 'magnitude', not {which!r}")
    theta = op.flatten(weights)
    n = op.n_params
    if n < _DENSE_BELOW:
        vals, vecs = (t.cpu().numpy() for t in torch.linalg.eigh(op.dense(theta).double()))
    else:
        v0 = _start_vector(n, np.random.default_rng(seed), None)
        vals, vecs = eigsh(op.linear_operator(theta), k=2, which="LA" if which == "algebraic" else "LM", v0=v0,
                           tol=tol, maxiter=max_iterations, ncv=min(n, 24))
    key = vals if which == "algebraic" else np.abs(vals)
    order = np.argsort(-key, kind="stable")[:2]
    vals, vecs = vals[order], vecs[:, order]
    # ARPACK's vectors are orthonormal to its tolerance; make them so to rounding (a QR keeps the first direction).
    q, r = np.linalg.qr(vecs)
    q = q * np.sign(np.diag(r))
    out = []
    for m in range(2):
        v = q[:, m]
        if v[np.argmax(np.abs(v))] < 0:
            v = -v
        flat = torch.from_numpy(np.ascontiguousarray(v))
        out.append({k: t.view(s).to(weights[k].dtype).clone()
                    for k, t, s in zip(op.names, torch.split(flat, op.sizes), op.shapes)})
    return out[0], out[1], np.asarray(vals, np.float64)
