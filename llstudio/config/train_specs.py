"""The sections the training stage reads: [data], [model], [training] and its [[training.runs]]."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator

from .base import NonNegFloat, PosInt, check_weight_refs, Section


FACTORY_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")

# Datasets the scene names by where they come from rather than by name: their sizes and shapes are known only
# once they are loaded.
OWN_DATASETS = ("custom", "files")


def check_factory_ref(v: Optional[str], example: str) -> Optional[str]:
    if v is not None and not FACTORY_REF.match(v):
        raise ValueError(f"{v!r} is not 'package.module:function', e.g. '{example}'")
    return v


class DataSpec(Section):
    """What the network learns from, and the fixed subset the landscape is measured on."""

    dataset: Literal["digits", "moons", "blobs", "spirals", "mnist", "fashion_mnist", "cifar10", "custom",
                     "files"] = Field(
        "digits",
        description="Dataset. 'digits' is scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes, "
        "no download). 'moons', 'blobs' and 'spirals' are synthetic 2D sets generated from the seed. 'mnist', "
        "'fashion_mnist' (28x28, 1 channel) and 'cifar10' (32x32, 3 channels) are read from the torchvision "
        "folder 'root' (training split; never downloaded). 'custom': your own data from 'factory'. 'files': "
        "arrays x and y from the .npz or .pt file 'path' (and optionally 'eval_path').",
    )
    factory: Optional[str] = Field(
        None,
        description="custom only: 'package.module:function', called as function() with no arguments. It returns "
        "(train, eval): each an (x, y) pair of tensors or arrays, or a torch.utils.data.Dataset of (x, y) samples; "
        "x is (n, *features) or (n, C, H, W), y (n,) integer classes 0 … C-1. eval may be None: the evaluation "
        "subset is then drawn from the training samples, as for the built-in sets. Only this module is imported.",
    )
    path: Optional[str] = Field(
        None,
        description="files only: the training samples, an .npz file (numpy.savez) or a .pt file (torch.save of a "
        "dict of tensors) holding 'x' (n, *features) and 'y' (n,) integer classes. Read without pickle "
        "(allow_pickle=False, weights_only=True). A relative path is relative to the scene file.",
    )
    eval_path: Optional[str] = Field(
        None,
        description="files only: a file like 'path' whose samples the evaluation subset is drawn from. Default: "
        "drawn from the training samples, as for the built-in sets.",
    )
    train_size: Optional[PosInt] = Field(
        None, description="Use only this many training samples (a seeded subset). Default: all of them."
    )
    eval_size: PosInt = Field(
        500,
        description="Size of the fixed evaluation subset every landscape value is computed on. It is drawn once "
        "from the training samples with eval_seed and never changes during the film.",
    )
    eval_seed: int = Field(0, description="Seed of the evaluation subset (and of the train subset).")
    samples: PosInt = Field(1000, description="Synthetic datasets only: how many samples to generate.")
    noise: NonNegFloat = Field(0.1, description="Synthetic datasets only: noise level.")
    root: Optional[str] = Field(
        None,
        description="mnist, fashion_mnist, cifar10 only: the torchvision data folder holding MNIST/raw, "
        "FashionMNIST/raw or cifar-10-batches-py. Default: $LLSTUDIO_DATA, else ./data.",
    )
    image_size: Optional[Annotated[int, Field(ge=4, le=256)]] = Field(
        None,
        description="Image datasets only: resize the images to image_size x image_size (bilinear), e.g. 16 or 32 "
        "so that a ResNet or VGG can run on the 8x8 digits. Default: native size.",
    )
    channels: Optional[Literal[1, 3]] = Field(
        None,
        description="Image datasets only: 3 replicates a grey image into RGB (digits, MNIST for a ResNet/VGG); 1 "
        "averages RGB to grey. Default: native channels.",
    )


    @field_validator("factory")
    @classmethod
    def _factory(cls, v):
        return check_factory_ref(v, "mypkg.data:load")


class ModelSpec(Section):
    """The network."""

    kind: Literal["mlp", "logistic", "cnn", "resnet", "vgg", "custom"] = Field(
        "mlp",
        description="'mlp': fully connected network; 'logistic': logistic (softmax) regression; 'cnn': the small "
        "MNIST CNN (2 conv layers, max-pool, dropout, 2 fully connected layers); 'resnet': torchvision's ResNet "
        "with BasicBlocks, reduced for small images (3x3 stem, no max-pool, 4 stages of width, 2*width, 4*width, "
        "8*width); 'vgg': torchvision's VGG on VGG-11's layer plan, reduced (base width, fewer stages, small "
        "classifier); 'custom': your own model from 'factory'. Conv models take (N, C, H, W) images.",
    )
    hidden: list[PosInt] = Field(
        default_factory=lambda: [32], description="MLP only: widths of the hidden layers, e.g. [50, 500]."
    )
    activation: Literal["relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu"] = Field(
        "relu", description="MLP only: activation after each hidden layer."
    )
    bias: bool = Field(True, description="Whether linear layers have bias terms.")
    width: Optional[PosInt] = Field(
        None,
        description="cnn, resnet, vgg: base channel width. cnn: channels of the first conv layer (the second has "
        "2*width, the hidden fully connected layer 4*width); default 32, the write-up's network. resnet and vgg: "
        "channels of the first stage, doubled per stage up to 8*width; default 16 (torchvision's full size is 64).",
    )
    depth: Optional[PosInt] = Field(
        None,
        description="resnet: BasicBlocks per stage (1 gives a ResNet-10, 2 a ResNet-18); default 1. vgg: number of "
        "stages of VGG-11's plan (conv counts 1, 1, 2, 2, 2, each stage ending in a 2x2 max-pool), at most 5 and "
        "at most log2 of the image size; default: as many as fit (5 on 32x32 images: VGG-11's features).",
    )
    batch_norm: Optional[bool] = Field(
        None,
        description="cnn, resnet, vgg: BatchNorm after every conv layer. Default: on for resnet, off for cnn and "
        "vgg (as in the write-ups). See capture.mode for how BatchNorm is treated in the landscape.",
    )
    dropout: Optional[Annotated[float, Field(ge=0, lt=1)]] = Field(
        None,
        description="cnn, vgg: probability of every dropout layer (0 removes them). Default: the architecture's "
        "own (cnn: 0.25 after pooling and 0.5 before the last layer; vgg: 0.5 in the classifier). Dropout is "
        "active in training; the landscape is measured with dropout off unless capture.dropout = 'fixed'.",
    )
    factory: Optional[str] = Field(
        None,
        description="custom only: 'package.module:function', called as function(input_shape, n_classes) with "
        "input_shape (C, H, W) for image datasets or (features,) otherwise; it must return a torch.nn.Module that "
        "maps a batch of inputs to (N, n_classes) logits. Only this module is imported, never other scene code.",
    )

    @field_validator("factory")
    @classmethod
    def _factory(cls, v):
        return check_factory_ref(v, "mypkg.nets:make_model")


class TrainingSpec(Section):
    """The training run whose landscape is filmed."""

    optimizer: Literal["sgd", "momentum", "adam", "adamw", "rmsprop"] = Field(
        "sgd", description="Optimizer. 'momentum' is SGD with the momentum below."
    )
    lr: float = Field(0.1, gt=0, description="Learning rate.")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="'constant', or 'cosine' decay to zero over the run."
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="Momentum for the 'momentum' and 'rmsprop' optimizers.")
    weight_decay: NonNegFloat = Field(0.0, description="L2 weight decay.")
    batch_size: PosInt = Field(32, description="Mini-batch size.")
    steps: PosInt = Field(300, le=10_000_000, description="Number of optimizer steps.")
    loss: Literal["cross_entropy", "mse"] = Field(
        "cross_entropy", description="Training loss, also the loss the landscape shows. 'mse' is against one-hot targets."
    )
    seed: int = Field(0, description="Seed of the initial weights and of the mini-batch order.")
    init_seed: Optional[int] = Field(
        None, description="Seed of the initial weights only, when it should differ from 'seed' (which then sets "
        "the mini-batch order alone). Default: 'seed'."
    )
    init: Optional[dict[str, float]] = Field(
        None,
        description="Starting values of chosen scalar weights, set after the seeded initialisation, e.g. "
        "{\"0.weight[0,0]\" = -3.0, \"0.weight[0,1]\" = 2.5}: the starting point of gradient descent on a "
        "two-weight landscape.",
    )
    train_only: Optional[list[str]] = Field(
        None,
        description="Update only these scalar weights, e.g. [\"2.weight[5,250]\", \"2.weight[5,251]\"]; every other "
        "weight keeps its initial value. With directions.kind = 'weights' on the same weights, the film shows "
        "gradient descent on exactly the landscape drawn (as in 'Gradient descent and loss landscape animations').",
    )
    source: Optional[str] = Field(
        None,
        description="Film a run trained elsewhere instead of training one: the folder an llstudio.Recorder wrote "
        "from your own training script, or a folder of torch.save(model.state_dict(), ...) checkpoints named by "
        "step ('step_100.pt', '00100.pth'), read with weights_only=True. Nothing is trained: [model] and [data] "
        "say how to rebuild the model and the evaluation data, 'loss' is the landscape's loss, and 'steps' with "
        "capture.every (or capture.steps) must pick steps the folder holds. A relative path is relative to the "
        "scene file.",
    )
    runs: Optional[list["RunSpec"]] = Field(
        None,
        description="Several training runs sharing one landscape ([[training.runs]] tables): each has a 'name' and "
        "overrides of the keys above (seed, init_seed, init, optimizer, lr, lr_schedule, momentum, weight_decay, "
        "batch_size). Every run trains for 'steps' and is captured at the same steps. The first run is the primary "
        "one: the directions come from it (see directions.pca_runs) and the single-run outputs describe it. Needs "
        "directions.frame = 'fixed' (the default when runs are given).",
    )

    @field_validator("init")
    @classmethod
    def _init(cls, v):
        return check_weight_refs(v)

    @field_validator("train_only")
    @classmethod
    def _train_only(cls, v):
        if v is not None:
            if not v:
                raise ValueError("name at least one weight, or leave train_only out")
            check_weight_refs({ref: 0.0 for ref in v})
        return v

    @field_validator("runs")
    @classmethod
    def _runs(cls, v):
        if v is not None:
            if not v:
                raise ValueError("give at least one run, or leave training.runs out")
            names = [r.name for r in v]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"run names must be unique; repeated: {', '.join(dup)}")
        return v

    def for_run(self, name: Optional[str] = None) -> "TrainingSpec":
        """The spec of one run: these settings with run ``name``'s overrides (the first run when None); without
        runs, these settings. The result has no runs."""
        if not self.runs:
            return self
        run = next((r for r in self.runs if r.name == name), None) if name is not None else self.runs[0]
        if run is None:
            raise KeyError(name)
        # None means "keep [training]'s value" (also for a resolved dump, which writes every key out).
        over = {k: v for k, v in run if k != "name" and v is not None}
        return self.model_copy(update={**over, "runs": None})

    def run_names(self) -> list[str]:
        """Names of the runs, primary first ('main' for a scene without training.runs)."""
        return [r.name for r in self.runs] if self.runs else ["main"]


RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class RunSpec(Section):
    """One of several training runs: a name and overrides of [training]; keys left out keep [training]'s values."""

    name: str = Field(..., description="Name of the run (letters, digits, '_' and '-'), e.g. 'bs64'; "
                      "directions.start = 'run:bs64' refers to its final weights.")
    seed: Optional[int] = Field(None, description="Seed of the initial weights and of the mini-batch order.")
    init_seed: Optional[int] = Field(None, description="Seed of the initial weights only.")
    init: Optional[dict[str, float]] = Field(None, description="Starting values of chosen scalar weights, e.g. "
                                             "{\"0.weight[0,0]\" = -3.0}.")
    optimizer: Optional[Literal["sgd", "momentum", "adam", "adamw", "rmsprop"]] = Field(None, description="Optimizer.")
    lr: Optional[float] = Field(None, gt=0, description="Learning rate.")
    lr_schedule: Optional[Literal["constant", "cosine"]] = Field(None, description="'constant' or 'cosine'.")
    momentum: Optional[float] = Field(None, ge=0, lt=1, description="Momentum ('momentum' and 'rmsprop').")
    weight_decay: Optional[NonNegFloat] = Field(None, description="L2 weight decay.")
    batch_size: Optional[PosInt] = Field(None, description="Mini-batch size.")

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not RUN_NAME.match(v):
            raise ValueError(f"{v!r} is not a run name: use letters, digits, '_' and '-', e.g. 'bs64'")
        return v

    @field_validator("init")
    @classmethod
    def _init(cls, v):
        return check_weight_refs(v)


TrainingSpec.model_rebuild()
