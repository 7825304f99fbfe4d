"""A capture shared by two gloo ranks on the CPU, started by torch's own launcher, equals the one-process capture
exactly: every file of the store entry, array for array (loss grids, centre losses, curvature maps)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from llstudio.config.scene import scene_from_dict
from llstudio.parallel import SINGLE, describe_environment, from_environment, share_threads
from llstudio.pipeline import capture_scene
from llstudio.pipeline.shares import RankFailed, each, on_root, rounds, rows_of
from llstudio.store.store import CaptureStore

from conftest import REPO, tiny_dict

CURVATURE = {"resolution": 3, "tolerance": 1e-3}
SCENES = {
    # 5 captured steps on 2 ranks: two rounds of one step each, then one step with its grid rows split.
    "follow": tiny_dict(capture={"every": 3, "curvature": CURVATURE}, grid={"resolution": 5}),
    # One shared plane (fixed frame, evaluation subset, no zoom): its rows split; one curvature map on rank 0.
    "fixed": tiny_dict(directions={"seed": 3, "frame": "fixed", "center": "final"},
                       capture={"every": 4, "curvature": CURVATURE}),
    # Each step on its own mini-batch, per-sample landscapes, an odd number of grid rows.
    "batch": tiny_dict(capture={"every": 6, "data": "batch"}, grid={"resolution": 7}),
    "samples": tiny_dict(capture={"every": 6, "data": "samples", "samples": 3}),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entries(root: Path) -> dict:
    """Every file of every capture in the store: (key, file name) → its arrays, or the manifest's dict."""
    out = {}
    for f in sorted((root / "captures").glob("*/*")):
        if f.suffix == ".npz":
            with np.load(f) as z:
                out[(f.parent.name, f.name)] = {k: z[k] for k in z.files}
        elif f.name == "manifest.json":
            out[(f.parent.name, f.name)] = json.loads(f.read_text())
    return out


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    return a == b


def test_two_gloo_ranks_equal_one_process(tmp_path):
    paths = []
    for name, d in SCENES.items():
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(d))
    two, one = tmp_path / "two", tmp_path / "one"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                           "--master-port", str(_free_port()), str(Path(__file__).with_name("_rank_capture.py")),
                           str(two), *map(str, paths)], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # One thread, as each rank on 2 cores: two OpenMP threads on a busy 2-core machine make the curvature's
    # Hessian products several times slower (the tiny model's products give the same bits either way).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for p in paths:
            scene = scene_from_dict(json.loads(p.read_text()), source=str(p))
            capture_scene(scene, device="cpu", store=CaptureStore(one))
    finally:
        torch.set_num_threads(threads)
    a, b = _entries(one), _entries(two)
    assert a.keys() == b.keys()
    assert sum(name.startswith("curv_") for _, name in a) == 5 + 4  # the curvature maps are there to compare
    different = [k for k in a if not _equal(a[k], b[k])]
    assert not different


def test_one_process_group_runs_everything_in_place():
    assert SINGLE.is_root and SINGLE.world == 1
    assert SINGLE.broadcast(3) == 3 and SINGLE.gather(4) == [4] and SINGLE.all_gather(5) == [5]
    assert on_root(SINGLE, lambda: 6) == 6 and each(SINGLE, lambda: 7) == [7] and each(SINGLE, lambda: 8, share=False) == 8
    assert SINGLE.device("cuda") == "cuda:0" and SINGLE.device("cpu") == "cpu"


def test_shares_cover_every_step_and_row_once():
    assert rounds([0, 1, 2, 3, 4], 2) == [[0, 1], [2, 3], [4]]
    from llstudio.parallel import Group

    for n, world in [(5, 2), (7, 3), (2, 4)]:
        rows = [list(range(n))[rows_of(Group(r, world), n)] for r in range(world)]
        assert sum(rows, []) == list(range(n))


def test_thread_share_splits_the_node(monkeypatch):
    from llstudio.parallel import Group

    monkeypatch.delenv("LLSTUDIO_THREADS", raising=False)
    assert share_threads(Group(1, 4, 1, 2), 16) == 8
    assert share_threads(Group(0, 3, 0, 3), 2) == 1
    monkeypatch.setenv("LLSTUDIO_THREADS", "3")
    assert share_threads(Group(0, 2, 0, 2), 16) == 3


def test_environment_problems_are_usage_errors(monkeypatch):
    from llstudio.errors import UsageError

    for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(UsageError, match="MASTER_ADDR"):
        describe_environment()
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")
    with pytest.raises(UsageError, match="below its world size"):
        describe_environment()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert from_environment("cpu") is SINGLE  # a world of one needs no process group
    assert not torch.distributed.is_initialized()


def test_failure_on_root_reaches_every_rank():
    """RankFailed carries the failed rank's exit status."""
    exc = RankFailed(0, "scene.toml: 1 problem", 2)
    assert exc.exit_code == 2 and "rank 0 failed" in str(exc)
