"""Every kind of cache file the capture reads, damaged, is reported once and recomputed to the same numbers: the
pipeline's reading paths (runs, plane, grid, curvature, assemble) treat a corrupt file as a missing one."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from llstudio.pipeline import capture_scene
from llstudio.progress import Progress
from llstudio.store.store import CaptureDir, CaptureStore

from conftest import make_scene

# Two runs, a fixed frame on the evaluation subset (one shared plane: plane.npz), curvature maps: every kind of
# file a capture directory holds, plus the run's trajectory under trainings/.
SCENE = dict(training={"runs": [{"name": "a"}, {"name": "b", "lr": 0.3}]},
             directions={"seed": 3, "frame": "fixed", "center": "final"},
             capture={"every": 4, "curvature": {"resolution": 3, "tolerance": 1e-3}})


def _truncate(p):
    with open(p, "r+b") as f:
        f.truncate(p.stat().st_size // 2)


def _wrong_shape(p):
    d = CaptureDir(p.parent)
    if p.name.startswith("step_"):
        d.save_step(int(p.stem[5:]), np.ones((7, 7)), 0.5)  # a sound file of another resolution
    else:
        d.save_arrays(p.stem, {k: np.zeros((2, 2)) for k in ("curv_min", "curv_max", "done", "converged")})


def _capture(scene, root):
    out = io.StringIO()
    cap = capture_scene(scene, device=torch.device("cpu"), store=CaptureStore(root), progress=Progress("auto", out))
    return cap, out.getvalue()


def _numbers(cap) -> dict:
    return {"loss": cap.loss, "center": cap.center_loss, "train": cap.train_loss, "curv": cap.curvature.curv_min,
            "run_b": cap.runs[1].center_loss, "path_b": cap.runs[1].plane_path, "alphas": cap.alphas,
            "d1": np.concatenate([v.numpy().ravel() for v in cap.directions[0].values()])}


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-store")
    scene = make_scene(root / "faults.toml", **SCENE)
    cap, _ = _capture(scene, root)
    return scene, root, cap.path, _numbers(cap)


@pytest.mark.parametrize("files,damage", [
    (["manifest.json"], lambda p: p.write_text("{{{")),
    (["trajectory.npz"], _truncate),
    (["trajectory.npz", "trajectory_b.npz", "../../trainings/*/trajectory.npz"], _truncate),  # both runs retrain
    (["trajectory_b.npz"], _truncate),
    (["directions.npz"], _truncate),
    (["plane.npz", "step_0000004.npz"], _truncate),  # the plane is read only while a step is missing
    (["step_0000004.npz"], _truncate),
    (["step_0000004.npz"], _wrong_shape),
    (["run_b.npz"], _truncate),
    (["curv_0000008.npz"], _truncate),
    (["curv_0000008.npz"], _wrong_shape),
], ids=["manifest", "trajectory", "training", "trajectory_b", "directions", "plane", "step", "step-shape", "run",
        "curv", "curv-shape"])
def test_a_damaged_file_is_recomputed_to_the_same_numbers(captured, files, damage):
    scene, root, cdir, numbers = captured
    paths = [p for f in files for p in sorted(cdir.glob(f))]
    assert len(paths) >= len(files)
    for p in paths:
        damage(p)
    cap, log = _capture(scene, root)
    warnings = [ln for ln in log.splitlines() if "corrupt cache file" in ln]
    assert sorted(str(p.resolve()) for p in paths) == sorted(w.split("corrupt cache file ")[1].split(" (")[0]
                                                             for w in warnings), log  # each once
    for k, v in _numbers(cap).items():
        np.testing.assert_allclose(v, numbers[k], rtol=1e-6, err_msg=k)
    assert all(p.exists() for p in paths)  # written again
    assert not [ln for ln in _capture(scene, root)[1].splitlines() if "corrupt" in ln]
