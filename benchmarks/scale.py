"""Scale, measured in one run: a batch of 4 small scenes with ``--jobs 1`` vs ``--jobs 2``, one film rendered whole
vs ``--split 2``, and one capture on 1 process vs 2 gloo ranks (``torchrun``), each as a ratio of wall times taken
in this same run, with a check that the parallel result equals the serial one.

    python benchmarks/scale.py                    # everything, a table at the end
    python benchmarks/scale.py --only batch       # one part: batch, split or ranks
    python benchmarks/scale.py --json             # the numbers as one JSON object

A ratio above 1 means the parallel form is faster. Every part runs in private, temporary caches: the batch from
scratch both times (training, capture, render), the split and the ranks with what they do not time (the capture
for the split, the training for the ranks) made beforehand. Compare ratios, not seconds: machines are noisy.

What the numbers mean: every parallel form pays once per extra process what one process pays once (importing
torch and VTK, loading the data and the capture: a few seconds), and gains only when one process leaves cores
idle. One llstudio process already keeps about two cores busy (two grid worker threads; a renderer thread beside
ffmpeg's encoder), so on a 2-core machine the ratios sit near 1. With C cores the batch and split ratios approach
min(jobs, C / 2) minus the start-up share, and with one GPU per job or rank (8 on an 8-GPU box) the capture and the
batch divide by the GPU count while rank 0's training and store writes stay serial.
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from distributed_capture import measure as measure_ranks  # noqa: E402
from split_film import FILM_TOML, measure_split  # noqa: E402

BATCH = 4


def _batch_scene(seed: int) -> str:
    """A small scene of its own (its own training seed: the four share nothing): 151 frames at -q l of a 41x41
    landscape, about 8 s of work in one process here, so that the work and not the start of a process dominates."""
    return (FILM_TOML.replace("seed = 0", f"seed = {seed}").replace("resolution = 21", "resolution = 41")
            .replace('title = "split benchmark"', f'title = "scale batch {seed}"'))


def measure_batch(jobs: tuple[int, int] = (1, 2), quality: str = "l") -> dict:
    """Render BATCH small scenes with ``--jobs a`` then ``--jobs b``, each from an empty cache; seconds and ratio,
    and whether both batches wrote the same number of frames per film."""
    work = Path(tempfile.mkdtemp(prefix="llstudio-scale-batch-"))
    scenes = []
    for i in range(BATCH):
        path = work / f"batch{i}.toml"
        path.write_text(_batch_scene(i + 1))
        scenes.append(str(path))
    times, sidecars = {}, {}
    for n in (0, *jobs):  # 0: without --jobs, one process renders the scenes one after another
        env = {**os.environ, "LLSTUDIO_CACHE": str(work / f"cache{n}"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        out = work / f"jobs{n}"
        start = time.perf_counter()
        flag = ["--jobs", str(n)] if n else []
        proc = subprocess.run([sys.executable, "-m", "llstudio", "render", *scenes, "-q", quality, *flag,
                               "--progress", "none"], env=env, cwd=str(out.parent), capture_output=True, text=True)
        times[n] = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"--jobs {n} failed ({proc.returncode}): {proc.stderr[-2000:]}{proc.stdout[-2000:]}")
        films = sorted((work / "renders").glob("*.json"))
        sidecars[n] = [json.loads(p.read_text())["file"]["frames"] for p in films]
        for p in (work / "renders").iterdir():
            if p.is_file():
                p.rename(out.with_name(f"{out.name}_{p.name}"))
    a, b = jobs
    return {"scenes": BATCH, "quality": quality, "one_process_s": times[0], f"jobs{a}_s": times[a],
            f"jobs{b}_s": times[b], "ratio": times[a] / times[b], "ratio_one_process": times[0] / times[b],
            "same_frames": sidecars[0] == sidecars[a] == sidecars[b]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["batch", "split", "ranks"], default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    parts = {"batch": measure_batch, "split": lambda: measure_split(quality="m", split=2),
             "ranks": lambda: measure_ranks(str(REPO / "scenes" / "digits_ride.toml"), 2, 41)}
    results = {name: fn() for name, fn in parts.items() if args.only in (None, name)}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; ratio = serial / parallel wall time (> 1: parallel faster)")
    rows = []
    if "batch" in results:
        r = results["batch"]
        check = "same frame counts" if r["same_frames"] else "FRAME COUNTS DIFFER"
        rows.append(("batch of 4, --jobs 1 vs 2", r["jobs1_s"], r["jobs2_s"], r["ratio"], check))
        rows.append(("batch of 4, one process (no --jobs) vs --jobs 2", r["one_process_s"], r["jobs2_s"],
                     r["ratio_one_process"], check))
    if "split" in results:
        r = results["split"]
        rows.append((f"film of {r['frames']} frames, whole vs --split 2", r["whole_s"], r["split_s"], r["ratio"],
                     "identical frames" if r["identical"] else f"min PSNR {r['min_psnr_db']:.1f} dB"))
    if "ranks" in results:
        r = results["ranks"]
        rows.append((f"capture {r['grid']}x{r['grid']}, 1 process vs 2 gloo ranks", r["one_capture_s"],
                     r["ranks_capture_s"], r["capture_ratio"], "identical numbers" if r["identical"] else "NUMBERS DIFFER"))
    print(f"{'measurement':48s} {'serial s':>9s} {'parallel s':>10s} {'ratio':>6s}  check")
    for name, a, b, ratio, check in rows:
        print(f"{name:48s} {a:9.1f} {b:10.1f} {ratio:6.2f}  {check}")


if __name__ == "__main__":
    main()
