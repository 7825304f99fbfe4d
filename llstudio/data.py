"""Datasets and the fixed evaluation subset the landscape is measured on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import DataSpec


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


def _raw(spec: DataSpec) -> tuple[np.ndarray, np.ndarray, int]:
    from sklearn import datasets

    if spec.dataset == "digits":
        d = datasets.load_digits()
        # Pixel values are 0..16; scale to [0, 1] and centre so plain SGD behaves.
        x = d.data.astype(np.float32) / 16.0
        x = x - x.mean(axis=0, keepdims=True)
        return x, d.target.astype(np.int64), 10
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


def load_dataset(spec: DataSpec) -> Dataset:
    """Load the dataset, take the seeded train subset and draw the fixed evaluation subset from it.

    The evaluation subset is part of the training data on purpose: the landscape shows the training loss, measured
    always on the same samples so that frames are comparable.
    """
    x, y, n_classes = _raw(spec)
    rng = np.random.default_rng(spec.eval_seed)
    order = rng.permutation(len(x))
    if spec.train_size is not None:
        order = order[: min(spec.train_size, len(x))]
    x_train, y_train = x[order], y[order]
    m = min(spec.eval_size, len(x_train))
    pick = np.sort(rng.choice(len(x_train), size=m, replace=False))
    return Dataset(spec.dataset, x_train, y_train, x_train[pick], y_train[pick], n_classes)
