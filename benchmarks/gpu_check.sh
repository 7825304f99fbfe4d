#!/usr/bin/env bash
# One-shot CUDA check of llstudio on a fresh GPU machine (written for an NVIDIA H200; any CUDA GPU works).
#
#     bash benchmarks/gpu_check.sh            # from anywhere; outputs under $OUT (default /tmp/gpu_out)
#
# Steps, each with its own timeout, none stopping the others (a failed step prints "FAILED <step>"):
#   0. llstudio from this checkout on PYTHONPATH, with wheels carried in .whl/ (no registry is reachable there)
#   1. nvidia-smi, torch / CUDA / cuDNN / TF32 settings
#   2. correctness: LandscapeEvaluator on CUDA (float32) against llstudio.landscape.reference.reference_grid on CUDA and
#      against a float64 CPU reference: small MLP (mlp, linear_first and vmap strategies, both losses), the small
#      CNN with BatchNorm in the eval, train and recompute_bn modes, fixed dropout masks; with cuDNN's default TF32
#      convolutions and with TF32 off; plus Hessian extreme eigenvalues and hessian_directions on CUDA against
#      float64 CPU. Exit status 1 (and a PROBLEMS list) when TF32-free float32 misses float64 by > 1e-4
#   3. python benchmarks/capture.py --device cuda --case mlp --case cnn --case resnet
#   4. llstudio doctor, and one still off-screen (scenes/digits_ride.toml, -q l, frame 5) captured on CUDA
# Budget: the default timeouts add up to about 8 minutes (step 0 not counted; a normal run takes far less); override with T_<STEP>=seconds.
# Everything a step prints goes to $OUT/<step>.txt as well as to the terminal; $OUT/summary.txt lists the steps.

set -u
OUT="${OUT:-/tmp/gpu_out}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.." || exit 1
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
# The capture cache of this run only: a fresh machine has none, and an old one must not answer for CUDA.
export LLSTUDIO_CACHE="${LLSTUDIO_CACHE:-$(mktemp -d /tmp/llstudio_gpu_cache.XXXXXX)}"
export PYTHONUNBUFFERED=1

step() {  # step NAME TIMEOUT_S COMMAND...: run with a timeout, tee to $OUT/NAME.txt, record the result
    local name=$1 limit=$2
    shift 2
    echo "=== $name (timeout ${limit}s): $*"
    local t0=$SECONDS rc
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ]; then
        echo "ok      $name ($((SECONDS - t0)) s)" >> "$SUMMARY"
    else
        echo "FAILED $name (rc $rc$([ "$rc" -eq 124 ] && echo ', timed out'), $((SECONDS - t0)) s)" | tee -a "$SUMMARY"
    fi
    return "$rc"
}

# 0. make llstudio importable --------------------------------------------------------------------------------
# The GPU machines lent here reach no package registry: their image has torch, numpy, scipy, scikit-learn, rich and
# pillow, but not pydantic, pyvista/vtk or imageio-ffmpeg. Carry pydantic as wheels in .whl/ (a few MB; see the
# device tool's README for the pip download line: pydantic, pydantic-core, annotated-types, typing-inspection);
# vtk's wheel is larger than a call may carry, so step 4 runs only where pyvista is already installed.
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
PY=python3
command -v python3 >/dev/null 2>&1 || PY=python
if ls .whl/*.whl >/dev/null 2>&1; then
    step wheels "${T_INSTALL:-120}" "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl || echo "FAILED step wheels"
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # llstudio from this checkout, no install needed
"$PY" -c "import llstudio.config.scene, torch" || echo "FAILED step import (carry pydantic's wheels in .whl/)"

# 1. machine and torch -----------------------------------------------------------------------------------------
step nvidia_smi "${T_SMI:-20}" nvidia-smi || echo "FAILED step nvidia_smi"
step torch_info "${T_INFO:-45}" "$PY" - <<'EOF' || echo "FAILED step torch_info"
import torch
print("torch", torch.__version__, "built for CUDA", torch.version.cuda, "| cuDNN", torch.backends.cudnn.version())
print("cuda available:", torch.cuda.is_available(), "| devices:", torch.cuda.device_count())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device 0:", p.name, f"| {p.total_memory / 2**30:.1f} GiB | capability {p.major}.{p.minor} | {p.multi_processor_count} SMs")
    free, total = torch.cuda.mem_get_info()
    print(f"free memory {free / 2**30:.1f} of {total / 2**30:.1f} GiB")
print("TF32 defaults: cudnn.allow_tf32 =", torch.backends.cudnn.allow_tf32,
      "| cuda.matmul.allow_tf32 =", torch.backends.cuda.matmul.allow_tf32,
      "| float32_matmul_precision =", torch.get_float32_matmul_precision())
print("cudnn.benchmark =", torch.backends.cudnn.benchmark, "| deterministic =", torch.backends.cudnn.deterministic)
print("CPU threads:", torch.get_num_threads())
EOF

# 2. correctness -----------------------------------------------------------------------------------------------
CHECK_PY="$OUT/gpu_correctness.py"
cat > "$CHECK_PY" <<'EOF'
"""LandscapeEvaluator on CUDA vs llstudio.landscape.reference.reference_grid (CUDA float32, and CPU float64 as ground truth)."""
import copy
import os
import time

import numpy as np
import torch
from torch import nn

from llstudio.landscape.curvature import HessianOperator, extreme_eigenpairs, hessian_directions
from llstudio.landscape.evaluator import LandscapeEvaluator
from llstudio.landscape.reference import reference_grid
from llstudio.train.models import build_model, loss_fn
from llstudio.config.scene import ModelSpec

DEV = torch.device(os.environ.get("GPU_CHECK_DEVICE", "cuda"))
CPU, F32, F64 = torch.device("cpu"), torch.float32, torch.float64
ALPHAS, BETAS = np.linspace(-0.8, 0.5, 5), np.linspace(-0.4, 0.9, 4)  # non-square: a transpose cannot pass
TOL32 = 1e-4  # float32 vs float64: a few 1e-6 expected; above 1e-4 is reported as a problem
worst = {"tf32": 0.0, "fp32": 0.0}
problems = []


def rel(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))


def cast(d, device, dtype):
    return {k: v.to(device=device, dtype=dtype) for k, v in d.items()}


def plane(model, seed, scale=0.3, spread=0.1):
    """A centre near the model's weights and two dense random directions (biases included), float64 CPU."""
    g = torch.Generator().manual_seed(seed)
    ps = dict(model.named_parameters())
    c = {k: p.detach().double() + spread * torch.randn(p.shape, generator=g, dtype=F64) for k, p in ps.items()}
    d1 = {k: scale * torch.randn(p.shape, generator=g, dtype=F64) for k, p in ps.items()}
    d2 = {k: scale * torch.randn(p.shape, generator=g, dtype=F64) for k, p in ps.items()}
    return c, d1, d2


def batch_norms(m):
    return [x for x in m.modules() if isinstance(x, nn.modules.batchnorm._BatchNorm)]


def reference_model(model, mode, device, dtype, stats, bn_x):
    """The unmodified torch model as the plain loop runs it: eval with ``stats`` as running statistics, train
    (batch statistics), or recompute_bn (a forward pre-hook recomputes the statistics from bn_x at every point)."""
    m = copy.deepcopy(model).to(device=device, dtype=dtype)
    with torch.no_grad():
        for k, t in m.named_buffers():
            if k in stats:
                t.copy_(stats[k])
    if mode == "train":
        return m.train()
    m.eval()
    if mode == "recompute_bn":
        xb, busy = bn_x.to(device=device, dtype=dtype), [False]

        def hook(mod, args):
            if busy[0]:
                return None
            busy[0] = True
            try:
                for bn in batch_norms(mod):
                    bn.reset_running_stats()
                    bn.momentum = None  # cumulative average: after one batch, exactly its statistics
                mod.train()
                mod(xb)
                mod.eval()
            finally:
                busy[0] = False
        m.register_forward_pre_hook(hook)
    return m


def case(name, model, x, y, loss_kind, n_classes, strategy="auto", mode="eval", bn_x=None, stats=None,
         dropout="off", seed=0):
    stats = stats or {}
    loss = loss_fn(loss_kind, n_classes)
    c, d1, d2 = plane(model, seed)
    t0 = time.perf_counter()
    # Ground truth: the plain loop in float64 on the CPU (or the evaluator there, for fixed dropout masks).
    if dropout == "off":
        m64 = reference_model(model, mode, CPU, F64, stats, bn_x)
        truth = reference_grid(m64, c, d1, d2, ALPHAS, BETAS, x.double(), y, loss)
    else:
        ev64 = LandscapeEvaluator(copy.deepcopy(model), x, y, loss, d1, d2, CPU, F64, mode=mode, bn_x=bn_x,
                                  dropout=dropout, threads=1)
        masks64 = ev64.dropout_masks([7, 3, 1])
        truth = ev64.grid(c, ALPHAS, BETAS, buffers=stats, masks=masks64)
    out = []
    for label, tf32 in (("tf32", True), ("fp32", False)):
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, benchmark=torch.backends.cudnn.benchmark,
                                        deterministic=torch.backends.cudnn.deterministic, allow_tf32=tf32):
            ev = LandscapeEvaluator(copy.deepcopy(model), x, y, loss, d1, d2, DEV, F32, strategy=strategy, mode=mode,
                                    bn_x=bn_x, dropout=dropout)
            kw = {}
            if dropout != "off":
                masks = ev.dropout_masks([7, 3, 1])
                same = all(torch.equal(masks[k].cpu(), masks64[k].float()) for k in masks64)
                if not same:
                    problems.append(f"{name}: dropout masks differ between CPU and {DEV}")
                kw["masks"] = masks
            got = ev.grid(c, ALPHAS, BETAS, buffers=stats, **kw)
            each = ev.grid(c, ALPHAS, BETAS, buffers=stats, reduction="none", **kw)
            ref = None
            if dropout == "off":  # the plain loop on the GPU in float32, as benchmarks/capture.py runs it
                m32 = reference_model(model, mode, DEV, F32, stats, bn_x)
                ref = reference_grid(m32, cast(c, DEV, F32), cast(d1, DEV, F32), cast(d2, DEV, F32), ALPHAS, BETAS,
                                     x.to(DEV, F32), y.to(DEV), loss)
        r_truth, r_each = rel(got, truth), rel(each.mean(axis=0), got)
        r_ref = rel(got, ref) if ref is not None else float("nan")
        worst[label] = max(worst[label], r_truth)
        if not np.all(np.isfinite(got)):
            problems.append(f"{name} [{label}]: non-finite losses")
        if label == "fp32" and not r_truth <= TOL32:
            problems.append(f"{name} [fp32]: max rel diff to float64 {r_truth:.2e} > {TOL32:g}")
        if not r_each <= 1e-5:
            problems.append(f"{name} [{label}]: reduction='none' averaged differs from the mean by {r_each:.2e}")
        out.append(f"{label}: vs loop on {DEV.type} {r_ref:9.2e}  vs f64 CPU {r_truth:9.2e}  none.mean vs mean "
                   f"{r_each:9.2e}")
    print(f"{name:42s} {ev.strategy:12s} chunk {ev.chunk:5d}  " + " | ".join(out)
          + f"  ({time.perf_counter() - t0:.1f} s)", flush=True)


def data(shape, n, seed, classes):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g, dtype=F32), torch.randint(0, classes, (n,), generator=g)


def hessian(name, model, x, y, mode="eval", bn_x=None, stats=None):
    loss = loss_fn("cross_entropy", 10)
    c, _, _ = plane(model, 5)
    vals = {}
    for label, device, dtype, tf32 in (("f64 cpu", CPU, F64, True), ("f32 tf32", DEV, F32, True),
                                       ("f32", DEV, F32, False)):
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=tf32):
            op = HessianOperator(copy.deepcopy(model), x, y, loss, device, dtype, mode=mode, bn_x=bn_x)
            op.set_buffers(stats or {})
            lo, hi, _, _, ok = extreme_eigenpairs(op, op.flatten(c), tol=1e-4)
        vals[label] = (lo, hi, ok, op.products)
    base = vals["f64 cpu"]
    text = "  ".join(f"{k}: min {v[0]:+.5e} max {v[1]:+.5e} ({v[3]} HVPs{'' if v[2] else ', NOT converged'})"
                     for k, v in vals.items())
    print(f"hessian {name:34s} {text}")
    for k in ("f32 tf32", "f32"):
        r = max(abs(vals[k][i] - base[i]) / max(abs(base[1]), 1e-30) for i in (0, 1))
        print(f"    {k}: eigenvalue diff relative to |lambda_max| {r:.2e}")
        if k == "f32" and base[2] and not r <= 1e-3:  # NaN (not converged) counts as a problem too
            problems.append(f"hessian {name} [f32]: eigenvalues differ by {r:.2e} of |lambda_max|")


def main():
    print(f"device {DEV}" + (f" ({torch.cuda.get_device_name(0)})" if DEV.type == "cuda" else ""))
    # MLPs: every strategy, both losses; N = 8 runs the hidden layers in shared form (landscape.shared_linear), N = 200 not.
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5))
    for n in (8, 200):
        x, y = data((20,), n, n, 5)
        for strategy in ("mlp", "linear_first", "vmap"):
            for loss_kind in ("cross_entropy", "mse"):
                case(f"mlp N={n} {loss_kind}", mlp, x, y, loss_kind, 5, strategy=strategy)
    # The small CNN with BatchNorm (no dropout, so the loop's train mode is BatchNorm's alone), every mode.
    torch.manual_seed(0)
    cnn = build_model(ModelSpec(kind="cnn", width=2, batch_norm=True, dropout=0.0), (1, 8, 8), 10)
    x, y = data((1, 8, 8), 6, 1, 10)
    bn_x = data((1, 8, 8), 9, 2, 10)[0]
    g = torch.Generator().manual_seed(3)
    stats = {k: (0.3 * torch.randn(v.shape, generator=g) if k.endswith("running_mean")
                 else 0.5 + torch.rand(v.shape, generator=g))
             for k, v in cnn.named_buffers() if k.endswith(("running_mean", "running_var"))}
    for mode in ("eval", "train", "recompute_bn"):
        case(f"cnn+bn N=6 {mode}", cnn, x, y, "cross_entropy", 10, mode=mode,
             bn_x=bn_x if mode == "recompute_bn" else None, stats=stats)
    # The MNIST-sized CNN (9216 -> 128 classifier in shared form), eval.
    torch.manual_seed(0)
    big = build_model(ModelSpec(kind="cnn", dropout=0.0), (1, 28, 28), 10)
    x, y = data((1, 28, 28), 8, 4, 10)
    case("mnist-cnn N=8 eval", big, x, y, "cross_entropy", 10)
    # Fixed dropout masks (drawn with numpy: the same on every device), on the default CNN and an MLP with dropout.
    torch.manual_seed(1)
    dcnn = build_model(ModelSpec(kind="cnn", width=2), (1, 8, 8), 10)
    x, y = data((1, 8, 8), 6, 5, 10)
    case("cnn dropout=fixed", dcnn, x, y, "cross_entropy", 10, dropout="fixed")
    torch.manual_seed(2)
    dmlp = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 5))
    x, y = data((20,), 16, 6, 5)
    case("mlp dropout=fixed", dmlp, x, y, "cross_entropy", 5, dropout="fixed")
    # Curvature: extreme Hessian eigenvalues on the device against float64 CPU.
    x, y = data((1, 8, 8), 6, 1, 10)
    for mode in ("eval", "train", "recompute_bn"):
        hessian(f"cnn+bn {mode}", cnn, x, y, mode=mode, bn_x=bn_x if mode == "recompute_bn" else None, stats=stats)
    # Hessian directions as directions.kind = 'hessian' computes them (ARPACK tol 1e-10), restarts capped here.
    for label, device, dtype, tf32 in (("f64 cpu", CPU, F64, True), ("f32 tf32", DEV, F32, True),
                                       ("f32", DEV, F32, False)):
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=tf32):
            op = HessianOperator(copy.deepcopy(cnn), x, y, loss_fn("cross_entropy", 10), device, dtype)
            op.set_buffers(stats)
            t0 = time.perf_counter()
            try:
                _, _, ev2 = hessian_directions(op, plane(cnn, 5)[0], max_iterations=100)
                text = f"eigenvalues {ev2[0]:+.6e} {ev2[1]:+.6e}"
            except Exception as exc:  # ArpackNoConvergence: what directions.kind = 'hessian' would hit
                text = f"{type(exc).__name__}: {str(exc)[:80]}"
        print(f"hessian_directions cnn+bn eval {label:9s} {text} ({op.products} HVPs, {time.perf_counter() - t0:.1f} s)")
    print(f"worst max rel diff to float64: with TF32 convolutions {worst['tf32']:.2e}, without {worst['fp32']:.2e}")
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        raise SystemExit(1)
    print("all correctness checks passed")


main()
EOF
step correctness "${T_CHECK:-120}" "$PY" "$CHECK_PY" || echo "FAILED step correctness"

# 3. capture benchmark -----------------------------------------------------------------------------------------
step bench_capture "${T_BENCH:-170}" "$PY" benchmarks/capture.py --device cuda --case mlp --case cnn --case resnet \
    || echo "FAILED step bench_capture"

# 4. doctor and one still off-screen ---------------------------------------------------------------------------
export PYVISTA_OFF_SCREEN=true
if ! "$PY" -c "import pyvista" >/dev/null 2>&1; then
    echo "skipped doctor and still: pyvista is not installed here" | tee -a "$SUMMARY"
else
step doctor "${T_DOCTOR:-40}" "$PY" -m llstudio doctor || echo "FAILED step doctor"
step still "${T_STILL:-100}" "$PY" -m llstudio still scenes/digits_ride.toml -q l --frame 5 -o "$OUT/still.png" \
    --device cuda --progress none || echo "FAILED step still"
fi

echo "=== summary ($OUT/summary.txt)"
cat "$SUMMARY"
