"""A custom dataset and model for the "Film your own run" example: small RGB images of three shapes (a disc, a
square, a cross) at random places, sizes and colours on a noisy background, and torchvision's MobileNetV3-Small
at a quarter of its width (118,000 weights, BatchNorm after every convolution).

llstudio imports this module for two things the scene names:

- ``data.factory = "shapes:load"``: the training and evaluation sets (``torch.utils.data.Dataset``s), so that the
  landscape is measured on the same images the script trains on;
- ``model.factory = "shapes:make_model"``: the network, built exactly as train.py builds it, so that the
  recorded weights fit it (same parameter names and shapes).
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision

CLASSES = ("disc", "square", "cross")
SIZE = 16  # pixels: small enough for a CPU (MobileNetV3 halves it 4 times, to 1x1)


def draw(n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3, size, size) float32 images in about [-1, 1] and (n,) int64 labels, the same for the same seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    x = rng.normal(0.0, 0.15, (n, 3, size, size)).astype(np.float32)
    y = rng.integers(0, len(CLASSES), n)
    for i in range(n):
        r = rng.uniform(size / 8, size / 4)
        cx, cy = rng.uniform(r, size - r, 2)
        dx, dy = xx - cx, yy - cy
        if y[i] == 0:
            mask = dx ** 2 + dy ** 2 <= r ** 2
        elif y[i] == 1:
            mask = (abs(dx) <= r * 0.8) & (abs(dy) <= r * 0.8)
        else:
            mask = ((abs(dx) <= r / 4) | (abs(dy) <= r / 4)) & (abs(dx) <= r) & (abs(dy) <= r)
        x[i][:, mask] += rng.uniform(0.4, 1.0, (3, 1)).astype(np.float32)
    return x, y.astype(np.int64)


class Shapes(torch.utils.data.Dataset):
    """``n`` shape images drawn from ``seed``: (image (3, SIZE, SIZE), label) samples."""

    def __init__(self, n: int, seed: int):
        x, y = draw(n, seed)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def load(n_train: int = 512, n_eval: int = 128):
    """llstudio's data factory: (training set, evaluation set). The scene's data.eval_size images of the
    evaluation set, drawn once with data.eval_seed, are what every landscape value is measured on."""
    return Shapes(n_train, seed=0), Shapes(n_eval, seed=1)


def make_model(input_shape=(3, SIZE, SIZE), n_classes: int = len(CLASSES)) -> torch.nn.Module:
    """torchvision's MobileNetV3-Small at a quarter width for ``n_classes`` (llstudio calls it with the data's
    sample shape and number of classes; train.py calls it with the defaults)."""
    return torchvision.models.mobilenet_v3_small(num_classes=n_classes, width_mult=0.25)
