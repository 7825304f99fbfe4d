"""One capture on 1 process vs N torch.distributed ranks (gloo, on the CPU): seconds, ratio, identical numbers.

    python benchmarks/distributed_capture.py                                  # scenes/digits_ride.toml, 41x41, 2 ranks
    python benchmarks/distributed_capture.py scenes/digits_ride.toml --resolution 81 --ranks 2 --json

The scene is trained once beforehand (not timed) and both runs load that training from their own fresh store, so
the times are those of the capture alone: ``capture_s`` inside rank 0 (from the first collective to the assembled
capture) and ``wall_s`` of the whole command (interpreter, torch import, the launcher's rendezvous). The two store
entries are then compared file by file, array by array (``identical``). ``measure()`` returns the same dict, for
benchmarks/scale.py. On the CPU each rank gets the node's cores divided by the ranks as torch threads, so on a
machine with C cores the comparison is 1 process x C threads against N processes x C/N threads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _rank_program(root: str, scene_json: str) -> None:
    """Run under the launcher (one rank) or alone (the one-process case): capture the scene into ``root``."""
    from llstudio.config.scene import scene_from_dict
    from llstudio.jobs.slots import cpu_count
    from llstudio.parallel import SINGLE, from_environment, launched, share_threads
    from llstudio.pipeline import capture_scene
    from llstudio.store.store import CaptureStore

    import torch

    group = from_environment("cpu") if launched() else SINGLE
    try:
        if group.world > 1:
            torch.set_num_threads(share_threads(group, cpu_count()))
        scene = scene_from_dict(json.loads(Path(scene_json).read_text()), source="benchmark.toml")
        group.barrier()
        t0 = time.perf_counter()
        capture_scene(scene, device="cpu", store=CaptureStore(Path(root)), group=group)
        if group.is_root:
            print(json.dumps({"capture_s": time.perf_counter() - t0, "threads": torch.get_num_threads()}))
    finally:
        group.destroy()


def _run(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    return {**out, "wall_s": wall}


def _entries(root: Path) -> dict:
    out = {}
    for f in sorted((root / "captures").glob("*/*.npz")):
        with np.load(f) as z:
            out[f.name] = {k: z[k] for k in z.files}
    return out


def _identical(a: Path, b: Path) -> bool:
    x, y = _entries(a), _entries(b)
    return bool(x) and x.keys() == y.keys() and all(
        x[f].keys() == y[f].keys() and all(np.array_equal(x[f][k], y[f][k], equal_nan=x[f][k].dtype.kind == "f")
                                           for k in x[f]) for f in x)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(scene_path: str = "scenes/digits_ride.toml", ranks: int = 2, resolution: int | None = 41) -> dict:
    """Capture ``scene_path`` (its grid set to ``resolution`` points per axis, None: as written) on one process
    and on ``ranks`` gloo ranks; returns seconds, ratios and whether the two store entries are identical."""
    with open(scene_path, "rb") as f:
        d = tomllib.load(f)
    d.setdefault("capture", {})["device"] = "cpu"
    if resolution is not None:
        d.setdefault("grid", {})["resolution"] = resolution
    me = [sys.executable, str(Path(__file__).resolve()), "--rank-program"]
    with tempfile.TemporaryDirectory(prefix="llstudio-dist-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "scene.json").write_text(json.dumps(d))
        _run(me + [str(tmp / "pre"), str(tmp / "scene.json")])  # trains (not timed)
        for name in ("one", "many"):
            shutil.copytree(tmp / "pre" / "trainings", tmp / name / "trainings")
        one = _run(me + [str(tmp / "one"), str(tmp / "scene.json")])
        many = _run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--master-port",
                     str(_free_port()), *me[1:], str(tmp / "many"), str(tmp / "scene.json")])
        same = _identical(tmp / "one", tmp / "many")
    grid = d["grid"].get("resolution")
    return {"scene": scene_path, "grid": grid, "ranks": ranks, "cores": os.cpu_count(),
            "one_capture_s": round(one["capture_s"], 2), "ranks_capture_s": round(many["capture_s"], 2),
            "capture_ratio": round(one["capture_s"] / many["capture_s"], 2),
            "one_wall_s": round(one["wall_s"], 2), "ranks_wall_s": round(many["wall_s"], 2),
            "wall_ratio": round(one["wall_s"] / many["wall_s"], 2),
            "threads": {"one": one["threads"], "each_rank": many["threads"]}, "identical": same}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rank-program":
        _rank_program(*sys.argv[2:4])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scene", nargs="?", default=str(REPO / "scenes" / "digits_ride.toml"))
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--resolution", type=int, default=41, help="grid points per axis (0: the scene's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    r = measure(args.scene, args.ranks, args.resolution or None)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{r['scene']}: {r['grid']}x{r['grid']} grid, {r['cores']} cores")
    print(f"  1 process ({r['threads']['one']} threads):   capture {r['one_capture_s']:7.2f} s   "
          f"command {r['one_wall_s']:7.2f} s")
    print(f"  {r['ranks']} gloo ranks ({r['threads']['each_rank']} each): capture {r['ranks_capture_s']:7.2f} s   "
          f"command {r['ranks_wall_s']:7.2f} s")
    print(f"  ratio 1/{r['ranks']}: capture x{r['capture_ratio']}, command x{r['wall_ratio']}; identical numbers: "
          f"{r['identical']}")


if __name__ == "__main__":
    main()
