"""Regenerate the README gallery: every scene's still (its ``[output] still``) at ``-q l``, as docs/NAME.png.

    python docs/make_stills.py                          # every scene in scenes/, into docs/
    python docs/make_stills.py showcase digits_ride     # just these (names or paths)
    python docs/make_stills.py --out /tmp/stills        # somewhere else, to look before replacing docs/

Each still is made by the real command, ``python -m llstudio still scenes/NAME.toml -q l -o OUT/NAME.png``, one
scene after another, so a still is exactly what a user gets (training and capture come from the cache when there;
a scene not yet captured is trained and captured first, which can take minutes on a few CPU cores). It prints the
time each took (wall clock, including any training and capture) and, at the end, the scenes that failed with the
end of their error output; the exit status is 1 if any did. The frame is chosen in the scene file, not here:
``still`` is a fraction of the film between its title and end cards (see README 'Gallery').

It lives beside the images it writes rather than in benchmarks/: it makes documentation, its times are a by-product.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def scene_paths(names: list[str]) -> list[Path]:
    """The scene files ``names`` stand for (a path, or a name in scenes/); every scene in scenes/ if none."""
    if not names:
        return sorted((REPO / "scenes").glob("*.toml"))
    paths = []
    for name in names:
        path = Path(name)
        if not path.suffix:
            path = REPO / "scenes" / f"{name}.toml"
        if not path.is_file():
            sys.exit(f"make_stills: no scene file {path}")
        paths.append(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", nargs="*", metavar="SCENE", help="scene names or files (default: all of scenes/)")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder for NAME.png (default: docs/)")
    parser.add_argument("-q", "--quality", default="l", help="quality preset (default: l, as in the README)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for path in scene_paths(args.scenes):
        out = args.out / f"{path.stem}.png"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "llstudio", "still", str(path), "-q", args.quality, "-o",
                               str(out), "--progress", "none"], capture_output=True, text=True, cwd=REPO)
        seconds = time.perf_counter() - start
        if proc.returncode == 0:
            print(f"{path.stem:34s} {seconds:7.1f} s  {out}", flush=True)
        else:
            print(f"{path.stem:34s} {seconds:7.1f} s  FAILED (exit {proc.returncode})", flush=True)
            failed.append((path.stem, proc.stderr.strip().splitlines()[-3:]))
    for name, tail in failed:
        print(f"\n{name}:", *tail, sep="\n  ", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
