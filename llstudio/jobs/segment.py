"""One segment of a split film, in a process of its own (started by ``llstudio.jobs.split``, not by hand):

    python -m llstudio.jobs.segment SCENE --frames A:B --segment PART -o FILM --format F --capture-key KEY

loads the scene's capture from the store (the parent captured it: a cache hit, checked against KEY), draws frames
A … B-1 of FILM's film and encodes them into PART, exactly as a whole render would encode them; no sidecar.
Exit status as the command line's: 0, 1 (render error), 2 (usage), 3 (missing dependency), 130 (interrupted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from .. import allocator
from ..config.scene import load_scene
from ..device import resolve_device
from ..errors import LLStudioError, RenderError, raise_on_sigterm
from ..progress import Progress


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llstudio.jobs.segment",
                                description="Render one segment of a split film (see llstudio render --split).")
    p.add_argument("scene", metavar="SCENE")
    p.add_argument("--frames", required=True, metavar="A:B")
    p.add_argument("--segment", required=True, help="the segment's file (a directory for png)")
    p.add_argument("-o", "--output", required=True, help="the whole film's path (its format and settings)")
    p.add_argument("--format", required=True)
    p.add_argument("--capture-key", required=True, help="the capture the parent made: anything else is an error")
    p.add_argument("-q", "--quality", default=None)
    p.add_argument("--device", default=None)
    return p


def render_segment(args: argparse.Namespace) -> Path:
    """Load the capture (from the store) and encode the segment's frames into ``args.segment``."""
    # The pipeline loads torch and VTK; the module itself stays light, like the command line.
    from ..pipeline import capture_key, capture_scene, encode_frames, plan_render

    scene = load_scene(args.scene)
    device = resolve_device(args.device or scene.capture.device)
    # Checked before capturing: a segment must never train or capture on its own (K processes would all do it).
    key = "+".join(capture_key(s, device.type) for s in scene.panel_scenes()) if scene.panels else \
        capture_key(scene, device.type)
    _check_key(args, key)
    capture = capture_scene(scene, device=device)
    _check_key(args, capture.key)
    plan = plan_render(capture, Path(args.output), args.quality, args.frames, args.format)
    return encode_frames(plan, Path(args.segment), plan.selected, Progress("none"))


def _check_key(args: argparse.Namespace, key: str) -> None:
    if key != args.capture_key:
        raise RenderError(f"{args.scene} is not the scene the split began with: its capture is {key}, the "
                          f"film's {args.capture_key} (was the scene file edited meanwhile?)")


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    allocator.tune()
    raise_on_sigterm()
    try:
        render_segment(args)
    except LLStudioError as exc:
        print(f"llstudio segment: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("llstudio segment: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
