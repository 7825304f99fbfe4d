"""The "Film your own run" example, end to end at tiny size: examples/own_run/train.py trains torchvision's
MobileNetV3-Small on the example's own dataset with its own loop (AdamW, one-cycle schedule, gradient clipping)
and llstudio.Recorder; own_run.toml, shrunk, films the recording through the command line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, decode, run_cli
from llstudio.train.recorder import read_source

EXAMPLE = REPO / "examples" / "own_run"


def shrink(text: str) -> str:
    """The example's scene at test size: 6 steps recorded every 3, a 5x5 grid, 16 evaluation images, a short
    film."""
    for key, value in (("steps", "6"), ("every", "3"), ("resolution", "5"), ("eval_size", "16"),
                       ("seconds_per_step", "0.2"), ("hold_end", "0.0")):
        text, n = re.subn(rf"^{key} = [^#\n]*", f"{key} = {value} ", text, flags=re.M)
        assert n == 1, key
    return text


@pytest.mark.render
@pytest.mark.slow
def test_the_example_trains_records_and_films(tmp_path, cli_env):
    work = tmp_path / "own_run"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("runs", "renders", "__pycache__"))
    env = {**cli_env, "PYTHONPATH": os.pathsep.join([str(REPO), str(work)])}
    done = subprocess.run([sys.executable, "train.py", "--steps", "6", "--every", "3", "--batch-size", "8"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rec = read_source(work / "runs" / "shapes")
    assert rec.steps == [0, 3, 6] and rec.closed and sorted(rec.loss) == list(range(6))
    assert any("running_mean" in k for k in rec.buffers[0])  # MobileNet's BatchNorm statistics are recorded

    (work / "own_run.toml").write_text(shrink((work / "own_run.toml").read_text()))
    film = run_cli(["render", "own_run.toml", "-q", "l", "--progress", "none"], env, work, timeout=600)
    assert film.returncode == 0, film.stderr
    cache = Path(cli_env["LLSTUDIO_CACHE"])
    assert not list((cache / "trainings").glob("*"))  # nothing was trained: the run is read from the recording
    info, frames = decode(work / "renders" / "own_run.mp4")
    assert tuple(info["size"]) == (854, 480) and len(frames) > 10
    assert np.std(frames[len(frames) // 2]) > 5  # a picture, not a blank frame
    sidecar = json.loads((work / "renders" / "own_run.json").read_text())
    assert sidecar["resolved_scene"]["training"]["source"] == "runs/shapes"
