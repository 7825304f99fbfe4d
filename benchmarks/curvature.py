"""Curvature-map cost: seconds per grid point for a scene's model, with and without warm starts, in one run.

    python benchmarks/curvature.py                            # scenes/digits_ride.toml, 5x5 grid, CPU
    python benchmarks/curvature.py SCENE --grid 7 --device cuda --tol 1e-4

Trains the scene (its cached trajectory is not used: this measures curvature alone), then computes the min/max
Hessian eigenvalue maps at the first and the last captured step's weights, along the scene's random directions,
on a grid over the scene's range. For each it prints seconds and Hessian-vector products per point, and the same
for a cold start at every point (no neighbour's eigenvectors), so the two can be compared within one run.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from llstudio.landscape.curvature import HessianOperator, curvature_grid, extreme_eigenpairs
from llstudio.train.data import load_dataset
from llstudio.device import resolve_device
from llstudio.landscape.directions import random_directions
from llstudio.train.models import loss_fn
from llstudio.config.scene import load_scene
from llstudio.train.training import initial_model, train


def cold_grid(op, center, d1, d2, alphas, betas, tol, max_iterations):
    """Every point from a fresh random start: the baseline the warm start is measured against."""
    c, u1, u2 = op.flatten(center), op.flatten(d1), op.flatten(d2)
    rng = np.random.default_rng(0)
    for a in alphas:
        for b in betas:
            extreme_eigenpairs(op, c + float(a) * u1 + float(b) * u2, tol, max_iterations, None, rng)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scene", nargs="?", default="scenes/digits_ride.toml")
    ap.add_argument("--grid", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    scene = load_scene(args.scene)
    device = resolve_device(args.device)
    dtype = getattr(torch, scene.capture.dtype)
    data = load_dataset(scene.data)
    traj = train(scene, data, device, dtype)
    d1, d2 = random_directions(scene.directions, traj.weights[-1])
    op = HessianOperator(initial_model(scene, data, dtype), torch.as_tensor(data.x_eval),
                         torch.as_tensor(data.y_eval), loss_fn(scene.training.loss, data.n_classes), device, dtype)
    lo, hi = scene.grid.range if scene.grid.range != "auto" else (-1.0, 1.0)
    axis = np.linspace(lo, hi, args.grid)
    n = args.grid ** 2
    print(f"{args.scene}: {op.n_params:,} parameters, {len(data.x_eval)} evaluation samples, {args.grid}x{args.grid} "
          f"grid on [{lo}, {hi}], tol {args.tol:g}, {device}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, {platform.processor() or platform.machine()}")
    print(f"{'weights':<12} {'warm s/pt':>10} {'HVP/pt':>8} {'cold s/pt':>10} {'HVP/pt':>8} {'cold/warm':>10} "
          f"{'ms/HVP':>8} {'min eig range':>24} {'max eig range':>22}")
    for label, k in (("step 0", 0), ("final", -1)):
        op.products = 0
        t = time.perf_counter()
        res = curvature_grid(op, traj.weights[k], d1, d2, axis, axis, tol=args.tol)
        warm_s, warm_p = time.perf_counter() - t, op.products
        op.products = 0
        t = time.perf_counter()
        cold_grid(op, traj.weights[k], d1, d2, axis, axis, args.tol, 300)
        cold_s, cold_p = time.perf_counter() - t, op.products
        print(f"{label:<12} {warm_s / n:>10.3f} {warm_p / n:>8.1f} {cold_s / n:>10.3f} {cold_p / n:>8.1f} "
              f"{cold_s / warm_s:>10.2f} {1e3 * warm_s / warm_p:>8.2f} "
              f"{np.nanmin(res['curv_min']):>11.4g} … {np.nanmax(res['curv_min']):<10.4g} "
              f"{np.nanmin(res['curv_max']):>9.4g} … {np.nanmax(res['curv_max']):<10.4g}")


if __name__ == "__main__":
    main()
