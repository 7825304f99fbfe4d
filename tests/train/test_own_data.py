"""A scene's own data: 'custom' (a factory function) and 'files' (.npz / .pt arrays, never unpickled). The fixed
evaluation subset, the batches and the cache key work as for the built-in sets, every captured value equals a
plain float64 forward pass on those data, and a bad factory or file is refused (exit 2) naming its key, before
anything is written."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from conftest import make_scene, tiny_dict
from llstudio import cli
from llstudio.pipeline import capture_key, capture_scene, training_key
from llstudio.train.data import load_dataset

FACTORY = """
import numpy as np
import torch

def samples(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)

class Held(torch.utils.data.Dataset):
    def __init__(self):
        self.x, self.y = samples(30, 1)
    def __len__(self):
        return len(self.y)
    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), int(self.y[i])

def load():
    x, y = samples(120, 0)
    return (torch.from_numpy(x), torch.from_numpy(y)), Held()

def train_only():
    return samples(120, 0), None

def broken():
    raise RuntimeError("the bucket is empty")

def wrong():
    return {"x": 1}
"""

SMALL = {"model": {"kind": "mlp", "hidden": [4], "activation": "tanh"},
         "training": {"steps": 6, "batch_size": 16, "lr": 0.5}, "capture": {"every": 3, "device": "cpu",
                                                                            "dtype": "float64"},
         "grid": {"resolution": 3, "range": [-1.0, 1.0]}}


@pytest.fixture
def data_module(user_module):
    return user_module("llstudio_test_own_data", FACTORY)


def brute_force(cap) -> np.ndarray:
    """(steps, nx, ny): every grid value as a plain float64 forward pass of the model at those weights."""
    x, y = (torch.as_tensor(a) for a in cap.eval_data)
    model = cap.model(0).double()
    d1, d2 = cap.directions
    out = np.empty(cap.loss.shape)
    for k in range(len(cap.steps)):
        c = cap.center(k)
        for i, a in enumerate(cap.alphas * cap.scales[k]):
            for j, b in enumerate(cap.betas * cap.scales[k]):
                w = {n: c[n].double() + a * d1[n].double() + b * d2[n].double() for n in c}
                with torch.no_grad():
                    out[k, i, j] = float(nn.functional.cross_entropy(functional_call(model, w, (x.double(),)), y))
    return out


def test_custom_data_captures_a_plain_forward_pass(data_module, tmp_path):
    scene = make_scene(tmp_path / "own.toml", data={"dataset": "custom", "factory": f"{data_module}:load",
                                                    "eval_size": 12}, **SMALL)
    cap = capture_scene(scene)
    # The evaluation subset: drawn with eval_seed from the factory's own evaluation Dataset, as load_dataset says.
    held = sys.modules[data_module].Held()
    rng = np.random.default_rng(0)
    rng.permutation(120)
    pick = np.sort(rng.choice(30, size=12, replace=False))
    np.testing.assert_array_equal(cap.eval_data[0], held.x[pick])
    np.testing.assert_array_equal(cap.eval_data[1], held.y[pick])
    np.testing.assert_allclose(cap.loss, brute_force(cap), rtol=1e-10)
    assert cap.loss.shape == (3, 3, 3) and len(cap.train_loss) == 6
    # Without eval data, the subset is drawn from the training samples as for a built-in set.
    own = load_dataset(scene.data.model_copy(update={"factory": f"{data_module}:train_only"}))
    assert own.x_eval.shape == (12, 5) and own.n_classes == 3
    assert all(any(np.array_equal(r, t) for t in own.x_train) for r in own.x_eval)


def test_files_data_capture_a_plain_forward_pass(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, 2, 3)).astype(np.float32)  # image-shaped samples: an MLP gets them flattened
    y = (x[:, 0, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    torch.save({"x": torch.from_numpy(x[:20] * 2), "y": torch.from_numpy(y[:20])}, tmp_path / "eval.pt")
    scene = make_scene(tmp_path / "files.toml", data={"dataset": "files", "path": "train.npz",
                                                      "eval_path": "eval.pt", "eval_size": 20}, **SMALL)
    cap = capture_scene(scene)
    np.testing.assert_array_equal(cap.eval_data[0], (x[:20] * 2).reshape(20, 6))  # all of eval.pt, in order
    np.testing.assert_allclose(cap.loss, brute_force(cap), rtol=1e-10)
    assert "0.weight" in cap.centers[0]  # the first linear layer keeps its name on image-shaped samples
    # The key covers the files' contents, not their names.
    key, tkey = capture_key(scene, "cpu"), training_key(scene, "cpu")
    np.savez(tmp_path / "train.npz", x=x, y=1 - y)
    assert capture_key(scene, "cpu") != key and training_key(scene, "cpu") != tkey


def test_the_key_covers_the_data_factorys_source(data_module, tmp_path):
    scene = make_scene(tmp_path / "own.toml", data={"dataset": "custom", "factory": f"{data_module}:load"})
    key = capture_key(scene, "cpu")
    assert capture_key(scene, "cpu") == key
    (tmp_path / f"{data_module}.py").write_text(textwrap.dedent(FACTORY) + "\n# edited\n")
    assert capture_key(scene, "cpu") != key


def _write(path, **overrides):
    import json

    lines = []
    for section, value in tiny_dict(**overrides).items():
        if isinstance(value, dict):
            lines += [f"[{section}]", *(f"{k} = {json.dumps(v)}" for k, v in value.items())]
        else:
            lines.insert(0, f"{section} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _everything(*dirs):
    return sorted(str(p) for d in dirs if d.exists() for p in d.rglob("*"))


class Pickled:
    pass


@pytest.mark.parametrize("data,key,says", [
    ({"dataset": "custom", "factory": "MOD:broken"}, "data.factory", "the bucket is empty"),
    ({"dataset": "custom", "factory": "MOD:wrong"}, "data.factory", "must return (train, eval)"),
    ({"dataset": "custom", "factory": "MOD:nope"}, "data.factory", "has no attribute 'nope'"),
    ({"dataset": "custom", "factory": "no_such_pkg_xyz.data:load"}, "data.factory", "cannot import module"),
    ({"dataset": "files", "path": "missing.npz"}, "data.path", "does not exist"),
    ({"dataset": "files", "path": "objects.npz"}, "data.path", "pickled objects"),
    ({"dataset": "files", "path": "objects.pt"}, "data.path", "weights_only=True"),
    ({"dataset": "files", "path": "nox.npz"}, "data.path", "must hold arrays 'x' and 'y'; it holds z"),
    ({"dataset": "files", "path": "ok.npz", "eval_path": "missing.pt"}, "data.eval_path", "does not exist"),
    ({"dataset": "files"}, "data.path", "exactly when data.dataset = 'files'"),
])
@pytest.mark.parametrize("command", ["render", "check"])
def test_bad_own_data_is_refused_naming_its_key(data, key, says, command, data_module, tmp_path, monkeypatch,
                                                capsys, isolated_cache):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2, np.int64))
    torch.save({"x": Pickled(), "y": torch.zeros(2)}, tmp_path / "objects.pt")
    np.savez(tmp_path / "nox.npz", z=np.zeros(3))
    np.savez(tmp_path / "ok.npz", x=np.zeros((4, 2), np.float32), y=np.zeros(4, np.int64))
    data = {k: v.replace("MOD", data_module) if isinstance(v, str) else v for k, v in data.items()}
    scene = _write(tmp_path / "bad.toml", data=data)
    before = _everything(tmp_path, isolated_cache)
    assert cli.main([command, str(scene), "-q", "l"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{key}: " in err and says in err, err
    assert _everything(tmp_path, isolated_cache) == before


def test_a_factory_beside_the_scene_imports_from_the_working_directory(tmp_path, monkeypatch):
    """The ``llstudio`` command's script, unlike ``python -m llstudio``, does not put the working directory on the
    import path: the factory module next to the scene must be found all the same."""
    from llstudio.train.factories import import_callable

    (tmp_path / "llstudio_cwd_factory.py").write_text("def load():\n    return 'loaded'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert import_callable("llstudio_cwd_factory:load", "data.factory")() == "loaded"
    assert sys.path[-1] == str(tmp_path)  # last: an installed package of the same name still wins
