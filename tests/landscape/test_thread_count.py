"""A landscape value does not depend on the process's torch thread count: a rank of a distributed capture, with
its share of the cores, gives the bits of a one-process capture with all of them."""

from __future__ import annotations

import numpy as np
import torch

from conftest import make_scene
from llstudio.landscape.directions import random_directions
from llstudio.landscape.evaluator import LandscapeEvaluator
from llstudio.train.data import load_dataset
from llstudio.train.models import loss_fn
from llstudio.train.training import initial_model


def test_values_are_the_same_on_one_and_two_threads():
    # digits_ride's model and data: two intra-op threads once rounded its centre loss differently (2e-7).
    scene = make_scene(data={"dataset": "digits", "eval_size": 500},
                       model={"kind": "mlp", "hidden": [64, 32], "activation": "relu"})
    data = load_dataset(scene.data)
    model = initial_model(scene, data, torch.float32)
    center = {k: p.detach().clone() for k, p in model.named_parameters()}
    d1, d2 = random_directions(scene.directions, center)
    x, y = torch.as_tensor(data.x_eval), torch.as_tensor(data.y_eval)
    zero = torch.zeros(1, dtype=torch.float64)
    before, values = torch.get_num_threads(), []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ev = LandscapeEvaluator(model, x, y, loss_fn("cross_entropy", data.n_classes), d1, d2,
                                    torch.device("cpu"), torch.float32)
            values.append((ev.evaluate(center, zero, zero).numpy(),
                           ev.grid(center, np.linspace(-1, 1, 9), np.linspace(-1, 1, 9))))
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(values[0][0], values[1][0])  # one point: in the calling thread
    assert np.array_equal(values[0][1], values[1][1])  # a grid: on worker threads
