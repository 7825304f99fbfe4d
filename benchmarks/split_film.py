"""One film rendered whole vs in K segment processes (``llstudio render --split K``): wall time of each command,
their ratio, and how the two films compare (frame count, lowest PSNR of a frame of the split film against the
same frame of the whole one).

    python benchmarks/split_film.py                      # the built-in ~300-frame film at -q m, --split 2
    python benchmarks/split_film.py --quality l --split 3
    python benchmarks/split_film.py --scene scenes/digits_ride.toml

``measure_split(...)`` returns the numbers as a dict, for benchmarks/scale.py. Both commands run with the capture
already in the (private, temporary) cache, so what is timed is rendering and encoding plus each process's start:
a split pays one process start per segment (torch, VTK, the scene's data and capture loaded) and gains when the
cores are more than one segment's renderer and encoder keep busy. Report ratios, not absolute numbers: they are
what stays true on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import imageio_ffmpeg
import numpy as np

REPO = Path(__file__).resolve().parent.parent

# The test suite's tiny scene (12 steps, 4 captured, a 5x5 grid), its timeline stretched to 3 x 3.3 s: at -q m
# (30 fps) 303 frames. Rendering dominates; the capture takes seconds.
FILM_TOML = """\
version = 1
title = "split benchmark"
[data]
dataset = "digits"
eval_size = 64
[model]
kind = "mlp"
hidden = [8]
activation = "tanh"
[training]
optimizer = "sgd"
lr = 0.1
steps = 12
batch_size = 16
seed = 0
[directions]
seed = 3
[grid]
resolution = 21
range = [-1.0, 1.0]
[capture]
every = 4
device = "cpu"
[timeline]
seconds_per_step = 3.3
hold_start = 0.1
hold_end = 0.1
interpolation = "cubic"
"""


def _llstudio(args: list[str], env: dict, cwd: Path) -> float:
    """Run ``llstudio ARGS``; its wall time in seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llstudio", *args], env=env, cwd=str(cwd), capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"llstudio {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return seconds


def _frames(path: Path) -> list[np.ndarray]:
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def measure_split(scene: Optional[str] = None, quality: str = "m", split: int = 2,
                  workdir: Optional[str] = None) -> dict:
    """Render ``scene`` (default: FILM_TOML) at ``quality`` whole, then with ``--split split``, in a private cache
    that already holds the capture; returns frames, whole_s, split_s, ratio (whole / split: > 1 means the split
    is faster), min_psnr_db (split vs whole, inf when identical), the segment count the log line reports."""
    work = Path(workdir or tempfile.mkdtemp(prefix="llstudio-split-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if scene is None:
        scene = str(work / "film.toml")
        Path(scene).write_text(FILM_TOML)
    env = {**os.environ, "LLSTUDIO_CACHE": str(work / "cache"), "PYVISTA_OFF_SCREEN": "true",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    _llstudio(["render", scene, "-q", "l", "--frames", "0:1", "-o", str(work / "warm.mp4"), "--progress", "none"],
              env, work)  # trains and captures: both timed runs below find the capture in the cache
    whole_s = _llstudio(["render", scene, "-q", quality, "-o", str(work / "whole.mp4"), "--progress", "none"], env, work)
    split_s = _llstudio(["render", scene, "-q", quality, "-o", str(work / "split.mp4"), "--split", str(split),
                         "--progress", "none"], env, work)
    a, b = _frames(work / "whole.mp4"), _frames(work / "split.mp4")
    if len(a) != len(b):
        raise RuntimeError(f"the split film has {len(b)} frames, the whole one {len(a)}")
    sidecar = json.loads((work / "split.json").read_text())
    return {"frames": len(a), "quality": quality, "split": split, "whole_s": whole_s, "split_s": split_s,
            "ratio": whole_s / split_s, "min_psnr_db": min(_psnr(x, y) for x, y in zip(a, b)),
            "identical": all(np.array_equal(x, y) for x, y in zip(a, b)), "sidecar_frames": sidecar["frames"],
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scene", default=None, help="scene file (default: a ~300-frame film of the tiny scene)")
    p.add_argument("--quality", "-q", default="m")
    p.add_argument("--split", type=int, default=2)
    p.add_argument("--workdir", default=None, help="where the films and the cache go (default: a temporary one)")
    args = p.parse_args()
    r = measure_split(args.scene, args.quality, args.split, args.workdir)
    same = "identical frames" if r["identical"] else f"min PSNR {r['min_psnr_db']:.1f} dB"
    print(f"{r['frames']} frames at -q {r['quality']} on {r['cores']} cores: whole {r['whole_s']:.1f} s, "
          f"--split {r['split']} {r['split_s']:.1f} s, ratio {r['ratio']:.2f} (whole / split); split vs whole: {same}")

if __name__ == "__main__":
    main()
