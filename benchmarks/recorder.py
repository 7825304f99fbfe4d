"""What llstudio.Recorder adds to a training step, measured against the same loop without it, in the same run.

    python benchmarks/recorder.py                   # both models, every = 10
    python benchmarks/recorder.py --steps 400 --repeat 7

The models are the scenes' own: digits_ride's MLP (64-64-32-10, ReLU, momentum SGD, batches of 32 digits) and
random_vs_pca_resnet's reduced ResNet-10 (width 8, BatchNorm, 16x16 RGB digits, batches of 64). One training
step is the loop a user writes: forward, loss, backward, optimizer step; the recorded loop adds
``rec.step(step, loss=loss, batch=(x, y))`` with ``every`` (default 10), the recorder's defaults otherwise
(mini-batches kept, a chunk written every 10 s and at close; ``close`` is inside the timed part).

Two measures, from the same run:

- ``per step``: the time spent inside ``rec.step`` (timed around each call in the recorded loop) over the time of
  the loop's own work in that same run. Both are measured in the same seconds, so a shared machine's drift hits
  them alike: this is the number to read on a busy machine. ``open+close``: the one-off cost of making the
  recorder (it records step 0) and of ``close`` (the last chunk and the manifest, each fsynced), in ms: a
  constant, which a short run like this one spreads over few steps.
- ``A/B``: the two loops timed in turns (plain, recorded, plain, recorded, ...), ``--repeat`` times each, from the
  same initial weights and the same batches; the ratio of the median seconds per step minus one, with the range
  of the per-pair ratios. On a machine whose other processes come and go this range is wide, much wider than
  the overhead: then only the medians over many repeats mean anything.

The recording goes to a temporary folder (the disk's speed is part of what is measured).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llstudio  # noqa: E402
from llstudio.train.data import load_dataset  # noqa: E402
from llstudio.train.models import loss_fn, wants_images  # noqa: E402
from llstudio.train.training import _optimizer, batch_order, initial_model  # noqa: E402

SCENES = Path(__file__).resolve().parent.parent / "scenes"
CASES = {"mlp (digits_ride)": "digits_ride.toml", "resnet (random_vs_pca_resnet)": "random_vs_pca_resnet.toml"}


def setup(scene_file: str, steps: int):
    scene = llstudio.load_scene(SCENES / scene_file)
    data = load_dataset(scene.data, wants_images(scene.model))
    model = initial_model(scene, data, torch.float32)
    x = torch.as_tensor(data.x_train)
    y = torch.as_tensor(data.y_train)
    batches = batch_order(len(x), scene.training.batch_size, steps, 0)
    return scene, model, x, y, batches, loss_fn(scene.training.loss, data.n_classes)


def run(scene, model0, x_all, y_all, batches, criterion, every: int | None, folder: Path | None
        ) -> tuple[float, float, float]:
    """(seconds per step of the user's loop, seconds per step inside rec.step, seconds of making and closing the
    recorder), recorded when ``every`` is given."""
    model = copy.deepcopy(model0).train()
    opt = _optimizer(scene, model.parameters())
    clock = time.perf_counter
    start = clock()
    rec = llstudio.Recorder(folder, model, every=every, overwrite=True) if every else None
    oneoff, inside = clock() - start, 0.0
    for step, idx in enumerate(batches):
        x, y = x_all[idx], y_all[idx]
        loss = criterion(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if rec is not None:
            t = clock()
            rec.step(step, loss=loss, batch=(x, y))
            inside += clock() - t
    if rec is not None:
        t = clock()
        rec.close()
        oneoff += clock() - t
    return (clock() - start) / len(batches), inside / len(batches), oneoff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--steps", type=int, default=200, help="training steps per timed run (MLP; the ResNet runs a "
                    "fifth of them, at least 3 * every)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, every = {args.every}")
    print(f"{'model':32} {'plain ms/step':>14} {'recorded ms/step':>17} {'per step':>9} {'open+close':>11} "
          f"{'A/B':>7}  (A/B range)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, scene_file in CASES.items():
            steps = args.steps if "mlp" in name else max(args.steps // 5, 3 * args.every)
            scene, model, x, y, batches, criterion = setup(scene_file, steps)
            run(scene, model, x, y, batches[: 2 * args.every], criterion, None, None)  # warm-up
            plain, recorded, share, once = [], [], [], []
            for _ in range(args.repeat):
                plain.append(run(scene, model, x, y, batches, criterion, None, None)[0])
                total, inside, oneoff = run(scene, model, x, y, batches, criterion, args.every, Path(tmp) / "run")
                recorded.append(total)
                share.append(inside / (total - inside - oneoff / len(batches)))
                once.append(oneoff)
            ratios = np.array(recorded) / np.array(plain)
            p, r = statistics.median(plain), statistics.median(recorded)
            print(f"{name:32} {1e3 * p:14.3f} {1e3 * r:17.3f} {100 * statistics.median(share):8.2f}% "
                  f"{1e3 * statistics.median(once):9.1f}ms "
                  f"{100 * (r / p - 1):6.1f}%  ({100 * (ratios.min() - 1):+.1f}% … {100 * (ratios.max() - 1):+.1f}%)")


if __name__ == "__main__":
    main()
