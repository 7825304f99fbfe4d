"""Datasets, the model zoo and the training run (real, tiny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_scene
from llstudio.train.data import load_dataset
from llstudio.train.models import build_model, count_parameters, loss_fn
from llstudio.config.scene import DataSpec, ModelSpec
from llstudio.train.training import batch_order, initial_model, train

CPU = torch.device("cpu")


def test_digits_dataset_and_fixed_eval_subset():
    d = load_dataset(DataSpec(dataset="digits", eval_size=64))
    assert d.x_train.shape == (1797, 64) and d.x_train.dtype == np.float32
    assert d.y_train.dtype == np.int64 and d.n_classes == 10
    assert d.x_eval.shape == (64, 64) and d.input_shape == (64,)
    # the evaluation subset is drawn from the training samples, and is the same every time
    rows = {r.tobytes() for r in d.x_train}
    assert all(r.tobytes() in rows for r in d.x_eval)
    again = load_dataset(DataSpec(dataset="digits", eval_size=64))
    np.testing.assert_array_equal(again.x_eval, d.x_eval)
    np.testing.assert_array_equal(again.y_eval, d.y_eval)


def test_train_size_and_eval_size_are_capped():
    d = load_dataset(DataSpec(dataset="digits", train_size=100, eval_size=500))
    assert len(d.x_train) == 100 and len(d.x_eval) == 100


@pytest.mark.parametrize("name,classes", [("moons", 2), ("blobs", 3), ("spirals", 2)])
def test_synthetic_datasets(name, classes):
    d = load_dataset(DataSpec(dataset=name, samples=200, eval_size=50))
    assert d.x_train.shape == (200, 2) and d.n_classes == classes
    assert set(np.unique(d.y_train)) == set(range(classes))
    assert np.all(np.isfinite(d.x_train))


def test_build_model():
    mlp = build_model(ModelSpec(kind="mlp", hidden=[8, 4], activation="gelu"), (64,), 10)
    assert [type(m) for m in mlp] == [nn.Linear, nn.GELU, nn.Linear, nn.GELU, nn.Linear]
    assert count_parameters(mlp) == 64 * 8 + 8 + 8 * 4 + 4 + 4 * 10 + 10
    flat = build_model(ModelSpec(kind="logistic", bias=False), (2, 3), 4)
    # Image-shaped samples are flattened in forward, not by a layer: the names stay those of flat samples.
    assert [k for k, _ in flat.named_parameters()] == ["0.weight"] and flat[0].bias is None
    assert flat(torch.zeros(5, 2, 3)).shape == (5, 4)
    assert torch.equal(flat(torch.ones(5, 2, 3)), flat(torch.ones(5, 6)))


def test_loss_fn():
    out = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 2])
    assert float(loss_fn("cross_entropy", 3)(out, y)) == pytest.approx(float(nn.functional.cross_entropy(out, y)))
    # mse against one-hot: ((2-1)^2 + 0 + 0 + 0 + 1 + 1) / 6
    assert float(loss_fn("mse", 3)(out, y)) == pytest.approx(3 / 6)
    with pytest.raises(ValueError):
        loss_fn("hinge", 3)


def test_batch_order():
    b = batch_order(10, 4, 7, seed=0)
    assert b.shape == (7, 4)
    # two full batches per epoch (the last partial batch is dropped), no repeats within an epoch
    for e in range(3):
        epoch = b[2 * e: 2 * e + 2].ravel()
        assert len(set(epoch)) == 8
    np.testing.assert_array_equal(batch_order(10, 4, 7, seed=0), b)
    assert not np.array_equal(batch_order(10, 4, 7, seed=1), b)
    assert batch_order(3, 8, 2, seed=0).shape == (2, 3)  # batch larger than the data


def test_train_snapshots_the_captured_steps_and_is_deterministic(tmp_path):
    scene = make_scene(tmp_path / "t.toml", training={"steps": 10}, capture={"every": 4})
    data = load_dataset(scene.data)
    traj = train(scene, data, CPU, torch.float32)
    assert list(traj.steps) == [0, 4, 8, 10]
    assert len(traj.weights) == 4
    assert traj.train_loss.shape == (10,) and traj.batches.shape == (10, 16)
    init = initial_model(scene, data, torch.float32)
    for n, p in init.named_parameters():
        assert torch.equal(traj.weights[0][n], p.detach())
    assert not torch.equal(traj.weights[0]["0.weight"], traj.weights[-1]["0.weight"])
    again = train(scene, data, CPU, torch.float32)
    np.testing.assert_array_equal(again.train_loss, traj.train_loss)
    for a, b in zip(traj.weights, again.weights):
        assert all(torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw", "rmsprop"])
def test_every_optimizer_learns(tmp_path, optimizer):
    lr = 0.01 if optimizer in ("adam", "adamw", "rmsprop") else 0.1
    scene = make_scene(tmp_path / "t.toml", training={"steps": 30, "optimizer": optimizer, "lr": lr,
                                                       "lr_schedule": "cosine"})
    data = load_dataset(scene.data)
    traj = train(scene, data, CPU, torch.float32)
    assert np.all(np.isfinite(traj.train_loss))
    assert traj.train_loss[-10:].mean() < traj.train_loss[:5].mean()


def test_training_steps_are_reported(tmp_path):
    scene = make_scene(tmp_path / "t.toml")
    seen = []
    train(scene, load_dataset(scene.data), CPU, torch.float32, on_step=seen.append)
    assert seen == list(range(1, 13))
