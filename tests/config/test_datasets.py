"""The built-in datasets' table (training sizes, sample shapes, classes) against the real loaders, and the scene's
refusal of data.train_size and data.eval_size larger than the dataset (defect 9: they were silently capped)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import make_scene, write_mnist
from llstudio.config.datasets import TRAINING_SIZES, input_signature, training_size
from llstudio.config.scene import DataSpec
from llstudio.errors import SceneError
from llstudio.train.data import load_dataset


@pytest.mark.parametrize("spec, images", [
    (DataSpec(dataset="digits", eval_size=8), False),
    (DataSpec(dataset="digits", eval_size=8), True),
    (DataSpec(dataset="digits", eval_size=8, image_size=16, channels=3), False),
    (DataSpec(dataset="moons", samples=101, eval_size=8), False),
    (DataSpec(dataset="blobs", samples=99, eval_size=8), False),
    (DataSpec(dataset="spirals", samples=201, eval_size=8), False),
])
def test_the_table_matches_the_loaders(spec, images):
    d = load_dataset(spec, images=images)
    assert len(d.x_train) == training_size(spec)
    assert input_signature(spec, images) == (d.input_shape, d.n_classes)


@pytest.mark.parametrize("extra", [{}, {"image_size": 14, "channels": 3}])
def test_torchvision_shapes_match_a_local_mnist(tmp_path, extra):
    write_mnist(tmp_path)
    spec = DataSpec(dataset="mnist", root=str(tmp_path), eval_size=8, **extra)
    d = load_dataset(spec, images=True)
    assert input_signature(spec, True) == (d.input_shape, d.n_classes)
    flat = load_dataset(spec, images=False)  # an MLP's samples: flattened by the data path
    assert input_signature(spec, False) == (flat.input_shape, flat.n_classes) == ((math.prod(d.input_shape),), 10)


def test_torchvision_sizes_are_the_training_splits():
    assert TRAINING_SIZES == {"digits": 1797, "mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
    assert input_signature(DataSpec(dataset="cifar10"), True) == ((3, 32, 32), 10)
    assert input_signature(DataSpec(dataset="mnist", image_size=14, channels=3), True) == ((3, 14, 14), 10)


def test_eval_size_larger_than_digits_is_refused(tmp_path):
    with pytest.raises(SceneError) as e:
        make_scene(tmp_path / "s.toml", data={"eval_size": 1_000_000})
    msg = str(e.value)
    assert "data.eval_size: 1,000,000 samples asked for, but 'digits' has 1,797 training samples" in msg
    assert "at most 1,797" in msg and e.value.exit_code == 2


def test_train_size_larger_than_the_dataset_is_refused(tmp_path):
    with pytest.raises(SceneError, match=r"data.train_size: 5,000 samples asked for, but 'digits' has 1,797"):
        make_scene(tmp_path / "s.toml", data={"train_size": 5000})


def test_eval_size_larger_than_a_synthetic_set_names_data_samples(tmp_path):
    with pytest.raises(SceneError, match=r"'moons' generates data.samples = 100 samples.*raise data.samples"):
        make_scene(tmp_path / "s.toml", data={"dataset": "moons", "samples": 100, "eval_size": 200})


def test_a_small_train_size_still_caps_the_evaluation_subset(tmp_path):
    scene = make_scene(tmp_path / "s.toml", data={"train_size": 20, "eval_size": 64})
    assert scene.data.eval_size == 64


def test_bundled_digits_are_sklearns_load_digits(monkeypatch):
    """Read from scikit-learn's data file without importing sklearn.datasets (1.7 s of every process's start), the
    digits are exactly load_digits'; where the file cannot be found, load_digits itself gives them."""
    from sklearn.datasets import load_digits

    from llstudio.train import data

    ref = load_digits()
    x, y = data.bundled_digits()
    np.testing.assert_array_equal(x, ref.data)
    np.testing.assert_array_equal(y, ref.target)
    assert x.dtype == ref.data.dtype and y.dtype == ref.target.dtype
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    x2, y2 = data.bundled_digits()
    np.testing.assert_array_equal(x2, ref.data)
    np.testing.assert_array_equal(y2, ref.target)
