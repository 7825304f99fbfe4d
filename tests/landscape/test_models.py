"""Conv models (small CNN, reduced torchvision ResNet and VGG, user factories), image data, and BatchNorm-aware
capture checked against a float64 brute-force forward pass of the unmodified torch modules."""

from __future__ import annotations

import copy
import struct

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_scene, perturbed_stats
from test_landscape import center_and_directions
from llstudio.train.data import bn_subset, load_dataset
from llstudio.errors import MissingDependency, SceneError
from llstudio.landscape.evaluator import LandscapeEvaluator
from llstudio.train.models import build_model, loss_fn
from llstudio.config.scene import DataSpec, ModelSpec

CPU = torch.device("cpu")
F64 = torch.float64
ALPHAS = np.array([-0.6, 0.1, 0.5])
BETAS = np.array([-0.4, 0.3])


def _data(shape, n, seed=0, classes=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g, dtype=F64), torch.randint(0, classes, (n,), generator=g)


def _center_dirs(model, seed=0, scale=0.3):
    return center_and_directions(model, seed, scale, spread=0.1)


def brute_force(model, center, d1, d2, buffers, mode, x, y, bn_x=None):
    """Per point: a fresh copy of the unmodified model, weights (and running statistics) set by hand, and the
    torch modules' own train/eval behaviour; dropout off."""
    out = np.empty((len(ALPHAS), len(BETAS)))
    for i, a in enumerate(ALPHAS):
        for j, b in enumerate(BETAS):
            m = copy.deepcopy(model)
            with torch.no_grad():
                for name, p in m.named_parameters():
                    p.copy_(center[name] + float(a) * d1[name] + float(b) * d2[name])
                for name, t in m.named_buffers():
                    if name in buffers:
                        t.copy_(buffers[name])
                bns = [mod for mod in m.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
                drops = [mod for mod in m.modules() if isinstance(mod, nn.modules.dropout._DropoutNd)]
                if mode == "recompute_bn":
                    for bn in bns:
                        bn.reset_running_stats()
                        bn.momentum = None  # cumulative average: after one batch, exactly its statistics
                    m.train()
                    for d in drops:
                        d.eval()
                    m(bn_x)
                    m.eval()
                elif mode == "train":
                    m.train()
                    for d in drops:
                        d.eval()
                else:
                    m.eval()
                out[i, j] = float(nn.functional.cross_entropy(m(x), y))
    return out


def _check(model, shape, mode, n=6, bn_n=9, seed=0):
    model = model.to(F64)
    x, y = _data(shape, n, seed)
    bn_x = _data(shape, bn_n, seed + 1)[0] if mode == "recompute_bn" else None
    center, d1, d2 = _center_dirs(model, seed)
    bufs = perturbed_stats(model, seed)
    ev = LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn("cross_entropy", 10), d1, d2, CPU, F64,
                            mode=mode, bn_x=bn_x, memory_mb=1)  # a tiny budget: several chunks
    got = ev.grid(center, ALPHAS, BETAS, buffers=bufs)
    want = brute_force(model, center, d1, d2, bufs, mode, x, y, bn_x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)
    return got


@pytest.mark.parametrize("mode", ["eval", "train", "recompute_bn"])
def test_cnn_with_batch_norm_equals_brute_force_in_every_mode(mode):
    torch.manual_seed(0)
    model = build_model(ModelSpec(kind="cnn", width=2, batch_norm=True), (1, 8, 8), 10)
    got = _check(model, (1, 8, 8), mode)
    assert np.all(np.isfinite(got))


def test_capture_modes_differ_on_a_batch_norm_model():
    torch.manual_seed(0)
    model = build_model(ModelSpec(kind="cnn", width=2, batch_norm=True), (1, 8, 8), 10)
    grids = [_check(model, (1, 8, 8), mode) for mode in ("eval", "train", "recompute_bn")]
    assert not np.allclose(grids[0], grids[1]) and not np.allclose(grids[0], grids[2])


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_cnn_without_batch_norm_modes_are_harmless(mode):
    torch.manual_seed(1)
    model = build_model(ModelSpec(kind="cnn", width=2), (1, 8, 8), 10)
    _check(model, (1, 8, 8), mode)


@pytest.mark.parametrize("mode", ["eval", "recompute_bn"])
def test_tiny_resnet_equals_brute_force(mode):
    torch.manual_seed(2)
    model = build_model(ModelSpec(kind="resnet", width=2, depth=1), (3, 8, 8), 10)
    assert "layer4.0.downsample.1.running_mean" in dict(model.named_buffers())
    _check(model, (3, 8, 8), mode, n=4, bn_n=5)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_tiny_vgg_equals_brute_force(batch_norm):
    torch.manual_seed(3)
    model = build_model(ModelSpec(kind="vgg", width=2, batch_norm=batch_norm), (1, 8, 8), 10)
    _check(model, (1, 8, 8), "train" if batch_norm else "eval", n=5)


def test_model_shapes_names_and_sizes():
    torch.manual_seed(0)
    cnn = build_model(ModelSpec(kind="cnn"), (1, 28, 28), 10)
    # the write-up's network: "1,199,882 dimensions"
    assert sum(p.numel() for p in cnn.parameters()) == 1_199_882
    assert dict(cnn.named_parameters())["features.0.weight"].shape == (32, 1, 3, 3)
    resnet = build_model(ModelSpec(kind="resnet", width=4, depth=2), (3, 32, 32), 10)
    names = dict(resnet.named_parameters())
    assert names["conv1.weight"].shape == (4, 3, 3, 3) and names["fc.weight"].shape == (10, 32)
    assert "layer1.1.conv2.weight" in names and not any(p.is_meta for p in resnet.parameters())
    vgg = build_model(ModelSpec(kind="vgg", width=4), (3, 32, 32), 10)
    convs = [m for m in vgg.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 16, 32, 32, 32, 32]  # VGG-11's plan, width 4
    for m, shape in ((cnn, (1, 28, 28)), (resnet, (3, 32, 32)), (vgg, (3, 32, 32))):
        assert m(torch.randn(2, *shape)).shape == (2, 10)
    with pytest.raises(ValueError, match="at most 3 fit"):
        build_model(ModelSpec(kind="vgg", depth=4), (1, 8, 8), 10)


def test_named_conv_weights_move_only_those_entries(tmp_path):
    from llstudio.pipeline import capture_scene

    scene = make_scene(tmp_path / "s.toml", model={"kind": "cnn", "width": 2},
                       data={"eval_size": 40, "train_size": 200},
                       directions={"kind": "weights", "weights": ["features.0.weight[1,0,2,2]",
                                                                  "classifier.3.weight[3,5]"]},
                       grid={"resolution": 3}, training={"steps": 4}, capture={"every": 2, "device": "cpu"})
    cap = capture_scene(scene)
    d1, d2 = cap.directions
    for d, (name, idx) in ((d1, ("features.0.weight", (1, 0, 2, 2))), (d2, ("classifier.3.weight", (3, 5)))):
        nonzero = {k: int((v != 0).sum()) for k, v in d.items() if (v != 0).any()}
        assert nonzero == {name: 1} and float(d[name][idx]) == 1.0
    assert np.all(np.isfinite(cap.loss))


def test_model_keys_are_cross_checked():
    with pytest.raises(SceneError, match="capture.mode.*no BatchNorm"):
        make_scene(model={"kind": "cnn"}, capture={"mode": "recompute_bn"})
    with pytest.raises(SceneError, match="model.factory"):
        make_scene(model={"kind": "custom"})
    with pytest.raises(SceneError, match="model.width"):
        make_scene(model={"kind": "mlp", "width": 4})
    with pytest.raises(SceneError, match="model.kind.*image dataset"):
        make_scene(model={"kind": "resnet"}, data={"dataset": "moons"})
    with pytest.raises(SceneError, match="model.factory"):
        make_scene(model={"kind": "custom", "factory": "not a factory"})
    # harmless: train mode on a model without BatchNorm, recompute_bn on resnet (BatchNorm by default)
    make_scene(model={"kind": "cnn"}, capture={"mode": "train"})
    make_scene(model={"kind": "resnet"}, capture={"mode": "recompute_bn"})


@pytest.mark.parametrize("kind,mode", [("cnn", "train"), ("resnet", "recompute_bn"), ("vgg", "eval")])
def test_training_and_capture_on_digits(tmp_path, kind, mode):
    """A few real training steps of each conv model on the bundled digits (RGB for the ResNet), then a
    capture whose centre values equal a plain forward pass of the trained model with its own running stats."""
    from llstudio.pipeline import capture_scene

    data = {"eval_size": 32, "train_size": 128}
    if kind == "resnet":
        data.update(channels=3)
    scene = make_scene(tmp_path / f"{kind}.toml", model={"kind": kind, "width": 2, "batch_norm": True},
                       data=data, training={"steps": 4, "batch_size": 16, "lr": 0.05},
                       grid={"resolution": 3}, capture={"every": 2, "device": "cpu", "mode": mode,
                                                        "bn_samples": 40})
    cap = capture_scene(scene)
    assert cap.loss.shape == (3, 3, 3) and np.all(np.isfinite(cap.loss))
    manifest = __import__("json").loads((cap.path / "manifest.json").read_text())
    assert manifest["capture_mode"] == mode
    # the running statistics moved in training and were kept with the weights
    assert cap.center_buffers and any(not torch.equal(a, b) for a, b in
                                      zip(cap.center_buffers[0].values(), cap.center_buffers[-1].values()))
    if mode == "eval":  # the centre of the last step is the trained model in eval mode, running stats as trained
        m = cap.model(-1)
        x, y = cap.eval_data
        with torch.no_grad():
            want = float(nn.functional.cross_entropy(m(torch.as_tensor(x)), torch.as_tensor(y)))
        assert cap.center_loss[-1] == pytest.approx(want, rel=1e-5)


def test_capture_key_includes_the_mode():
    from llstudio.pipeline import capture_key

    keys = {capture_key(make_scene(model={"kind": "cnn", "batch_norm": True}, capture={"mode": m}), "cpu")
            for m in ("eval", "train", "recompute_bn")}
    assert len(keys) == 3


def test_digits_as_images():
    d = load_dataset(DataSpec(eval_size=10), images=True)
    assert d.input_shape == (1, 8, 8)
    d = load_dataset(DataSpec(eval_size=10, image_size=16, channels=3), images=True)
    assert d.input_shape == (3, 16, 16) and d.x_eval.shape == (10, 3, 16, 16)
    flat = load_dataset(DataSpec(eval_size=10, image_size=16, channels=3))  # an MLP's: flattened by the data path
    np.testing.assert_array_equal(flat.x_train, d.x_train.reshape(len(d.x_train), -1))
    np.testing.assert_array_equal(d.x_train[:, 0], d.x_train[:, 2])  # grey replicated
    assert load_dataset(DataSpec(eval_size=10)).input_shape == (64,)  # MLPs keep the flat digits
    sub = bn_subset(d, 20, 0)
    assert sub.shape == (20, 3, 16, 16)
    np.testing.assert_array_equal(sub, bn_subset(d, 20, 0))


def test_missing_dataset_names_the_files_and_how_to_get_them(tmp_path):
    with pytest.raises(MissingDependency) as e:
        load_dataset(DataSpec(dataset="cifar10", root=str(tmp_path)))
    msg = str(e.value)
    assert "cifar-10-batches-py" in msg and "data_batch_1" in msg and "download=True" in msg
    assert not (tmp_path / "cifar-10-batches-py").exists()  # nothing downloaded


def _write_idx(path, arr: np.ndarray, code: int):
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, code, arr.ndim))
        f.write(struct.pack(">" + "I" * arr.ndim, *arr.shape))
        f.write(arr.astype(">u1").tobytes())


def test_mnist_is_read_from_a_local_torchvision_root(tmp_path):
    """A miniature MNIST in torchvision's own file format: read through torchvision, never downloaded."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 5)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 0x08)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n), 0x08)
    d = load_dataset(DataSpec(dataset="mnist", root=str(tmp_path), eval_size=8), images=True)
    assert d.x_train.shape == (30, 1, 28, 28) and d.x_eval.shape == (8, 1, 28, 28) and d.n_classes == 10
    assert load_dataset(DataSpec(dataset="mnist", root=str(tmp_path), eval_size=8)).input_shape == (784,)
    small = load_dataset(DataSpec(dataset="mnist", root=str(tmp_path), eval_size=8, image_size=14, channels=3),
                         images=True)
    assert small.input_shape == (3, 14, 14)


FACTORY = """
import torch
from torch import nn

def make(input_shape, n_classes):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(input_shape[0], 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * (input_shape[1] - 2) ** 2, n_classes))

def not_a_model(input_shape, n_classes):
    return 42
"""


@pytest.fixture
def factory_module(user_module):
    return user_module("llstudio_test_factory", FACTORY)


def test_custom_factory(factory_module):
    model = build_model(ModelSpec(kind="custom", factory=f"{factory_module}:make"), (1, 8, 8), 10)
    assert isinstance(model, nn.Sequential)
    # a Sequential starting with a conv and holding BatchNorm: the linear_first strategy with running stats
    _check(model, (1, 8, 8), "eval")
    _check(model, (1, 8, 8), "recompute_bn")
    with pytest.raises(SceneError, match="model.factory.*returned int"):
        build_model(ModelSpec(kind="custom", factory=f"{factory_module}:not_a_model"), (1, 8, 8), 10)
    with pytest.raises(SceneError, match="model.factory.*has no attribute 'nope'"):
        build_model(ModelSpec(kind="custom", factory=f"{factory_module}:nope"), (1, 8, 8), 10)
    with pytest.raises(SceneError, match="model.factory.*cannot import module 'no_such_pkg_xyz.nets'"):
        build_model(ModelSpec(kind="custom", factory="no_such_pkg_xyz.nets:make"), (1, 8, 8), 10)


def test_fixed_plane_uses_the_running_statistics_of_its_centre(tmp_path):
    """Fixed frame, eval mode: the grid point at the plane's centre is the final model with its final running
    statistics (not the initial ones a fresh model carries)."""
    from llstudio.pipeline import capture_scene

    scene = make_scene(tmp_path / "fixed.toml", model={"kind": "cnn", "width": 2, "batch_norm": True},
                       data={"eval_size": 24, "train_size": 96}, training={"steps": 4, "batch_size": 16},
                       directions={"kind": "pca", "frame": "fixed", "center": "final"},
                       grid={"resolution": 3, "range": [-1.0, 1.0]}, capture={"every": 2, "device": "cpu"})
    cap = capture_scene(scene)
    m = cap.model(-1)
    x, y = cap.eval_data
    with torch.no_grad():
        want = float(nn.functional.cross_entropy(m(torch.as_tensor(x)), torch.as_tensor(y)))
    assert cap.loss[0, 1, 1] == pytest.approx(want, rel=1e-5)
    m.load_state_dict({**m.state_dict(), **{k: torch.zeros_like(v) if "mean" in k else torch.ones_like(v)
                                             for k, v in cap.center_buffers[0].items()}})
    with torch.no_grad():
        stale = float(nn.functional.cross_entropy(m(torch.as_tensor(x)), torch.as_tensor(y)))
    assert stale != pytest.approx(want, rel=1e-5)


def test_capture_key_ignores_where_the_dataset_lives():
    from llstudio.pipeline import capture_key

    a = make_scene(data={"dataset": "mnist", "root": "/data/a"}, model={"kind": "cnn"})
    b = make_scene(data={"dataset": "mnist", "root": "/mnt/b"}, model={"kind": "cnn"})
    assert capture_key(a, "cpu") == capture_key(b, "cpu")
