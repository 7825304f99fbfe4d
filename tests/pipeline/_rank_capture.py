"""One rank of the distributed capture test (started by torchrun, not collected by pytest): join the group the
launcher describes and capture every scene (JSON scene dicts) into the store at argv[1], on the CPU."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llstudio.config.scene import scene_from_dict
from llstudio.parallel import SINGLE, from_environment, launched
from llstudio.pipeline import capture_scene
from llstudio.store.store import CaptureStore


def main(root: str, *scenes: str) -> None:
    group = from_environment("cpu") if launched() else SINGLE
    try:
        for path in scenes:
            scene = scene_from_dict(json.loads(Path(path).read_text()), source=path)
            capture_scene(scene, device="cpu", store=CaptureStore(Path(root)), group=group)
    finally:
        group.destroy()


if __name__ == "__main__":
    main(*sys.argv[1:])
