"""An MLP's parameter names do not depend on the shape of its samples: every gallery scene stays valid, with the
same parameter names, when its dataset changes from the bundled digits to MNIST (a miniature MNIST in
torchvision's own file format, written by the test)."""

from __future__ import annotations

import pytest
import torch

from llstudio import load_scene
from llstudio.config.scene import scene_from_dict
from llstudio.pipeline.context import check_with_data
from llstudio.train.data import load_dataset
from llstudio.train.models import build_model, wants_images

from conftest import SCENES_DIR, write_mnist


def _names(scene) -> list[str]:
    data = load_dataset(scene.data, images=wants_images(scene.model))
    with torch.random.fork_rng(devices=[]):
        model = build_model(scene.model, data.input_shape, data.n_classes, scene.source)
    return [k for k, _ in model.named_parameters()]


def _as_mnist(scene, root) -> object:
    """The scene with data.dataset = 'mnist' read from ``root`` (and small sizes, to fit the miniature set)."""
    dump = scene.model_dump(mode="json", exclude={"source", "panel"})
    dump["data"].update(dataset="mnist", root=str(root), eval_size=min(dump["data"]["eval_size"], 20),
                        train_size=None)
    for panel in dump.get("panels") or []:
        if panel.get("data"):
            panel["data"].pop("dataset", None)
            panel["data"]["eval_size"] = min(panel["data"].get("eval_size", 20), 20)
    return scene_from_dict(dump, scene.source)


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    write_mnist(root, n=40)
    return root


@pytest.mark.parametrize("path", sorted(SCENES_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_scene_keeps_its_names_on_mnist(path, mnist_root):
    scene = load_scene(path)
    mnist = _as_mnist(scene, mnist_root)  # valid as a scene file
    views = list(zip(scene.panel_scenes(), mnist.panel_scenes())) if scene.panels else [(scene, mnist)]
    for digits_view, mnist_view in views:
        names = _names(mnist_view)
        assert names == _names(digits_view)
        # The named weights (directions.weights, training.init, train_only) exist in the MNIST model too.
        check_with_data(mnist_view)


def test_mlp_on_mnist_takes_flat_samples(mnist_root):
    """The MLP sees MNIST as flat 784-vectors; its first layer is '0', as on the digits."""
    scene = scene_from_dict({"data": {"dataset": "mnist", "root": str(mnist_root), "eval_size": 10},
                             "model": {"kind": "mlp", "hidden": [5]}})
    data = load_dataset(scene.data, images=wants_images(scene.model))
    assert data.x_train.shape == (40, 784) and data.x_eval.shape == (10, 784)
    model = build_model(scene.model, data.input_shape, data.n_classes)
    assert dict(model.named_parameters())["0.weight"].shape == (5, 784)
    images = torch.as_tensor(data.x_eval).reshape(10, 1, 28, 28)
    assert torch.equal(model(images), model(torch.as_tensor(data.x_eval)))
