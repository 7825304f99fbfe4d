"""Your own training loop: llstudio.Recorder in a hand-written loop (AdamW, a LR scheduler, gradient clipping),
filmed with ``[training] source`` in both frames with every direction kind; its captured weights are the loop's
exactly. Recorded mini-batches make a mini-batch ('earthquake') capture; a killed recording resumes; a folder of
checkpoints named by step films too; a source that does not fit the scene is refused (exit 2) naming the key."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import llstudio
from conftest import REPO, make_scene, tiny_dict
from llstudio import cli
from llstudio.pipeline import capture_key, capture_scene
from llstudio.pipeline.cost import estimate
from llstudio.train.recorder import read_source

STEPS, EVERY = 12, 4


def hand_written_run(path, every=EVERY, seed=0):
    """Train a 64-6-10 MLP on the digits with the script's own loop; record it. Returns the weights after every
    update as the loop saw them (step → {name: tensor}) and the mini-batches (update → (x, y))."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x_all = torch.tensor(d.data / 16.0, dtype=torch.float32)
    x_all -= x_all.mean(0)
    y_all = torch.tensor(d.target)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 6), nn.Tanh(), nn.Linear(6, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    g = torch.Generator().manual_seed(seed)
    seen = {0: {k: v.detach().clone() for k, v in model.named_parameters()}}
    batches = {}
    with llstudio.Recorder(path, model, every=every, flush_seconds=0) as rec:
        for step in range(STEPS):
            idx = torch.randint(0, len(y_all), (16,), generator=g)
            x, y = x_all[idx], y_all[idx]
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            sched.step()
            rec.step(step, loss=loss, batch=(x, y))
            seen[step + 1] = {k: v.detach().clone() for k, v in model.named_parameters()}
            batches[step] = (x, y)
    return seen, batches


def source_scene(tmp_path, source, **over):
    base = {"model": {"kind": "mlp", "hidden": [6], "activation": "tanh"},
            "training": {"source": str(source), "steps": STEPS},
            "capture": {"every": EVERY, "device": "cpu"}, "grid": {"resolution": 3, "range": [-0.5, 0.5]}}
    for k, v in over.items():
        base[k] = {**base.get(k, {}), **v}
    return make_scene(tmp_path / "own.toml", **base)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "my_run"
    seen, batches = hand_written_run(path)
    return path, seen, batches


KINDS = [({"kind": "random", "frame": "follow"}, {}), ({"kind": "random", "frame": "fixed"}, {}),
         ({"kind": "pca", "frame": "follow"}, {}), ({"kind": "pca", "frame": "fixed", "center": "initial"}, {}),
         ({"kind": "weights", "weights": ["2.weight[3,1]", "2.weight[5,4]"], "frame": "follow"}, {}),
         ({"kind": "weights", "weights": ["2.weight[3,1]", "2.weight[5,4]"], "frame": "fixed"}, {}),
         ({"kind": "hessian", "frame": "fixed"}, {}), ({"kind": "hessian", "frame": "follow", "hessian_step": 4}, {}),
         ({"kind": "interpolation", "start": "initial", "end": "final"}, {"range": [-0.5, 1.5]})]


@pytest.mark.parametrize("directions,grid", KINDS, ids=lambda v: "-".join(map(str, v.values())) if v else "")
def test_a_recorded_run_films_with_every_direction_kind(directions, grid, recorded, tmp_path):
    path, seen, _ = recorded
    scene = source_scene(tmp_path, path, directions=directions, grid=grid)
    cap = capture_scene(scene)
    assert list(cap.steps) == [0, 4, 8, 12]
    for k, s in enumerate(cap.steps):  # the loop's own weights, bit for bit
        assert cap.centers[k].keys() == seen[s].keys()
        assert all(torch.equal(cap.centers[k][n], seen[s][n]) for n in seen[s])
    assert np.isfinite(cap.loss).all() and cap.loss.shape[0] == 4
    # Grid values are the loss of the loop's network at those weights on the evaluation subset.
    x, y = (torch.as_tensor(a) for a in cap.eval_data)
    d1, d2 = cap.directions
    model = cap.model(2)
    for i, j in ((1, 1), (0, len(cap.betas) - 1)):
        c = cap.center(2)
        w = {n: c[n] + float(cap.alphas[i]) * d1[n] + float(cap.betas[j]) * d2[n] for n in c}
        with torch.no_grad():
            want = float(nn.functional.cross_entropy(functional_call(model, w, (x,)), y))
        assert cap.loss[2, i, j] == pytest.approx(want, rel=1e-5)
    assert len(cap.train_loss) == STEPS and np.isfinite(cap.train_loss).all()


def test_recorded_minibatches_make_an_earthquake_capture(recorded, tmp_path):
    path, seen, batches = recorded
    scene = source_scene(tmp_path, path, capture={"data": "batch"}, directions={"frame": "follow"})
    cap = capture_scene(scene)
    for k, s in enumerate(cap.steps):
        x, y = batches[min(s, STEPS - 1)]  # the update after step s (the last update's for the last step)
        model = cap.model(k)
        with torch.no_grad():
            want = float(nn.functional.cross_entropy(model(x), y))
        assert cap.loss[k, 1, 1] == pytest.approx(want, rel=1e-5)
    # Each step has a landscape of its own: the surface shakes from step to step.
    assert len({round(float(v), 6) for v in cap.loss[:, 1, 1]}) == 4


@pytest.mark.render
def test_an_earthquake_film_renders_from_a_recording(recorded, tmp_path, isolated_cache):
    """The whole command on a recorded run with mini-batches: a film is written."""
    path, _, _ = recorded
    scene_file = tmp_path / "quake.toml"
    d = tiny_dict(model={"kind": "mlp", "hidden": [6], "activation": "tanh"},
                  training={"source": str(path), "steps": STEPS}, capture={"every": EVERY, "device": "cpu",
                                                                           "data": "batch"},
                  timeline={"seconds_per_step": 0.1, "hold_start": 0.0, "hold_end": 0.0})
    lines = []
    for section, value in d.items():
        if isinstance(value, dict):
            lines += [f"[{section}]", *(f"{k} = {json.dumps(v)}" for k, v in value.items())]
        else:
            lines.insert(0, f"{section} = {json.dumps(value)}")
    scene_file.write_text("\n".join(lines) + "\n")
    out = tmp_path / "quake.mp4"
    assert cli.main(["render", str(scene_file), "-q", "l", "-o", str(out), "--progress", "none"]) == 0
    assert out.stat().st_size > 1000


def test_a_folder_of_checkpoints_films(recorded, tmp_path):
    _, seen, _ = recorded
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for s in (0, 4, 8, 12):
        torch.save({"model": seen[s], "epoch": s}, folder / f"step_{s:03d}.pt")
    cap = capture_scene(source_scene(tmp_path, folder, directions={"kind": "pca", "frame": "fixed"}))
    assert all(torch.equal(cap.centers[k][n], seen[s][n]) for k, s in enumerate(cap.steps) for n in seen[s])
    assert len(cap.train_loss) == 0  # checkpoints hold no losses: no loss curve
    assert estimate(cap.scene)["training_steps"] == 0  # check's estimate: nothing is trained


def test_the_key_covers_the_recordings_contents(recorded, tmp_path):
    path, seen, _ = recorded
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for s in (0, 4, 8, 12):
        torch.save(seen[s], folder / f"{s}.pt")
    scene = source_scene(tmp_path, folder)
    key = capture_key(scene, "cpu")
    torch.save(seen[4], folder / "12.pt")
    assert capture_key(scene, "cpu") != key


SCRIPT = """
import os, signal, sys
import torch
from torch import nn
import llstudio

path, kill_at = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(40, 3, generator=torch.Generator().manual_seed(1))
y = (x[:, 0] > 0).long()
rec = llstudio.Recorder(path, model, every=3, flush_seconds=0)
for step in range(20):
    loss = nn.functional.cross_entropy(model(x[step:step + 8]), y[step:step + 8])
    opt.zero_grad(); loss.backward(); opt.step()
    rec.step(step, loss=loss, batch=(x[step:step + 8], y[step:step + 8]))
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
rec.close()
"""


def test_a_killed_recording_resumes(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = lambda path, kill: subprocess.run([sys.executable, str(script), str(path), str(kill)], env=env,  # noqa
                                            capture_output=True, text=True, timeout=120)
    assert run(tmp_path / "whole", -1).returncode == 0
    assert run(tmp_path / "killed", 10).returncode == -signal.SIGKILL
    partial = read_source(tmp_path / "killed")
    assert partial.steps == [0, 3, 6, 9] and not partial.closed
    # Run the same script again into the same folder: it resumes after step 9 and finishes the recording.
    assert run(tmp_path / "killed", -1).returncode == 0
    a, b = read_source(tmp_path / "whole"), read_source(tmp_path / "killed")
    assert a.steps == b.steps == [0, 3, 6, 9, 12, 15, 18, 20] and b.closed
    assert all(torch.equal(wa[n], wb[n]) for wa, wb in zip(a.weights, b.weights) for n in wa)
    assert a.loss == b.loss and sorted(a.loss) == list(range(20))
    assert sorted(a.batches) == sorted(b.batches) == [0, 3, 6, 9, 12, 15, 18, 19]
    assert not [p for p in (tmp_path / "killed").iterdir() if p.name.startswith(".")]  # no partial chunk left
    with pytest.raises(FileExistsError, match="finished recording"):
        llstudio.Recorder(tmp_path / "whole", nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), every=3)


def _everything(*dirs):
    return sorted(str(p) for d in dirs if d.exists() for p in d.rglob("*"))


class NotTensors:
    pass


@pytest.mark.parametrize("what,key,says", [
    ("wider", "training.source", "0.weight (6, 64) (the model's is (7, 64))"),
    ("deeper", "training.source", "the model's parameters 4.weight, 4.bias are not in it"),
    ("steps", "training.source", "set training.steps = 12"),
    ("missing", "training.source", "is not a folder"),
    ("pickled", "training.source", "weights_only=True"),
    ("nobatch", "capture.data", "holds no mini-batch"),
])
@pytest.mark.parametrize("command", ["render", "check"])
def test_a_source_that_does_not_fit_is_refused(what, key, says, command, recorded, tmp_path, monkeypatch, capsys,
                                               isolated_cache):
    path, seen, _ = recorded
    model = {"kind": "mlp", "hidden": [6], "activation": "tanh"}
    training = {"source": str(path), "steps": STEPS}
    capture = {"every": EVERY, "device": "cpu"}
    if what == "wider":
        model["hidden"] = [7]
    elif what == "deeper":
        model["hidden"] = [6, 5]
    elif what == "steps":
        training["steps"] = 40
    elif what == "missing":
        training["source"] = "no/such/run"
    elif what == "pickled":
        (tmp_path / "ck").mkdir()
        torch.save({"w": NotTensors()}, tmp_path / "ck" / "step_0.pt")
        training["source"] = "ck"
        capture["steps"] = [0]
    elif what == "nobatch":
        (tmp_path / "ck").mkdir()
        for s in (0, 4, 8, 12):
            torch.save(seen[s], tmp_path / "ck" / f"step_{s}.pt")
        training["source"] = "ck"
        capture["data"] = "batch"
    monkeypatch.chdir(tmp_path)
    scene = tmp_path / "bad.toml"
    lines = []
    for section, value in tiny_dict(model=model, training=training, capture=capture).items():
        if isinstance(value, dict):
            lines += [f"[{section}]", *(f"{k} = {json.dumps(v)}" for k, v in value.items())]
        else:
            lines.insert(0, f"{section} = {json.dumps(value)}")
    scene.write_text("\n".join(lines) + "\n")
    before = _everything(tmp_path, isolated_cache)
    assert cli.main([command, str(scene), "-q", "l"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{key}: " in err and says in err, err
    assert _everything(tmp_path, isolated_cache) == before


def test_batchnorm_statistics_are_recorded_and_every_capture_mode_uses_them(tmp_path):
    """A conv net with BatchNorm trained in the script's loop: the recorded running statistics are the loop's,
    and eval mode's landscape centre is the loop's network in eval mode; train and recompute_bn capture too."""
    from llstudio.config.scene import ModelSpec
    from llstudio.train.data import load_dataset
    from llstudio.config.scene import DataSpec
    from llstudio.train.models import build_model

    data = load_dataset(DataSpec(eval_size=32, train_size=200), images=True)
    torch.manual_seed(0)
    model = build_model(ModelSpec(kind="cnn", width=2, batch_norm=True, dropout=0.0), data.input_shape, 10)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    x_all, y_all = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    stats = {}
    with llstudio.Recorder(tmp_path / "bn", model, every=2) as rec:
        for step in range(4):
            idx = torch.arange(step * 16, step * 16 + 16)
            loss = nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            rec.step(step, loss=loss)
            stats[step + 1] = copy.deepcopy(model.state_dict())
    for mode in ("eval", "train", "recompute_bn"):
        scene = make_scene(tmp_path / "bn.toml", data={"eval_size": 32, "train_size": 200},
                           model={"kind": "cnn", "width": 2, "batch_norm": True, "dropout": 0.0},
                           training={"source": str(tmp_path / "bn"), "steps": 4},
                           capture={"every": 2, "device": "cpu", "mode": mode},
                           grid={"resolution": 3, "range": [-0.2, 0.2]}, directions={"frame": "follow"})
        cap = capture_scene(scene)
        assert np.isfinite(cap.loss).all()
        if mode == "eval":
            assert all(torch.equal(cap.center_buffers[2][k], stats[4][k]) for k in cap.center_buffers[2])
            net = cap.model(2).eval()
            x, y = (torch.as_tensor(a) for a in cap.eval_data)
            with torch.no_grad():
                want = float(nn.functional.cross_entropy(net(x), y))
            assert cap.loss[2, 1, 1] == pytest.approx(want, rel=1e-5)
