"""Every gallery scene keeps its cache keys: a refactor that changes a key silently recaptures every user's cache.

The keys were recorded before the package was laid out by stage (``tests/golden_keys.json``); torch's version is
part of every key, so it is fixed here to the one they were recorded with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llstudio import load_scene
from llstudio.pipeline import capture_key, training_key
from llstudio.train.runs import run_scene

from conftest import SCENES_DIR

GOLDEN = Path(__file__).with_name("golden_keys.json")
TORCH_AT_RECORDING = "2.14.1"


def scene_keys(path: Path) -> dict[str, dict[str, str]]:
    """Capture key of the scene (of each panel, for panel scenes) and training key of each run, on the CPU."""
    scene = load_scene(path)
    views = scene.panel_scenes() if scene.panels else [scene]
    keys = {}
    for i, view in enumerate(views):
        entry = {"capture": capture_key(view, "cpu")}
        for name in view.training.run_names():
            entry[f"training:{name}"] = training_key(run_scene(view, None if name == "main" else name), "cpu")
        keys[f"panel{i}" if scene.panels else "scene"] = entry
    return keys


def all_keys() -> dict:
    return {p.stem: scene_keys(p) for p in sorted(SCENES_DIR.glob("*.toml"))}


@pytest.fixture
def recorded_torch(monkeypatch):
    monkeypatch.setattr(torch, "__version__", TORCH_AT_RECORDING)


def test_every_scene_keeps_its_keys(recorded_torch):
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden) == sorted(p.stem for p in SCENES_DIR.glob("*.toml"))
    assert all_keys() == golden


if __name__ == "__main__":  # python tests/test_golden_keys.py: record the keys anew (only when a key SHOULD change)
    torch.__version__ = TORCH_AT_RECORDING
    GOLDEN.write_text(json.dumps(all_keys(), indent=1, sort_keys=True) + "\n")
