"""How much of its panel each single-panel gallery surface covers: the real captured surface, the real overlay
layout, the camera each framing mode gives, measured on the projected triangles (no rendering).

    LLSTUDIO_CACHE=... python benchmarks/framing.py                 # every 2D single-panel scene in scenes/
    python benchmarks/framing.py showcase digits_ride -q h          # just these, at another size
    python benchmarks/framing.py --modes fit --default-camera  # the default camera instead of the scene's

Captures come from the store (a scene not captured yet is trained and captured first: minutes). For each scene,
camera and framing mode it prints the outline's share of the panel's width and area at the first, middle and last
frame of the film's body and their least value, and at the end the medians. Issue 14's target: width >= 0.80 and
area >= 0.45 at the default camera.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llstudio.config.scene import CameraSpec, load_scene  # noqa: E402
from llstudio.film.framing import grid_triangles, outline_coverage, surface_points  # noqa: E402
from llstudio.film.geometry import DISPLAY_EXTENT, to_display  # noqa: E402
from llstudio.pipeline import capture_scene, make_film, output_settings  # noqa: E402


def coverage(film, index: int) -> tuple[float, float]:
    """(width, area) shares of the panel the surface of frame ``index`` covers, from that frame's camera."""
    state, (position, focal, up) = film.view(index)
    capture, s = film.capture, film.settings
    xs = to_display(capture.alphas, capture.alphas, DISPLAY_EXTENT, state.scale)
    ys = to_display(capture.betas, capture.betas, DISPLAY_EXTENT, state.scale)
    unit = np.clip((state.values - state.vmin) / max(state.vmax - state.vmin, 1e-300), 0, 1)
    heights = np.nan_to_num(unit, nan=0.0) * capture.scene.scaling.z_scale * DISPLAY_EXTENT
    pts = surface_points(heights, xs, ys)
    return outline_coverage(pts, grid_triangles(len(xs), len(ys)), position, focal, up, s.width, s.height)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", nargs="*", help="scene names or files (default: every 2D single-panel scene)")
    parser.add_argument("-q", "--quality", default="l")
    parser.add_argument("--modes", default="fit,distance", help="framing modes to compare (fit, distance)")
    parser.add_argument("--default-camera", action="store_true", help="the default camera, not the scene's")
    args = parser.parse_args(argv)
    paths = [Path(n) if n.endswith(".toml") else REPO / "scenes" / f"{n}.toml" for n in args.scenes] or \
        sorted((REPO / "scenes").glob("*.toml"))
    settings = None
    rows = []
    print(f"{'scene':28s} {'mode':5s}  first      middle     last       least")
    for path in paths:
        scene = load_scene(path)
        if scene.panels:
            continue
        capture = capture_scene(scene)
        if len(capture.betas) == 1:
            continue
        settings = output_settings(scene, args.quality)
        for mode in args.modes.split(","):
            camera = (CameraSpec() if args.default_camera else scene.camera).model_copy(update={"framing": mode})
            film = make_film(dataclasses.replace(capture, scene=scene.model_copy(update={"camera": camera})),
                             settings)
            start, n = film.body
            cov = [coverage(film, start + i) for i in (0, n // 2, n - 1)]
            least = (min(c[0] for c in cov), min(c[1] for c in cov))
            rows.append((mode, least))
            print(f"{path.stem:28s} {mode:5s}  " + "  ".join(f"{w:.2f}/{a:.2f}" for w, a in cov)
                  + f"  {least[0]:.2f}/{least[1]:.2f}", flush=True)
    for mode in args.modes.split(","):
        least = np.array([r[1] for r in rows if r[0] == mode])
        if len(least):
            print(f"median least ({mode}): width {np.median(least[:, 0]):.2f}, area {np.median(least[:, 1]):.2f}; "
                  f"scenes meeting 0.80/0.45: {int(np.sum((least[:, 0] >= 0.8) & (least[:, 1] >= 0.45)))} of "
                  f"{len(least)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
