"""Every scene in scenes/ runs end to end, shrunk: same recipe (data, model kind, directions, frame, panels, look),
tiny sizes (grid, steps, evaluation subset, output), two frames rendered. The scenes at full size are rendered by
hand for the README gallery (their headers give the times); here we check that none of them is broken."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import SCENES_DIR

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from llstudio.pipeline import OutputSettings, capture_scene, make_film
from llstudio.config.scene import scene_from_dict

SCENES = sorted(SCENES_DIR.glob("*.toml"))
STEPS = 9


def shrink_sections(d: dict, one_d: bool) -> None:
    """Tiny sizes in place, for the main scene or a panel's overrides."""
    if "grid" in d:
        d["grid"]["resolution"] = 7 if one_d or isinstance(d["grid"].get("resolution", 7), int) else [7, 6]
    data = d.get("data", {})
    if "eval_size" in data:
        data["eval_size"] = min(data["eval_size"], 48)
    if "training" in d:
        d["training"]["steps"] = min(d["training"].get("steps", STEPS), STEPS)
        # Smaller batches, kept apart: runs or panels that compare batch sizes must still differ.
        for t in [d["training"], *d["training"].get("runs", [])]:
            if "batch_size" in t:
                t["batch_size"] = max(1, t["batch_size"] // 8)
    cap = d.get("capture", {})
    if "curvature" in cap:
        cap["curvature"].update(resolution=3, tolerance=1e-2)
    if "bn_samples" in cap:
        cap["bn_samples"] = 32


def shrunk(path) -> dict:
    d = tomllib.loads(path.read_text())
    one_d = d.get("grid", {}).get("dimensions", 2) == 1
    d.setdefault("training", {})
    shrink_sections(d, one_d)
    d["training"]["steps"] = min(d["training"].get("steps", STEPS), STEPS)
    cap = d.setdefault("capture", {})
    cap["every"] = 4
    cap.pop("steps", None)
    cap["device"] = "cpu"
    d["data"] = d.get("data", {})
    d["data"]["eval_size"] = min(d["data"].get("eval_size", 48), 48)
    d["data"]["train_size"] = 96
    for panel in d.get("panels", []):
        shrink_sections(panel, one_d)
    d.get("timeline", {}).pop("speed", None)
    return d


@pytest.mark.slow
@pytest.mark.render
@pytest.mark.parametrize("path", SCENES, ids=[p.stem for p in SCENES])
def test_every_scene_renders_shrunk(path, tmp_path):
    scene = scene_from_dict(shrunk(path), str(path))
    cap = capture_scene(scene, device="cpu")
    film = make_film(cap, OutputSettings(192, 108, 6))
    with film.renderer() as r:
        first = film.frame(r, 0)
        last = film.frame(r, film.n_frames - 1)
    for img in (first, last):
        assert img.shape[:2] == (108, 192)
        # A frame with a scene in it, not a blank background.
        assert len(np.unique(img.reshape(-1, img.shape[2]), axis=0)) > 12
