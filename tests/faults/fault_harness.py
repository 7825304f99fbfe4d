"""The fault suite's machinery, shared by tests/faults (a small sample in CI) and benchmarks/faults.py (the figures).

Every case returns a record that says what was tried and what happened; nothing here asserts. A failure is a
record with ``ok`` false and a ``why``, so that the benchmark counts it and a test can assert on it.

- kills: a real ``python -m llstudio`` subprocess, watched through its ``--progress json`` lines on stderr, is sent
  SIGKILL, SIGTERM or SIGINT at a random point (a seeded fraction of the stage's time in an uninterrupted run) of
  one stage, then rerun to completion; its film must equal the uninterrupted film frame for frame (lossless
  output, crf 0) and no temporary file (``files.TEMP_NAME``) may be left.
- corruptions: a complete cache, one file of it truncated, bit-flipped, replaced by arrays of the wrong shapes or
  by garbage; the render in this process must succeed, warn naming the file, and give the same film.
- disk: a full tmpfs or a read-only bind mount (a private mount namespace of ``unshare -rm``, so that it works
  without root and is real even for root, who ignores file modes); concurrent renders of one scene into one cache.
- fuzz: scene files built from the scene's JSON Schema, valid and invalid, through ``llstudio check``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # one whole command on a loaded 2-core machine

# Float64 and one thread per process: a resumed run's numbers, and so its frames, equal an uninterrupted run's.
# 300 training steps captured every 50 (7 steps) of a 31x31 grid, 5x5 curvature maps, ~50 frames at -q l: every
# stage lasts long enough (0.3 s and more) for a random point inside it, and the whole film takes ~15 s here.
KILL_TOML = """\
version = 1
title = "faults"

[data]
dataset = "digits"
eval_size = 200

[model]
kind = "mlp"
hidden = [16]
activation = "tanh"

[training]
optimizer = "sgd"
lr = 0.1
steps = 300
batch_size = 16
seed = 0

[directions]
seed = 3

[grid]
resolution = 41
range = [-1.0, 1.0]

[capture]
every = 50
device = "cpu"
dtype = "float64"

[capture.curvature]
resolution = 5

[timeline]
seconds_per_step = 0.5
hold_start = 0.1
hold_end = 0.1

[output]
quality = "l"
encoder_preset = "ultrafast"
crf = 0

[look]
anti_aliasing = "none"
"""

STAGES = ("training", "capture", "curvature", "render", "encode", "export")
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
# What a caught signal must end with (issue 15: SIGTERM like Ctrl-C); SIGKILL cannot be caught.
CLEAN_EXIT = {"SIGINT": 130, "SIGTERM": 143}
# ...or death by the signal itself, which a shell reports as the same 128 + N: possible only once the command has
# returned and CPython's finalization has put the default handlers back (the export, done in 0.05 s, meets that).
# Anything else (0, 1, a traceback) is a failure.


def clean_exit(signame: str, rc: Optional[int]) -> bool:
    return rc in (CLEAN_EXIT[signame], -SIGNALS[signame])


def long_selected(config) -> bool:
    """Whether this pytest run selects the long fault matrix (``-m faults_long``); without it, those tests skip."""
    expr = config.getoption("markexpr", "") or ""
    return "faults_long" in expr and "not faults_long" not in expr


def skip_long(request) -> None:
    """For an autouse fixture in each fault test module (a conftest.py here would shadow tests/conftest.py, which
    the other tests import as ``conftest``)."""
    if request.node.get_closest_marker("faults_long") is not None and not long_selected(request.config):
        import pytest

        pytest.skip("the long fault matrix: pytest -m faults_long, or python benchmarks/faults.py")


def cli_env(cache: Path) -> dict:
    env = dict(os.environ)
    env.update({"LLSTUDIO_CACHE": str(cache), "PYVISTA_OFF_SCREEN": "true", "NO_COLOR": "1",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])})
    return env


# ------------------------------------------------------------------------------------------------ processes


class Watched:
    """A ``python -m llstudio`` subprocess whose stderr is read line by line (JSON progress events, timestamped)."""

    def __init__(self, args, env: dict, cwd: Path):
        self.start = time.monotonic()
        self.start_wall = time.time()
        # Ctrl-C's default action in the child even when this process was started with SIGINT ignored.
        self.proc = subprocess.Popen([sys.executable, "-m", "llstudio", *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=str(cwd),
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.lines: list[tuple[float, str]] = []
        self.events: list[tuple[float, dict]] = []
        self.stdout = ""
        self._cond = threading.Condition()
        self._readers = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for t in self._readers:
            t.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            t = time.monotonic() - self.start
            with self._cond:
                self.lines.append((t, line.rstrip("\n")))
                try:
                    ev = json.loads(line)
                    if isinstance(ev, dict):
                        self.events.append((t, ev))
                except ValueError:
                    pass
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_out(self) -> None:
        self.stdout = self.proc.stdout.read()

    def wait_event(self, match, timeout: float = TIMEOUT) -> Optional[tuple[float, dict]]:
        """The first event for which ``match(event)`` holds, waiting for it; None when the process ends first."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for t, ev in self.events[seen:]:
                    if match(ev):
                        return t, ev
                seen = len(self.events)
                if self.proc.poll() is not None and not self._readers[0].is_alive():
                    return None
                if time.monotonic() > deadline:
                    return None
                self._cond.wait(0.05)

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(30)
        for t in self._readers:
            t.join(10)
        return rc

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.lines)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def run(args, env: dict, cwd: Path, timeout: float = TIMEOUT) -> Watched:
    w = Watched(args, env, cwd)
    w.rc = w.wait(timeout)
    w.wall = w.elapsed
    return w


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids, timeout: float = 30.0) -> None:
    """Wait for orphans (an encoder left by a killed llstudio) to finish, then kill what remains."""
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in pids:
        if _alive(p):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)


# ------------------------------------------------------------------------------------------------ outputs


def decode(path: Path) -> list[np.ndarray]:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(gen)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3).copy() for f in gen]


def read_pngs(directory: Path) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(p)) for p in sorted(Path(directory).glob("*.png"))]


def read_export(directory: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for p in sorted(Path(directory).glob("*.npz")):
        with np.load(p) as z:
            out[p.name] = {k: z[k] for k in z.files}
    return out


def same_frames(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) > 0 and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


def _same_array(x: np.ndarray, y: np.ndarray) -> bool:
    return np.array_equal(x, y, equal_nan=x.dtype.kind in "fc" and y.dtype.kind in "fc")


def same_export(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and len(a) > 0 and all(
        a[f].keys() == b[f].keys() and all(_same_array(a[f][k], b[f][k]) for k in a[f]) for f in a)


def leftovers(*roots: Path) -> list[str]:
    """Temporary files (names that ``atomic_write`` or the film writer make: ``.NAME.….part…``) under ``roots``."""
    from llstudio.files import TEMP_NAME

    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames + dirnames:
                if TEMP_NAME.match(name) or (name.startswith(".") and ".part" in name):
                    found.append(str(Path(dirpath, name).relative_to(root)))
    return sorted(found)


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


# ------------------------------------------------------------------------------------------------ kills


@dataclass
class Reference:
    """The uninterrupted runs: their complete cache, what they made, and each stage's seconds."""

    work: Path
    cache: Path
    scene: Path
    film: list = field(default_factory=list)      # decoded frames of the mp4 (crf 0)
    pngs: list = field(default_factory=list)      # the PNG-sequence film's frames
    export: dict = field(default_factory=dict)    # the npz export's arrays
    seconds: dict = field(default_factory=dict)   # stage → seconds in the uninterrupted run


def command(stage: str, ref: Reference, out: Path) -> tuple[list, Path]:
    """The command a kill in ``stage`` interrupts, and where its output goes. 'render' is a PNG-sequence film
    (frames drawn and written one file each), 'encode' the mp4 (frames streamed to the encoder's temporary film),
    'export' an npz export; the first three stages run a whole mp4 render from an empty cache."""
    if stage == "render":
        return ["render", ref.scene, "--format", "png", "-o", out / "film", "--progress", "json"], out / "film"
    if stage == "export":
        return ["export", ref.scene, "-f", "npz", "-o", out / "export", "--progress", "json"], out / "export"
    return ["render", ref.scene, "-o", out / "film.mp4", "--progress", "json"], out / "film.mp4"


def _stage_seconds(w: Watched) -> dict:
    return {ev["stage"]: ev["seconds"] for _, ev in w.events if ev.get("event") == "stage" and "seconds" in ev}


def make_reference(work: Path, parts=("mp4", "png", "export")) -> Reference:
    """Run the uninterrupted commands once, in one cache: the mp4 (training to encode), then the PNG film and the
    export from that cache. Raises if one fails: without a reference nothing can be compared."""
    work.mkdir(parents=True, exist_ok=True)
    scene = work / "faults.toml"
    scene.write_text(KILL_TOML)
    ref = Reference(work, work / "ref-cache", scene)
    env = cli_env(ref.cache)
    out = work / "ref"
    out.mkdir(exist_ok=True)
    for part, stage in (("mp4", "encode"), ("png", "render"), ("export", "export")):
        if part not in parts:
            continue
        args, target = command(stage, ref, out)
        w = run(args, env, work)
        if w.rc != 0:
            raise RuntimeError(f"the uninterrupted {part} run failed ({w.rc}):\n{w.stderr[-3000:]}")
        secs = _stage_seconds(w)
        if part == "mp4":
            ref.seconds.update({k: v for k, v in secs.items() if k != "render"})
            ref.seconds["encode"] = secs["render"]
            ref.film = decode(target)
        elif part == "png":
            ref.seconds["render"] = secs["render"]
            ref.pngs = read_pngs(target)
        else:
            # No progress stage: from its last event (the capture found in the cache) until the last file was
            # written (its exit comes a second later: the interpreter's teardown is no part of the export).
            last = w.events[-1][0] if w.events else 0.0
            written = max(p.stat().st_mtime for p in target.iterdir())
            ref.seconds["export"] = max(0.05, written - (w.start_wall + last))
            ref.export_trigger = w.events[-1][1] if w.events else None
            ref.export = read_export(target)
    return ref


@dataclass
class KillResult:
    stage: str
    signal: str
    landed: bool = False       # the signal reached the running process
    landed_in: str = ""        # the stage its last progress line was in then ("after X": X had ended)
    killed_rc: Optional[int] = None
    resumed_rc: Optional[int] = None
    identical: bool = False
    left: list = field(default_factory=list)
    why: str = ""
    log: str = ""              # the killed run's stderr without its progress lines, kept when it failed

    @property
    def ok(self) -> bool:
        return self.landed and not self.why


def _trigger(stage: str, ref: Reference):
    if stage == "export":
        last = getattr(ref, "export_trigger", None)  # its text names the reference's cache: compare up to that
        head = (lambda ev: (ev.get("event"), str(ev.get("text", "")).split(" /")[0], ev.get("stage")))
        return lambda ev: last is None or head(ev) == head(last)
    name = "render" if stage == "encode" else stage
    return lambda ev: ev.get("event") == "stage" and ev.get("stage") == name and ev.get("done") == 0


def _where(w: Watched) -> str:
    stages = [ev for _, ev in list(w.events) if ev.get("event") == "stage"]
    if not stages:
        return "before any stage"
    return f"after {stages[-1]['stage']}" if "seconds" in stages[-1] else stages[-1]["stage"]


def kill_once(ref: Reference, stage: str, signame: str, rng: random.Random, work: Path) -> KillResult:
    """Run the command of ``stage`` in a fresh cache (a copy of the reference's for render, encode and export, so
    that only the stage itself runs), send ``signame`` at a random point of the stage, rerun to completion, and
    compare."""
    res = KillResult(stage, signame)
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    if stage in ("render", "encode", "export"):
        shutil.copytree(ref.cache, cache, symlinks=True)
    env = cli_env(cache)
    args, target = command(stage, ref, work)
    delay = rng.random() * ref.seconds.get(stage, 0.5)
    w = Watched(args, env, work)
    hit = w.wait_event(_trigger(stage, ref))
    orphans: list[int] = []
    if hit is not None:
        time.sleep(max(0.0, hit[0] + delay - w.elapsed))
        orphans = children(w.proc.pid)
        if w.proc.poll() is None:
            w.proc.send_signal(SIGNALS[signame])
            res.landed = True
            res.landed_in = _where(w)
    res.killed_rc = w.wait(120)
    wait_gone(orphans)
    if not res.landed:
        res.why = f"the run ended (exit {res.killed_rc}) before the signal, {delay:.2f} s into {stage}"
        return res
    problems = []
    if signame in CLEAN_EXIT and not clean_exit(signame, res.killed_rc):
        problems.append(f"{signame} exit {res.killed_rc}, expected {CLEAN_EXIT[signame]}")
    if has_traceback(w.stderr):
        problems.append(f"traceback after {signame}")
    again = run(args, env, work)
    res.resumed_rc = again.rc
    if again.rc != 0:
        problems.append(f"resume exit {again.rc}: {again.stderr.strip().splitlines()[-1:]}")
    else:
        if stage == "render":
            res.identical = same_frames(read_pngs(target), ref.pngs)
        elif stage == "export":
            res.identical = same_export(read_export(target), ref.export)
        else:
            res.identical = same_frames(decode(target), ref.film)
        if not res.identical:
            problems.append("resumed output differs from the uninterrupted one")
    res.left = leftovers(cache, work)
    if res.left:
        problems.append(f"left {', '.join(res.left)}")
    res.why = "; ".join(problems) + (f" (signal landed: {res.landed_in})" if problems else "")
    if problems:
        res.log = "\n".join(line for line in w.stderr.splitlines() if not line.startswith("{"))[-3000:]
    return res


# ------------------------------------------------------------------------------------------------ corruptions

# The tiny scene with curvature and a second training run: every kind of cache file exists (float64: a recomputed
# file equals the one it replaces, so the film is identical).
CORRUPT_SCENE: dict = {
    "version": 1, "title": "corrupt",
    "data": {"dataset": "digits", "eval_size": 64},
    "model": {"kind": "mlp", "hidden": [8], "activation": "tanh"},
    "training": {"optimizer": "sgd", "lr": 0.1, "steps": 12, "batch_size": 16, "seed": 0,
                 "runs": [{"name": "a"}, {"name": "b", "lr": 0.05}]},
    "directions": {"seed": 3},
    "grid": {"resolution": 5, "range": [-1.0, 1.0]},
    "capture": {"every": 4, "device": "cpu", "dtype": "float64", "curvature": {"resolution": 3}},
    "timeline": {"seconds_per_step": 0.2, "hold_start": 0.1, "hold_end": 0.1},
    "output": {"quality": "l", "encoder_preset": "ultrafast", "crf": 0},
    "look": {"anti_aliasing": "none"},
}

# kind → glob in the store root (the first match, sorted, is the one corrupted)
FILE_KINDS = {
    "step": "captures/*/step_*.npz",
    "curv": "captures/*/curv_*.npz",
    "trajectory": "captures/*/trajectory*.npz",
    "directions": "captures/*/directions.npz",
    "manifest": "captures/*/manifest.json",
    "training": "trainings/*/trajectory.npz",
}
CORRUPTIONS = ("truncate", "bitflip", "shape", "garbage")


def corrupt(path: Path, how: str, rng: random.Random) -> None:
    """Damage ``path`` in place: cut it to a third, flip 64 bits in its second half, replace its arrays (or JSON)
    by well-formed ones of the wrong shapes, or overwrite it with text that is neither npz nor JSON."""
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: max(1, len(data) // 3)])
    elif how == "bitflip":
        b = bytearray(data)
        for _ in range(64):
            i = rng.randrange(len(b) // 2, len(b))
            b[i] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(b))
    elif how == "shape":
        if path.suffix == ".json":
            path.write_text(json.dumps({"steps": "not a list", "scene": [1, 2, 3], "grid": {"resolution": -1}}))
        else:
            with np.load(path) as z:
                arrays = {k: np.zeros(tuple(s + 3 for s in z[k].shape) or (2,), z[k].dtype) for k in z.files}
            with open(path, "wb") as f:
                np.savez(f, **arrays)
    elif how == "garbage":
        path.write_text("{{{ not json, not a zip archive" + "\x00" * 50)
    else:
        raise ValueError(how)


@dataclass
class CorruptResult:
    kind: str
    how: str
    file: str = ""
    ran: bool = False
    warned: bool = False
    identical: bool = False
    why: str = ""

    @property
    def ok(self) -> bool:
        return not self.why


class CorruptionBench:
    """One reference store and film of CORRUPT_SCENE, made in this process; each case corrupts a copy of it."""

    def __init__(self, work: Path):
        import torch

        from llstudio.config.scene import scene_from_dict
        from llstudio.pipeline import capture_scene, render_film
        from llstudio.store.store import CaptureStore

        self.torch, self.capture_scene, self.render_film, self.Store = torch, capture_scene, render_film, CaptureStore
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.scene = scene_from_dict(CORRUPT_SCENE, source=str(work / "corrupt.toml"))
        self.root = work / "ref-store"
        cap = capture_scene(self.scene, device=torch.device("cpu"), store=CaptureStore(self.root))
        self.film = decode(render_film(cap, output=work / "ref.mp4"))

    def case(self, kind: str, how: str, rng: random.Random) -> CorruptResult:
        from llstudio.progress import Progress

        res = CorruptResult(kind, how)
        root = self.work / f"{kind}-{how}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.root, root)
        files = sorted(root.glob(FILE_KINDS[kind]))
        if not files:
            res.why = f"no {FILE_KINDS[kind]} in the store"
            return res
        target = files[len(files) // 2] if kind in ("step", "curv") else files[0]
        res.file = str(target.relative_to(root))
        corrupt(target, how, rng)
        if kind == "training":  # a capture reads the shared training only when it lacks the run: a new capture
            shutil.rmtree(root / "captures")
        buf = io.StringIO()
        film = root.parent / f"{kind}-{how}.mp4"
        handler = logging.StreamHandler(buf)  # a warning may come through logging, warnings, stderr or progress
        logging.getLogger().addHandler(handler)
        try:
            with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    cap = self.capture_scene(self.scene, device=self.torch.device("cpu"), store=self.Store(root),
                                             progress=Progress("auto", stream=buf))
                    self.render_film(cap, output=film)
            text = buf.getvalue() + "\n".join(str(w.message) for w in caught)
        except Exception as exc:  # noqa: BLE001 - the figure counts what a user would see as a failure
            res.why = f"{type(exc).__name__}: {str(exc)[:200]}"
            return res
        finally:
            logging.getLogger().removeHandler(handler)
        res.ran = True
        res.warned = target.name in text
        res.identical = same_frames(decode(film), self.film)
        problems = []
        if not res.warned:
            problems.append(f"no warning naming {target.name}")
        if not res.identical:
            problems.append("film differs")
        res.why = "; ".join(problems)
        return res


# ------------------------------------------------------------------------------------------------ disk


def unshare_works() -> Optional[str]:
    """None when ``unshare -rm`` can make a private mount namespace with a tmpfs here; else why not."""
    if shutil.which("unshare") is None:
        return "no unshare(1) on this platform"
    try:
        p = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp && echo ok"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -rm failed: {exc}"
    if p.stdout.strip() != "ok":
        return f"no private mount namespace (unshare -rm: {(p.stderr.strip() or p.stdout.strip())[:200]})"
    return None


@dataclass
class DiskResult:
    case: str
    rc: Optional[int] = None
    why: str = ""
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return not self.why and not self.skipped


def _in_namespace(setup: str, args, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """``llstudio ARGS`` inside ``unshare -rm`` after the shell ``setup`` (mounts) ran there."""
    cmd = " ".join(map(_q, [sys.executable, "-m", "llstudio", *map(str, args)]))
    return subprocess.run(["unshare", "-rm", "sh", "-c", f"{setup} && exec {cmd}"], capture_output=True, text=True,
                          env=env, cwd=str(cwd), timeout=TIMEOUT)


def _q(s: str) -> str:
    return "'" + str(s).replace("'", "'\"'\"'") + "'"


def disk_case(case: str, work: Path) -> DiskResult:
    """'full-cache' / 'full-output': the cache or the film on a full 256 KiB tmpfs; 'readonly-cache' /
    'readonly-output': on a read-only bind mount. Expected: a clean 'llstudio: error:' naming the place, no
    traceback, no temporary film left; a read-only place is refused with exit 2 before any work (nothing cached)."""
    res = DiskResult(case)
    why = unshare_works()
    # Without a mount namespace, a read-only directory is a chmod away, but only for a user who is not root.
    chmod = bool(why) and case.startswith("readonly") and hasattr(os, "geteuid") and os.geteuid() != 0
    if why and not chmod:
        res.skipped = why + ("" if case.startswith("full") else "; and root ignores a read-only mode")
        return res
    work.mkdir(parents=True, exist_ok=True)
    scene = work / "tiny.toml"
    scene.write_text(TINY_TOML)
    cache, place = work / "cache", work / "place"
    cache.mkdir(exist_ok=True)
    place.mkdir(exist_ok=True)
    mount = (f"mount -t tmpfs -o size=256k tmpfs {_q(place)}" if case.startswith("full")
             else f"mount --bind {_q(place)} {_q(place)} && mount -o remount,ro,bind {_q(place)}")
    if case.startswith("full"):  # fill it, as a full disk is
        mount += f" && (head -c 1M /dev/zero > {_q(place / 'filler')} 2>/dev/null; true)"
    env = cli_env(place / "cache" if case.endswith("cache") else cache)
    out = work / "film.mp4" if case.endswith("cache") else place / "film.mp4"
    if chmod:
        place.chmod(0o555)
        try:
            p = subprocess.run([sys.executable, "-m", "llstudio", "render", str(scene), "-o", str(out)],
                               capture_output=True, text=True, env=env, cwd=str(work), timeout=TIMEOUT)
        finally:
            place.chmod(0o755)
    else:
        p = _in_namespace(mount, ["render", scene, "-o", out], env, work)
    res.rc = p.returncode
    problems = []
    if has_traceback(p.stderr):
        problems.append(f"traceback ({p.stderr.strip().splitlines()[-1][:160]})")
    # A read-only place is bad input, found before any work: exit 2. A disk that fills up can only be found when a
    # write fails: a clean error then (exit 1 like any failed write, or 2 if a check saw it coming).
    expected = (1, 2) if case.startswith("full") else (2,)
    if p.returncode not in expected:
        problems.append(f"exit {p.returncode}, expected {' or '.join(map(str, expected))}")
    elif "llstudio: error:" not in p.stderr or str(place) not in p.stderr:
        problems.append(f"no 'llstudio: error:' message naming {place}")
    if case == "readonly-output" and any(cache.rglob("*.npz")):
        problems.append("the cache was written before the output path was found unusable")
    left = leftovers(place) if case.endswith("output") else []
    if left:
        problems.append(f"left {left}")
    res.why = "; ".join(problems)
    return res


TINY_TOML = """\
version = 1
title = "tiny"

[data]
dataset = "digits"
eval_size = 64

[model]
kind = "mlp"
hidden = [8]
activation = "tanh"

[training]
optimizer = "sgd"
lr = 0.1
steps = 12
batch_size = 16
seed = 0

[directions]
seed = 3

[grid]
resolution = 5
range = [-1.0, 1.0]

[capture]
every = 4
device = "cpu"
dtype = "float64"

[timeline]
seconds_per_step = 0.2
hold_start = 0.1
hold_end = 0.1

[output]
quality = "l"
encoder_preset = "ultrafast"
crf = 0

[look]
anti_aliasing = "none"
"""


@dataclass
class ConcurrentResult:
    processes: int
    rcs: list = field(default_factory=list)
    trained: int = 0
    captured: int = 0
    identical: int = 0
    why: str = ""

    @property
    def ok(self) -> bool:
        return not self.why


def concurrent_renders(work: Path, n: int = 4) -> ConcurrentResult:
    """``n`` renders of one scene started at once into one cache: all succeed, one trains and captures (the others
    wait on the store's locks and reuse it), and the films are identical."""
    res = ConcurrentResult(n)
    work.mkdir(parents=True, exist_ok=True)
    scene = work / "tiny.toml"
    scene.write_text(TINY_TOML.replace("steps = 12", "steps = 40"))
    env = cli_env(work / "cache")
    procs = [Watched(["render", scene, "-o", work / f"film{i}.mp4", "--progress", "json"], env, work)
             for i in range(n)]
    res.rcs = [w.wait() for w in procs]
    secs = [_stage_seconds(w) for w in procs]
    res.trained = sum("training" in s for s in secs)
    res.captured = sum("capture" in s for s in secs)
    problems = []
    if any(rc != 0 for rc in res.rcs):
        bad = [(rc, w.stderr.strip().splitlines()[-1:]) for rc, w in zip(res.rcs, procs) if rc != 0]
        problems.append(f"exit statuses {res.rcs}: {bad}")
    else:
        films = [decode(work / f"film{i}.mp4") for i in range(n)]
        res.identical = sum(same_frames(f, films[0]) for f in films)
        if res.identical != n:
            problems.append(f"{n - res.identical} film(s) differ from the first")
    if res.trained != 1 or res.captured != 1:
        problems.append(f"trained {res.trained}x, captured {res.captured}x (expected once each)")
    left = leftovers(work)
    if left:
        problems.append(f"left {left}")
    res.why = "; ".join(problems)
    return res


# ------------------------------------------------------------------------------------------------ fuzz


def schema() -> dict:
    from llstudio.config.scene import json_schema

    return json.loads(json_schema())


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: the same escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return '""'  # TOML has no null
    raise TypeError(type(v))


def to_toml(d: dict) -> str:
    """A scene dict as TOML: top-level scalars, then one [table] per section (nested values inline)."""
    head = [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    body = []
    for k, v in d.items():
        if isinstance(v, dict):
            body.append(f"\n[{json.dumps(str(k))}]")
            body += [f"{json.dumps(str(kk))} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(head + body) + "\n"


def _resolve(s: dict, root: dict) -> dict:
    while "$ref" in s:
        name = s["$ref"].split("/")[-1]
        s = {**root.get("$defs", root.get("definitions", {}))[name], **{k: v for k, v in s.items() if k != "$ref"}}
    return s


def value_strategy(s: dict, root: dict, depth: int = 0):
    """A hypothesis strategy of values for the JSON Schema ``s``: mostly of its type, near its bounds and enums,
    and sometimes of another type altogether (invalid on purpose)."""
    from hypothesis import strategies as st

    s = _resolve(s, root)
    wrong = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                      st.text(max_size=12), st.lists(st.integers(-3, 3), max_size=3))
    for key in ("anyOf", "oneOf", "allOf"):
        if key in s:
            return st.one_of(*[value_strategy(x, root, depth + 1) for x in s[key]], wrong)
    if "enum" in s:
        return st.one_of(st.sampled_from(s["enum"]), wrong)
    if "const" in s:
        return st.one_of(st.just(s["const"]), wrong)
    t = s.get("type")
    lo, hi = s.get("minimum", s.get("exclusiveMinimum")), s.get("maximum", s.get("exclusiveMaximum"))
    if t == "integer":
        edges = [x for x in (lo, hi) if x is not None]
        return st.one_of(st.integers(-5, 400), st.sampled_from([int(x) + d for x in edges for d in (-1, 0, 1)] or [0]),
                         wrong)
    if t == "number":
        return st.one_of(st.floats(-1e3, 1e3), st.sampled_from([0.0, -1.0, 1e-12, 1e300, float("inf"),
                                                                 float("nan")]), wrong)
    if t == "boolean":
        return st.one_of(st.booleans(), wrong)
    if t == "string":
        return st.one_of(st.text(max_size=16), st.sampled_from(["", "#ff0000", "viridis", "auto", "x" * 200]), wrong)
    if t == "array" and depth < 3:
        item = value_strategy(s.get("items", {}), root, depth + 1) if isinstance(s.get("items"), dict) else wrong
        return st.one_of(st.lists(item, max_size=4), wrong)
    if t == "object" and depth < 3 and "properties" in s:
        props = s["properties"]
        return st.one_of(st.dictionaries(st.sampled_from(sorted(props)), st.deferred(lambda: wrong), max_size=3),
                         st.fixed_dictionaries({}, optional={k: value_strategy(v, root, depth + 1)
                                                             for k, v in list(props.items())[:12]}))
    return wrong


def scene_strategy(base: dict):
    """Scene dicts: ``base`` (a valid scene) with 1-4 keys of its sections replaced by values drawn from the schema
    (valid and invalid), sometimes an unknown key or section, sometimes a section dropped."""
    from hypothesis import strategies as st

    root = schema()
    sections = {k: _resolve(v, root) for k, v in root.get("properties", {}).items()}
    edits = []
    for name, sec in sections.items():
        for key, sub in sec.get("properties", {}).items():
            edits.append(st.tuples(st.just(name), st.just(key), value_strategy(sub, root)))
        if "properties" not in sec:
            edits.append(st.tuples(st.just(name), st.none(), value_strategy(sec, root)))
    edits.append(st.tuples(st.sampled_from(sorted(sections) + ["bogus"]), st.text(min_size=1, max_size=8),
                           st.integers()))
    edits.append(st.tuples(st.sampled_from(sorted(base)), st.just("__drop__"), st.none()))

    def apply(changes):
        d = json.loads(json.dumps(base))
        for name, key, value in changes:
            if key == "__drop__":
                d.pop(name, None)
            elif key is None or not isinstance(d.get(name, {}), dict):
                d[name] = value
            else:
                d.setdefault(name, {})[key] = value
        return d

    return st.lists(st.one_of(*edits), min_size=1, max_size=4).map(apply)


def text_strategy():
    """Raw scene texts that are not TOML, or TOML of the wrong shape: the loader's first line of defence."""
    from hypothesis import strategies as st

    return st.one_of(st.text(max_size=200), st.sampled_from(["[data", "version = ", "[[panels]]\nx=1", "a.b.c = 1",
                                                               "version = 1\n[data]\n[data]\n", "\x00\xff"]),
                     st.binary(max_size=100).map(lambda b: b.decode("latin-1")))


@dataclass
class FuzzOutcome:
    rc: Optional[int]
    traceback: str = ""


def check_in_process(path: Path) -> FuzzOutcome:
    """``llstudio check PATH`` through the CLI's own ``main`` in this process: its exit status, or the traceback of
    an exception that escaped it (what a user would see)."""
    import traceback

    from llstudio import cli

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            rc = cli.main(["check", str(path)])
    except SystemExit as exc:  # argparse
        return FuzzOutcome(exc.code if isinstance(exc.code, int) else 2)
    except BaseException:  # noqa: BLE001 - exactly what the fuzz looks for
        return FuzzOutcome(None, traceback.format_exc())
    if has_traceback(out.getvalue()):
        return FuzzOutcome(rc, out.getvalue())
    return FuzzOutcome(rc)
