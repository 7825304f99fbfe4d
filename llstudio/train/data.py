"""Datasets and the fixed evaluation subset the landscape is measured on."""

from __future__ import annotations

import gzip
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MissingDependency
from ..config.scene import DataSpec
from ..config.train_specs import OWN_DATASETS
from .own_data import load_own

IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")

# torchvision's layout under its root folder: (class name, sub-folder, files it checks before reading).
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    "cifar10": ("CIFAR10", "cifar-10-batches-py", ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                                   "data_batch_5", "test_batch", "batches.meta")),
}


@dataclass(frozen=True)
class Dataset:
    """Training samples and the fixed evaluation subset, as float32/int64 numpy arrays.

    ``x_train`` (n, *features), ``y_train`` (n,), ``x_eval`` (m, *features), ``y_eval`` (m,).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def _spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = n // 2
    t = np.sqrt(rng.uniform(0, 1, k)) * 3 * np.pi
    arms = []
    for sign in (1, -1):
        x = sign * np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
        arms.append(x + rng.normal(0, noise, x.shape))
    return np.concatenate(arms), np.repeat([0, 1], k)


def data_root(spec: DataSpec) -> Path:
    """Where torchvision datasets are read from: data.root, else $LLSTUDIO_DATA, else ./data."""
    return Path(spec.root or os.environ.get("LLSTUDIO_DATA") or "data").expanduser()


def check_available(spec: DataSpec) -> None:
    """A torchvision dataset's files must be under its root (nothing is downloaded): else MissingDependency
    (exit 3) saying what is expected where and how to get it. Other datasets need no files. Reads no data."""
    if spec.dataset not in _TORCHVISION:
        return
    cls_name, sub, files = _TORCHVISION[spec.dataset]
    root = data_root(spec)
    folder = root / sub
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        # torchvision would say only "Dataset not found"; say what is expected where, and how to get it.
        raise MissingDependency(
            f"data.dataset = '{spec.dataset}': not found under {root.resolve()}: expected {folder}/ with "
            f"{', '.join(files)} (missing: {', '.join(missing)}). llstudio never downloads data; fetch it once "
            f"with: python -c \"import torchvision; torchvision.datasets.{cls_name}('{root}', download=True)\" "
            "or point data.root (or $LLSTUDIO_DATA) at the folder that holds it.")


def _torchvision(spec: DataSpec) -> tuple[np.ndarray, np.ndarray, int]:
    """The training split of a torchvision dataset, (n, C, H, W) float32 in [0, 1], from local files only."""
    check_available(spec)
    cls_name = _TORCHVISION[spec.dataset][0]
    root = data_root(spec)
    import torchvision

    ds = getattr(torchvision.datasets, cls_name)(str(root), train=True, download=False)
    if spec.dataset == "cifar10":
        x = np.asarray(ds.data).transpose(0, 3, 1, 2)  # (n, 32, 32, 3) uint8 → (n, 3, 32, 32)
        y = np.asarray(ds.targets)
    else:
        x = ds.data.numpy()[:, None]  # (n, 1, 28, 28)
        y = ds.targets.numpy()
    return x.astype(np.float32) / 255.0, y.astype(np.int64), 10


def _as_images(x: np.ndarray, spec: DataSpec) -> np.ndarray:
    """(n, C, H, W) images resized to data.image_size and converted to data.channels, each channel centred and
    scaled to unit variance over the dataset (so that plain SGD behaves whatever the source)."""
    import torch

    t = torch.from_numpy(x)
    if spec.image_size is not None and tuple(t.shape[2:]) != (spec.image_size, spec.image_size):
        # antialias for shrinking; plain bilinear for enlarging the 8x8 digits
        t = torch.nn.functional.interpolate(t, size=(spec.image_size, spec.image_size), mode="bilinear",
                                            align_corners=False, antialias=spec.image_size < t.shape[2])
    if spec.channels == 3 and t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    elif spec.channels == 1 and t.shape[1] == 3:
        t = t.mean(dim=1, keepdim=True)
    x = t.contiguous().numpy().astype(np.float32)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    std = x.std(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.maximum(std, 1e-6)


def bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits as its ``load_digits`` gives them: (data (1797, 64) float64, pixel
    values 0 … 16; target (1797,) int). Read from the package's own data file the way ``load_digits`` reads it
    (np.loadtxt of the gzipped CSV, the label in the last column), without importing ``sklearn.datasets``, which
    costs about 1.7 s of every process's start; with ``load_digits`` itself where the file is not where it was."""
    spec = importlib.util.find_spec("sklearn")
    path = (Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
            if spec is not None and spec.submodule_search_locations else None)
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.data, d.target
    with gzip.open(path, "rt", encoding="utf-8") as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1], table[:, -1].astype(int)


def _raw(spec: DataSpec, images: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    if spec.dataset in _TORCHVISION:
        x, y, n = _torchvision(spec)
        return _as_images(x, spec), y, n
    if spec.dataset == "digits":
        data, target = bundled_digits()
        if images or spec.image_size is not None or spec.channels is not None:
            return _as_images(data.reshape(-1, 1, 8, 8).astype(np.float32) / 16.0, spec), target.astype(np.int64), 10
        # Pixel values are 0..16; scale to [0, 1] and centre so plain SGD behaves.
        x = data.astype(np.float32) / 16.0
        x = x - x.mean(axis=0, keepdims=True)
        return x, target.astype(np.int64), 10
    from sklearn import datasets

    if spec.dataset == "moons":
        x, y = datasets.make_moons(spec.samples, noise=spec.noise, random_state=spec.eval_seed)
        return x.astype(np.float32), y.astype(np.int64), 2
    if spec.dataset == "blobs":
        x, y = datasets.make_blobs(spec.samples, centers=3, cluster_std=1.0 + 10 * spec.noise,
                                   random_state=spec.eval_seed)
        x = (x - x.mean(0)) / x.std(0)
        return x.astype(np.float32), y.astype(np.int64), 3
    if spec.dataset == "spirals":
        x, y = _spirals(spec.samples, spec.noise, np.random.default_rng(spec.eval_seed))
        return x.astype(np.float32), y.astype(np.int64), 2
    raise ValueError(spec.dataset)  # unreachable: the scene is validated


def load_dataset(spec: DataSpec, images: bool = False, source: str = "<scene>") -> Dataset:
    """Load the dataset, take the seeded train subset and draw the fixed evaluation subset from it.

    With ``images`` (conv and custom models: see ``models.wants_images``) image datasets come as (n, C, H, W);
    without it every sample is a flat vector (n, features), images flattened (MLPs: their parameter names do not
    depend on the dataset), the bundled digits as the 64-vectors MLPs have always seen. A missing torchvision
    dataset raises :class:`MissingDependency` naming the expected files.

    The evaluation subset is part of the training data on purpose: the landscape shows the training loss, measured
    always on the same samples so that frames are comparable. Own data ('custom', 'files') may bring evaluation
    samples of their own: the subset is then drawn from those, with the same seed. ``source`` is the scene file
    (own data's relative paths are relative to it, and their errors name it).
    """
    if spec.dataset in OWN_DATASETS:
        (x, y), own_eval = load_own(spec, source)
        n_classes = int(max(y.max(), own_eval[1].max() if own_eval is not None else 0)) + 1
    else:
        (x, y, n_classes), own_eval = _raw(spec, images), None
    if not images and x.ndim > 2:
        # MLPs see flat samples, flattened here rather than by a layer in the model, so that their parameter names
        # are the same whatever the dataset (see models.MLP).
        x = x.reshape(len(x), -1)
        own_eval = None if own_eval is None else (own_eval[0].reshape(len(own_eval[0]), -1), own_eval[1])
    rng = np.random.default_rng(spec.eval_seed)
    order = rng.permutation(len(x))
    if spec.train_size is not None:
        order = order[: min(spec.train_size, len(x))]
    x_train, y_train = x[order], y[order]
    x_from, y_from = (x_train, y_train) if own_eval is None else own_eval
    m = min(spec.eval_size, len(x_from))
    pick = np.sort(rng.choice(len(x_from), size=m, replace=False))
    return Dataset(spec.dataset, x_train, y_train, x_from[pick], y_from[pick], n_classes)


def bn_subset(data: Dataset, n: int, seed: int) -> np.ndarray:
    """(min(n, n_train), *features): a fixed, seeded subset of the training inputs, whose statistics become the
    BatchNorm running statistics at every grid point in capture.mode = 'recompute_bn'."""
    rng = np.random.default_rng([seed, 1])  # a stream of its own: not the evaluation subset's draw
    pick = np.sort(rng.choice(len(data.x_train), size=min(n, len(data.x_train)), replace=False))
    return data.x_train[pick]
