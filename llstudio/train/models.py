"""The model zoo: MLPs and logistic regression (``nn.Sequential``, so that capture can peel off the first linear
layer), the small MNIST CNN, reduced torchvision ResNet and VGG, and a user factory named in the scene."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config.scene import ModelSpec
from .factories import fail, import_callable

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


CONV_KINDS = ("cnn", "resnet", "vgg")


def wants_images(spec: ModelSpec) -> bool:
    """Whether the model takes (N, C, H, W) images rather than flat feature vectors (custom factories get images
    too, when the data are images)."""
    return spec.kind in CONV_KINDS or spec.kind == "custom"


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], n_classes: int, source: str = "<scene>") -> nn.Module:
    """A fresh, randomly initialised model (seed the global torch RNG before calling for reproducibility).

    ``input_shape`` is one sample's shape: (C, H, W) for conv models, (features,) for MLPs (an image shape is
    taken as its flattened size: parameter names never depend on it, see :class:`MLP`).
    """
    if spec.kind == "cnn":
        return SmallCNN(input_shape, n_classes, spec.width or 32, bool(spec.batch_norm),
                        (0.25, 0.5) if spec.dropout is None else (spec.dropout, spec.dropout))
    if spec.kind == "resnet":
        return small_resnet(input_shape, n_classes, spec.width or 16, spec.depth or 1, spec.batch_norm is not False)
    if spec.kind == "vgg":
        return small_vgg(input_shape, n_classes, spec.width or 16, spec.depth, bool(spec.batch_norm),
                         0.5 if spec.dropout is None else spec.dropout)
    if spec.kind == "custom":
        return custom_model(spec.factory, input_shape, n_classes, source)
    n_in = math.prod(input_shape)
    if spec.kind == "logistic":
        return MLP(nn.Linear(n_in, n_classes, bias=spec.bias))
    layers: list[nn.Module] = []
    width = n_in
    for h in spec.hidden:
        layers += [nn.Linear(width, h, bias=spec.bias), _ACTIVATIONS[spec.activation]()]
        width = h
    layers.append(nn.Linear(width, n_classes, bias=spec.bias))
    return MLP(*layers)


class MLP(nn.Sequential):
    """``Sequential(Linear, act, ..., Linear)`` that flattens each sample itself.

    The flattening is in ``forward`` and not a ``Flatten`` layer in front: a layer would shift every index, so that
    a scene's named weights (``"2.weight[5,250]"``, ``training.init``, ``train_only``) would change when its dataset
    changes from flat features to images. Parameter names are ``<position>.weight`` and ``<position>.bias`` of the
    linear layers, counting activations: ``0`` is the first linear layer, ``2`` the second, and so on. The data
    path already gives MLPs flat samples (``load_dataset(images=False)``), which is what capture evaluates.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1) if x.dim() > 2 else x)


class Loss:
    """The scene's loss: ``loss(logits (..., n, C), targets (n,))`` → the mean over samples (batched over leading
    dims via vmap), plus :meth:`feature_major`, the same value for many grid points at once without vmap."""

    KINDS = ("cross_entropy", "mse")

    def __init__(self, kind: str, n_classes: int):
        if kind not in self.KINDS:
            raise ValueError(kind)
        self.kind, self.n_classes = kind, n_classes
        self._target: tuple = (None, None, None)  # (targets, (dtype, device, layout), one-hot)

    def _one_hot(self, y: torch.Tensor, like: torch.Tensor, feature_major: bool = False) -> torch.Tensor:
        """One-hot targets, (n, C), or (C, n) contiguous for feature-major outputs. The evaluation targets are the
        same tensor for every grid point: built once."""
        key = (like.dtype, like.device, feature_major)
        y0, k0, target = self._target
        if y0 is not y or k0 != key:
            target = nn.functional.one_hot(y, self.n_classes).to(like.dtype)
            if feature_major:
                target = target.T.contiguous()
            self._target = (y, key, target)
        return target

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "cross_entropy":
            return nn.functional.cross_entropy(out, y)
        return ((out - self._one_hot(y, out)) ** 2).mean()

    def feature_major(self, logits: torch.Tensor, y: torch.Tensor, mean: bool = True) -> torch.Tensor:
        """The loss of each of P grid points from their outputs laid out feature-major, ``(P, C, n)``: ``(P,)``,
        or with ``mean=False`` each sample's loss (the loss of a batch of that one sample), ``(P, n)``.

        One call for the whole batch: a vmapped call costs a few hundred microseconds of Python, which two
        capture threads must take in turn (the GIL)."""
        if self.kind == "cross_entropy":
            per = nn.functional.cross_entropy(logits, y.expand(len(logits), -1), reduction="none")
        else:
            per = (logits - self._one_hot(y, logits, feature_major=True)).square_().mean(1)
        return per.mean(1) if mean else per


def loss_fn(kind: str, n_classes: int) -> Loss:
    """``(logits (..., n, C), targets (n,)) → mean loss``, batched over any leading dims via vmap."""
    return Loss(kind, n_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the parameters, by name."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}


# ------------------------------------------------------------------------------------------------ conv models


def _image_shape(input_shape: tuple[int, ...], kind: str) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(f"a {kind} needs (C, H, W) images, got samples of shape {tuple(input_shape)}")
    return tuple(input_shape)  # type: ignore[return-value]


class SmallCNN(nn.Module):
    """The small MNIST CNN of "Visualising the loss landscape" (seed 001), with scalable widths.

    ``features``: conv 3x3 (width) → [BN] → ReLU → conv 3x3 (2*width) → [BN] → ReLU → max-pool 2 → Dropout2d;
    ``classifier``: Linear (4*width) → ReLU → Dropout → Linear (n_classes). With width 32 on 28x28 MNIST this is
    the write-up's network (9216 → 128 → 10); its log_softmax is left out because the loss applies it.
    Parameter names follow the layers: ``features.0.weight`` is the first conv kernel (width, C, 3, 3).
    """

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, width: int = 32, batch_norm: bool = False,
                 dropout: tuple[float, float] = (0.25, 0.5)):
        super().__init__()
        c, h, w = _image_shape(input_shape, "cnn")
        if min(h, w) < 6:
            raise ValueError(f"the cnn needs images of at least 6x6 pixels, got {h}x{w}")
        layers: list[nn.Module] = [nn.Conv2d(c, width, 3)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers += [nn.ReLU(), nn.Conv2d(width, 2 * width, 3)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(2 * width))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        if dropout[0] > 0:
            layers.append(nn.Dropout2d(dropout[0]))
        self.features = nn.Sequential(*layers)
        n_flat = 2 * width * ((h - 4) // 2) * ((w - 4) // 2)
        head: list[nn.Module] = [nn.Linear(n_flat, 4 * width), nn.ReLU()]
        if dropout[1] > 0:
            head.append(nn.Dropout(dropout[1]))
        head.append(nn.Linear(4 * width, n_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def _init_like_torchvision(module: nn.Module, linear_std: float | None = None) -> None:
    """The initialisation torchvision's ResNet and VGG constructors give their layers, for layers built after."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)


def _no_meta_left(model: nn.Module, kind: str) -> None:
    left = [k for k, v in [*model.named_parameters(), *model.named_buffers()] if v.is_meta]
    if left:  # torchvision changed its layout: fail loudly rather than train a model with empty tensors
        raise RuntimeError(f"{kind}: layers not rebuilt for small images: {left[:5]}")


def small_resnet(input_shape: tuple[int, ...], n_classes: int, width: int = 16, depth: int = 1,
                 batch_norm: bool = True) -> nn.Module:
    """torchvision's ``ResNet`` with ``BasicBlock``, reduced for small images on a CPU.

    Stages of width, 2*width, 4*width, 8*width channels (torchvision: 64 … 512) with ``depth`` blocks each (1:
    ResNet-10, 2: ResNet-18); a 3x3 stride-1 stem without max-pool (CIFAR-style), global average pooling and one
    linear layer. Parameter names are torchvision's (``conv1.weight``, ``layer1.0.conv1.weight``, ``fc.weight``).
    """
    from torchvision.models.resnet import BasicBlock, ResNet

    c, _, _ = _image_shape(input_shape, "resnet")
    norm = nn.BatchNorm2d if batch_norm else (lambda n: nn.Identity())
    # torchvision hard-codes 64…512 channels: build the skeleton on the meta device (no memory, no time) and
    # rebuild every layer at the reduced width with the class's own _make_layer.
    with torch.device("meta"):
        model = ResNet(BasicBlock, [depth] * 4, num_classes=n_classes, norm_layer=norm)
    model.conv1 = nn.Conv2d(c, width, 3, stride=1, padding=1, bias=False)
    model.bn1 = norm(width)
    model.maxpool = nn.Identity()
    model.inplanes = width
    model.layer1 = model._make_layer(BasicBlock, width, depth)
    model.layer2 = model._make_layer(BasicBlock, 2 * width, depth, stride=2)
    model.layer3 = model._make_layer(BasicBlock, 4 * width, depth, stride=2)
    model.layer4 = model._make_layer(BasicBlock, 8 * width, depth, stride=2)
    model.fc = nn.Linear(8 * width, n_classes)
    _init_like_torchvision(model)
    _no_meta_left(model, "resnet")
    return model


VGG11_STAGES = (1, 1, 2, 2, 2)  # conv layers per stage of VGG-11 (configuration "A"), each stage then max-pools


def small_vgg(input_shape: tuple[int, ...], n_classes: int, width: int = 16, depth: int | None = None,
              batch_norm: bool = False, dropout: float = 0.5) -> nn.Module:
    """torchvision's ``VGG`` with features from its ``make_layers`` on VGG-11's plan, reduced.

    ``depth`` stages (default: all 5 that VGG-11 has, fewer when the images are too small to be halved 5 times)
    of width, 2*width, 4*width, 8*width, 8*width channels; global average pooling and a small classifier
    Linear(C, 4*width) → ReLU → Dropout → Linear(n_classes) instead of torchvision's 4096-wide one (which alone
    has 120M weights). Parameter names are torchvision's (``features.0.weight``, ``classifier.0.weight``).
    """
    from torchvision.models.vgg import VGG, make_layers

    c, h, w = _image_shape(input_shape, "vgg")
    fit = int(math.floor(math.log2(min(h, w))))
    depth = min(len(VGG11_STAGES), fit) if depth is None else depth
    if depth > min(len(VGG11_STAGES), fit):
        raise ValueError(f"model.depth: {depth} VGG stages halve {h}x{w} images below 1 pixel; at most "
                         f"{min(len(VGG11_STAGES), fit)} fit (raise data.image_size for more)")
    widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
    cfg: list = []
    for n, wd in zip(VGG11_STAGES[:depth], widths):
        cfg += [wd] * n + ["M"]
    features = make_layers(cfg, batch_norm=batch_norm)
    if c != 3:  # make_layers assumes RGB input
        first = features[0]
        features[0] = nn.Conv2d(c, first.out_channels, 3, padding=1)
    with torch.device("meta"):
        model = VGG(nn.Identity(), num_classes=n_classes, init_weights=False, dropout=dropout)
    model.features = features
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    out = widths[depth - 1]
    head: list[nn.Module] = [nn.Linear(out, 4 * width), nn.ReLU(True)]
    if dropout > 0:
        head.append(nn.Dropout(dropout))
    head.append(nn.Linear(4 * width, n_classes))
    model.classifier = nn.Sequential(*head)
    _init_like_torchvision(model, linear_std=0.01)
    _no_meta_left(model, "vgg")
    return model


def custom_model(factory: str, input_shape: tuple[int, ...], n_classes: int, source: str = "<scene>") -> nn.Module:
    """Import ``package.module`` (and nothing else) and call ``function(input_shape, n_classes)``.

    Every failure is a scene error on ``model.factory`` that says what was tried and what went wrong.
    """
    make = import_callable(factory, "model.factory", source)
    try:
        model = make(tuple(input_shape), n_classes)
    except Exception as exc:
        fail(source, "model.factory", f"calling {factory}({tuple(input_shape)}, {n_classes}) failed: "
             f"{type(exc).__name__}: {exc}")
    if not isinstance(model, nn.Module):
        fail(source, "model.factory", f"{factory}({tuple(input_shape)}, {n_classes}) returned "
             f"{type(model).__name__}, not a torch.nn.Module")
    return model


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def state_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the floating-point buffers (BatchNorm running statistics), by name."""
    return {k: v.detach().clone() for k, v in model.named_buffers() if v.is_floating_point()}
