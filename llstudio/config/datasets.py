"""What the built-in datasets hold, known without loading them: each training split's size, one sample's shape and
the number of classes. The scene checks data.train_size and data.eval_size against these (``size_problems``);
``llstudio check`` builds the model from them without reading any data. tests/config/test_datasets.py compares the
table with the real loaders."""

from __future__ import annotations

from typing import Iterator, Optional

from .problems import Problem
from .train_specs import OWN_DATASETS, DataSpec

# Training split sizes of the fixed datasets (scikit-learn's digits, torchvision's training splits).
TRAINING_SIZES = {"digits": 1797, "mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
# One sample as (C, H, W), and classes.
NATIVE_IMAGES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10, "moons": 2, "blobs": 3, "spirals": 2}


def training_size(spec: DataSpec) -> Optional[int]:
    """Samples in the dataset's training split (before data.train_size): the table's, or for the synthetic sets
    the generated count (spirals: two arms of samples // 2); None for 'custom' and 'files' (known once loaded)."""
    if spec.dataset in OWN_DATASETS:
        return None
    if spec.dataset in TRAINING_SIZES:
        return TRAINING_SIZES[spec.dataset]
    if spec.dataset == "spirals":
        return 2 * (spec.samples // 2)
    return spec.samples


def input_signature(spec: DataSpec, images: bool) -> tuple[tuple[int, ...], int]:
    """``(input_shape, n_classes)`` of one sample as ``train.data.load_dataset(spec, images)`` gives it (not for
    'custom' and 'files', whose shapes are known once they are loaded)."""
    name = spec.dataset
    if name in OWN_DATASETS:
        raise ValueError(f"the shape of '{name}' data is known once they are loaded")
    if name not in NATIVE_IMAGES:
        return (2,), CLASSES[name]
    if name == "digits" and not (images or spec.image_size is not None or spec.channels is not None):
        return (64,), CLASSES[name]
    c, h, w = NATIVE_IMAGES[name]
    if spec.image_size is not None:
        h = w = spec.image_size
    shape = (spec.channels or c, h, w)
    # Models that take flat samples get them flattened by the data path.
    return (shape if images else (shape[0] * h * w,)), CLASSES[name]


def _what(spec: DataSpec, n: int) -> str:
    if spec.dataset in TRAINING_SIZES:
        return f"'{spec.dataset}' has {n:,} training samples"
    return f"'{spec.dataset}' generates data.samples = {n:,} samples"


def size_problems(spec: DataSpec) -> Iterator[Problem]:
    """data.train_size and data.eval_size larger than the dataset: refused rather than silently capped. (A
    train_size smaller than eval_size still caps the evaluation subset, as documented.)"""
    n = training_size(spec)
    if n is None:  # checked against the loaded data (pipeline.checks.check_data)
        return
    more = " (or raise data.samples)" if spec.dataset not in TRAINING_SIZES else ""
    if spec.train_size is not None and spec.train_size > n:
        yield "data.train_size", (f"{spec.train_size:,} samples asked for, but {_what(spec, n)}: use at most {n:,}"
                                  f"{more}, or leave train_size out to train on all of them")
    if spec.eval_size > n:
        yield "data.eval_size", (f"{spec.eval_size:,} samples asked for, but {_what(spec, n)}: the evaluation "
                                 f"subset is drawn from them, so use at most {n:,}{more}")
