"""Shared fixtures: an isolated cache, a tiny scene, and a once-per-session check for off-screen OpenGL."""

from __future__ import annotations

import copy
import os
import re
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SCENES_DIR = REPO / "scenes"

# The smallest scene that still exercises every stage: 12 training steps, 4 captured steps, a 5x5 grid.
TINY_SCENE: dict = {
    "version": 1,
    "title": "tiny",
    "data": {"dataset": "digits", "eval_size": 64},
    "model": {"kind": "mlp", "hidden": [8], "activation": "tanh"},
    "training": {"optimizer": "sgd", "lr": 0.1, "steps": 12, "batch_size": 16, "seed": 0},
    "directions": {"seed": 3},
    "grid": {"resolution": 5, "range": [-1.0, 1.0]},
    "capture": {"every": 4, "device": "cpu"},
    "timeline": {"seconds_per_step": 0.2, "hold_start": 0.1, "hold_end": 0.1, "interpolation": "cubic"},
    "output": {"quality": "l", "encoder_preset": "ultrafast"},
    "look": {"anti_aliasing": "none"},
}

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

[timeline]
seconds_per_step = 0.2
hold_start = 0.1
hold_end = 0.1
interpolation = "cubic"

[output]
quality = "l"
encoder_preset = "ultrafast"

[look]
anti_aliasing = "none"
"""


def tiny_dict(**overrides) -> dict:
    """A deep copy of the tiny scene with ``section={key: value}`` overrides merged in."""
    d = copy.deepcopy(TINY_SCENE)
    for section, values in overrides.items():
        if isinstance(values, dict):
            d.setdefault(section, {}).update(values)
        else:
            d[section] = values
    return d


def make_scene(path: str | Path = "tiny.toml", **overrides):
    from llstudio.config.scene import scene_from_dict

    return scene_from_dict(tiny_dict(**overrides), source=str(path))


@pytest.fixture(scope="session", autouse=True)
def _private_xdg_cache(tmp_path_factory):
    """Keep everything the suite's processes cache (Mesa shaders, matplotlib, llstudio's fallback root) out of
    the user's ~/.cache. Session-wide, so subprocesses share one warm cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own capture cache; nothing is ever written to ~/.cache or the repo."""
    root = tmp_path_factory.mktemp("llstudio-cache")
    monkeypatch.setenv("LLSTUDIO_CACHE", str(root))
    return root


@pytest.fixture
def tiny_scene(tmp_path):
    return make_scene(tmp_path / "tiny.toml")


@pytest.fixture
def tiny_toml(tmp_path) -> Path:
    p = tmp_path / "scenes" / "tiny.toml"
    p.parent.mkdir()
    p.write_text(TINY_TOML)
    return p


@pytest.fixture(scope="session")
def tiny_capture(tmp_path_factory):
    """The tiny scene trained and captured once per session, in a store of its own (read-only for tests)."""
    import torch

    from llstudio.pipeline import capture_scene
    from llstudio.store.store import CaptureStore

    root = tmp_path_factory.mktemp("session-store")
    scene = make_scene(root / "tiny.toml")
    return capture_scene(scene, device=torch.device("cpu"), store=CaptureStore(root))


# ------------------------------------------------------------------------------------------- OpenGL check

_GL_PROBE = "from llstudio.renderer.backend import render_window_info; info = render_window_info(); print(info['window'])"


@pytest.fixture(scope="session")
def gl_context() -> str:
    """Try once, in a subprocess (a failing GL context can crash the interpreter), to render off-screen."""
    try:
        proc = subprocess.run([sys.executable, "-c", _GL_PROBE], capture_output=True, text=True, timeout=180,
                              cwd=str(REPO), env={**os.environ, "PYVISTA_OFF_SCREEN": "true"})
    except (subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"no off-screen OpenGL context: {exc}")
    if proc.returncode != 0:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in (proc.stderr + proc.stdout).splitlines()]
        lines = [ln for ln in lines if ln]
        errors = [ln for ln in lines if "rror" in ln or "not found" in ln]
        why = (errors or lines or [""])[-1]
        pytest.skip(f"no off-screen OpenGL context (probe exit status {proc.returncode}): {why}")
    return proc.stdout.strip()


@pytest.fixture(autouse=True)
def _skip_render_without_gl(request):
    if request.node.get_closest_marker("render") is not None:
        request.getfixturevalue("gl_context")


@pytest.fixture
def cli_env(isolated_cache) -> dict:
    """Environment for ``python -m llstudio`` subprocesses: the isolated cache, off-screen, no colour."""
    env = dict(os.environ)
    env.update({"LLSTUDIO_CACHE": str(isolated_cache), "PYVISTA_OFF_SCREEN": "true", "NO_COLOR": "1",
                "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2")})
    return env


def perturbed_stats(model, seed: int = 0) -> dict:
    """BatchNorm running statistics as after some training, not the (0, 1) of a fresh model: name → float64
    tensor for every running_mean and running_var buffer of ``model``."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.named_buffers():
        if k.endswith("running_mean"):
            out[k] = 0.3 * torch.randn(v.shape, generator=g, dtype=torch.float64)
        elif k.endswith("running_var"):
            out[k] = 0.5 + torch.rand(v.shape, generator=g, dtype=torch.float64)
    return out


# ------------------------------------------------------------------------------------------------ command line

TIMEOUT = 240


def run_cli(args, env, cwd, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llstudio", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=str(cwd), timeout=timeout)


def stream_info(path) -> str:
    """ffmpeg's one-line description of the video stream (codec, profile, pixel format, colour tags, size, fps)."""
    import imageio_ffmpeg

    err = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                         text=True).stderr
    lines = [ln for ln in err.splitlines() if "Video:" in ln]
    assert len(lines) == 1, err
    return lines[0]


def decode(path, rgba=False) -> tuple[dict, list[np.ndarray]]:
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgba" if rgba else "rgb24",
                                     bits_per_pixel=32 if rgba else 24)
    meta = next(gen)
    w, h = meta["size"]
    return meta, [np.frombuffer(f, np.uint8).reshape(h, w, 4 if rgba else 3) for f in gen]


# ------------------------------------------------------------------------------------------------ panels

PANELS_TOML = TINY_TOML + """
[[panels]]
title = "batch size 4"
training = { batch_size = 4 }

[[panels]]
title = "batch size 64"
training = { batch_size = 64, steps = 20 }
look = { colormap = "magma" }
"""


@pytest.fixture(scope="session")
def panel_capture(tmp_path_factory):
    """PANELS_TOML's two panels, of different length: 12 steps (4 captured) beside 20 steps (6 captured) with
    another batch size and colormap. Its store is also the cache of tests/e2e/test_cli_panels.py."""
    import torch

    from llstudio.pipeline import capture_scene
    from llstudio.store.store import CaptureStore

    root = tmp_path_factory.mktemp("panel-store")
    scene = make_scene(root / "cmp.toml", panels=[{"title": "short", "training": {"batch_size": 4}},
                                                  {"title": "long", "training": {"batch_size": 64, "steps": 20},
                                                   "look": {"colormap": "magma"}}],
                       layout={"gap": 0.05, "gap_color": "#ff0000"})
    return capture_scene(scene, device=torch.device("cpu"), store=CaptureStore(root))


def write_mnist(root, n: int = 30):
    """A miniature MNIST in torchvision's own file format under ``root``."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, k in (("train", n), ("t10k", 5)):
        for kind, shape in (("images-idx3", (k, 28, 28)), ("labels-idx1", (k,))):
            arr = rng.integers(0, 10 if kind.startswith("labels") else 256, shape)
            with open(raw / f"{split}-{kind}-ubyte", "wb") as f:
                f.write(struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape))
                f.write(arr.astype(">u1").tobytes())


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``user_module(name, source)``: a module of the user's (a model or data factory) written to ``tmp_path`` and
    importable by ``name`` for the test; it is forgotten afterwards, so the next test imports its own."""
    names = []

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)
