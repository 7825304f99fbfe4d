"""Grid evaluation speed: llstudio's batched capture against a plain per-point loop, in the same run.

    python benchmarks/capture.py                 # 41x41 grid, CPU (or --device cuda)
    python benchmarks/capture.py --grid 21       # quicker

For each case the same model, data, centre, directions and grid are evaluated twice: by
``llstudio.landscape.reference.reference_grid`` (set the weights, forward pass, one point at a time) and by
``LandscapeEvaluator.grid``. The table prints points/s of each, their ratio, and the largest relative difference
between the two results (they must agree: the fast path is only useful if it is right).

Inputs are seeded random images (timings do not depend on pixel values). The models: the 784-50-500-10 sigmoid MLP
without biases of the "gradient descent and loss landscape animations" write-up, with MSE loss; the small MNIST CNN
of "Visualising the loss landscape" (1,199,882 weights, 28x28 inputs, cross-entropy); a reduced torchvision
ResNet-10 (base width 16, BatchNorm, 3x32x32 inputs), captured in 'eval' mode (running statistics) and in 'train'
mode (batch statistics; the loop then runs the model in train mode). N, the number of evaluation samples, is part
of each case's name; conv cases use few samples so that the plain loop finishes on a CPU.

On CPU the evaluator splits grid points across torch.get_num_threads() worker threads (--threads overrides);
the plain loop runs as torch is configured. Other processes on the machine slow both, the loop's two-thread
kernels much more: run it several times and read the ratio, not the absolute numbers.

The plain loop is timed after a warm-up of a few points, as the evaluator is. It allocates its activations afresh
at every point, so its speed depends on glibc's allocator: with ``--allocator warm`` (the default) the mmap
threshold is fixed at 32 MiB for the whole run (``llstudio.allocator.tune``, as the command line does), so the
loop's 2 MB activations are reused heap memory; ``--allocator default`` leaves glibc as it is, and then the first
case's loop runs at about half speed (every activation page-faulted in afresh) and later cases depend on what ran
before. The warm loop is the faster, so its ratios are the conservative ones. torch's thread count is set
explicitly at start (MKL otherwise chooses its threads dynamically until the first ``set_num_threads``).

The loop's speed wanders on a shared machine (by a factor of 1.5 between runs a second apart, measured on the
2-core target), so the two are timed in turns: the grid's rows are cut into ``--blocks`` slices (default 6), and
each slice is evaluated by the loop and then by llstudio. llstudio then pays its once-per-grid setup once per
slice, a few percent against it.

With ``--repeat R`` each case's rows are followed by a summary: the medians of both rates and of the ratios, and
the range of the ratios.

--floor (CPU) adds two columns to the full-MLP cases: the points/s of the per-point work the 'mlp' strategy
cannot skip, alone (every layer after the first: its product into a reused buffer, feature-major as the evaluator
computes it, and its activation, on the evaluator's worker threads, with no weights formed per point, no loss and
no bookkeeping), and its ratio to the loop: the ceiling of the evaluator's ratio on that machine, in that run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from llstudio import allocator
from llstudio.landscape.evaluator import LandscapeEvaluator
from llstudio.landscape.mlp import _ELEMENTWISE
from llstudio.landscape.reference import reference_grid
from llstudio.device import resolve_device
from llstudio.landscape.directions import random_directions, weight_directions
from llstudio.train.models import build_model, loss_fn
from llstudio.config.scene import DirectionsSpec, ModelSpec


def mlp_784_50_500_10() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 50, bias=False), nn.Sigmoid(),
                         nn.Linear(50, 500, bias=False), nn.Sigmoid(), nn.Linear(500, 10, bias=False))


def mnist_cnn() -> nn.Module:
    return build_model(ModelSpec(kind="cnn"), (1, 28, 28), 10)


def resnet10_w16() -> nn.Module:
    return build_model(ModelSpec(kind="resnet", width=16, depth=1), (3, 32, 32), 10)


# name → (model factory, N, loss, input shape, capture mode)
CASES = {
    "mlp-784-50-500-10 N=100": (mlp_784_50_500_10, 100, "mse", (1, 28, 28), "eval"),
    "mlp-784-50-500-10 N=1000": (mlp_784_50_500_10, 1000, "mse", (1, 28, 28), "eval"),
    # As in that write-up: two named weights of the output layer, every other layer computed once per centre.
    "mlp N=1000 two out weights": (mlp_784_50_500_10, 1000, "mse", (1, 28, 28), "eval",
                                   ["5.weight[5,250]", "5.weight[3,100]"]),
    "mnist-cnn N=8": (mnist_cnn, 8, "cross_entropy", (1, 28, 28), "eval"),
    "resnet10-w16 N=4 eval": (resnet10_w16, 4, "cross_entropy", (3, 32, 32), "eval"),
    "resnet10-w16 N=4 train": (resnet10_w16, 4, "cross_entropy", (3, 32, 32), "train"),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def floor_rate(model: nn.Sequential, x: torch.Tensor, center: dict, points: int, threads: int) -> float:
    """Points/s of the layers after the first alone, as the 'mlp' strategy computes them (see --floor)."""
    named = [(k, m) for k, m in model.named_children() if not isinstance(m, nn.Flatten)]
    (first, _), rest = named[0], named[1:]
    z = (x.flatten(1) @ center[f"{first}.weight"].T).T.contiguous()  # the first layer's output, (features, n)

    def work(count):
        torch.set_num_threads(1)
        bufs = {"z": torch.empty_like(z)}
        with torch.no_grad():
            for _ in range(count):
                h = bufs["z"].copy_(z)  # stands for c + a*d1 + b*d2 of the first layer's output
                for name, m in rest:
                    if not isinstance(m, nn.Linear):
                        h = _ELEMENTWISE[type(m)](h, m)
                        continue
                    w = center[f"{name}.weight"]
                    out = bufs.setdefault(name, torch.empty(w.shape[0], h.shape[1], dtype=h.dtype))
                    if m.bias is None:
                        torch.mm(w, h, out=out)
                    else:
                        torch.addmm(center[f"{name}.bias"].unsqueeze(1), w, h, out=out)
                    h = out

    before = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(threads) as pool:
            for f in [pool.submit(work, points // threads + (i < points % threads)) for i in range(threads)]:
                f.result()
    finally:
        torch.set_num_threads(before)
    return points / (time.perf_counter() - t0)


def run_case(name, factory, n, loss_kind, shape, mode, grid, device, dtype, strategy, threads=None, weights=None,
             floor=False, blocks=6):
    torch.manual_seed(0)
    model = factory().to(dtype)
    x = torch.rand(n, *shape, dtype=dtype)
    y = torch.randint(0, 10, (n,))
    center = {k: v.detach().clone() for k, v in model.named_parameters()}
    d1, d2 = weight_directions(weights, center) if weights else random_directions(DirectionsSpec(), center)
    loss = loss_fn(loss_kind, 10)
    axis = np.linspace(-1.0, 1.0, grid)

    # Plain loop: model and data on the device, weights set per point.
    m = factory().to(device=device, dtype=dtype)
    # 'train' capture = BatchNorm with batch statistics = the module in train mode (these models have no dropout)
    m.train(mode == "train")
    xd, yd = x.to(device), y.to(device)
    cd = {k: v.to(device) for k, v in center.items()}
    d1d = {k: v.to(device) for k, v in d1.items()}
    d2d = {k: v.to(device) for k, v in d2.items()}
    reference_grid(m, cd, d1d, d2d, axis[:2], axis[:2], xd, yd, loss)  # warm-up, as for the evaluator below

    # The default batch budget, as a scene without capture.memory_mb gets (512 MiB on a CPU, more on a GPU).
    ev = LandscapeEvaluator(factory(), x, y, loss, d1, d2, device, dtype, strategy=strategy, mode=mode,
                            threads=threads)
    # Warm-up on at least one full batch: allocations, kernel selection, lazily loaded GPU modules.
    ev.grid(center, axis, axis[:max(2, -(-ev.chunk // len(axis)))])

    # The grid's rows in `blocks` slices, loop and evaluator taking turns, so that both see the machine in the same
    # state (the loop's speed wanders by a factor 1.5 from one second to the next on a shared 2-core machine).
    # The evaluator pays its per-grid setup (the first layer's three products) once per block, not once.
    ref, fast = np.empty((grid, grid)), np.empty((grid, grid))
    t_loop = t_fast = 0.0
    for rows in np.array_split(np.arange(grid), min(blocks, grid)):
        sync(device)
        t0 = time.perf_counter()
        ref[rows] = reference_grid(m, cd, d1d, d2d, axis[rows], axis, xd, yd, loss)
        sync(device)
        t1 = time.perf_counter()
        fast[rows] = ev.grid(center, axis[rows], axis)
        sync(device)
        t_loop, t_fast = t_loop + t1 - t0, t_fast + time.perf_counter() - t1
    rel = float(np.max(np.abs(fast - ref) / np.maximum(np.abs(ref), 1e-30)))
    pts = grid * grid
    row = (name, ev.strategy, ev.chunk, pts / t_loop, pts / t_fast, t_loop / t_fast, rel)
    if not floor:
        return row
    if ev.strategy != "mlp" or weights:
        return row + (None, None)
    rate = floor_rate(m, xd, cd, pts, ev.threads)
    return row + (rate, rate * t_loop / pts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", type=int, default=41, help="points per axis (default 41)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--strategy", default="auto", help="force an evaluator strategy (auto, mlp, linear_first, vmap)")
    ap.add_argument("--case", action="append", help="run only these cases (substring match)")
    ap.add_argument("--threads", type=int, default=None, help="CPU worker threads of the evaluator (default: torch's)")
    ap.add_argument("--repeat", type=int, default=1, help="run every case this many times (timings are noisy)")
    ap.add_argument("--floor", action="store_true",
                    help="also time the per-point layer work alone for the full-MLP cases (CPU; see above)")
    ap.add_argument("--blocks", type=int, default=6,
                    help="the grid's rows in this many slices, loop and llstudio taking turns (default 6; see above)")
    ap.add_argument("--allocator", choices=["warm", "default"], default="warm",
                    help="glibc's allocator: thresholds fixed as the command line sets them (warm, default), or left "
                    "as glibc starts (see above)")
    args = ap.parse_args()
    tuned = allocator.tune() if args.allocator == "warm" else False
    torch.set_num_threads(torch.get_num_threads())
    device = resolve_device(args.device)
    if args.floor and device.type != "cpu":
        ap.error("--floor times CPU worker threads: use it with --device cpu")
    dtype = getattr(torch, args.dtype)
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"# llstudio capture benchmark: {args.grid}x{args.grid} grid, {device}, {args.dtype}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
          f"{load}, allocator {'warm' if tuned else 'glibc default'}")
    print(f"{'case':28s} {'strategy':12s} {'chunk':>5s} {'loop pts/s':>11s} {'llstudio pts/s':>15s} "
          f"{'ratio':>7s} {'max rel diff':>13s}" + (f" {'floor pts/s':>12s} {'floor ratio':>11s}" if args.floor else ""))
    for name, (factory, n, loss_kind, shape, mode, *weights) in CASES.items():
        if args.case and not any(c in name for c in args.case):
            continue
        rows = []
        for _ in range(args.repeat):
            row = run_case(name, factory, n, loss_kind, shape, mode, args.grid, device, dtype, args.strategy,
                           args.threads, weights[0] if weights else None, args.floor, args.blocks)
            line = f"{row[0]:28s} {row[1]:12s} {row[2]:5d} {row[3]:11,.0f} {row[4]:15,.0f} {row[5]:6.2f}x {row[6]:13.2e}"
            if args.floor:
                line += f" {row[7]:12,.0f} {row[8]:10.2f}x" if row[7] is not None else f" {'-':>12s} {'-':>11s}"
            print(line, flush=True)
            rows.append(row)
        if len(rows) > 1:
            ratios = [r[5] for r in rows]
            print(f"{'  median of ' + str(len(rows)):28s} {'':12s} {'':5s} {np.median([r[3] for r in rows]):11,.0f} "
                  f"{np.median([r[4] for r in rows]):15,.0f} {np.median(ratios):6.2f}x  "
                  f"(ratios {min(ratios):.2f}-{max(ratios):.2f}x)", flush=True)


if __name__ == "__main__":
    main()
