"""The batched landscape evaluator equals a brute-force per-point forward pass, for every strategy and loss."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from llstudio.landscape.evaluator import LandscapeEvaluator
from llstudio.landscape.reference import reference_grid
from llstudio.landscape.mlp import skip_unmoved_layers
from llstudio.train.models import loss_fn

CPU = torch.device("cpu")
F64 = torch.float64
N_CLASSES = 3
STRATEGIES = ["mlp", "linear_first", "vmap"]
LOSSES = ["cross_entropy", "mse"]

# Non-square grid with asymmetric ranges: a transposed or flipped result cannot pass.
ALPHAS = np.linspace(-1.0, 0.5, 4)
BETAS = np.array([-0.3, 0.4, 1.1, 2.0, 2.2])


def mlp(bias: bool = True, flatten: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    layers += [nn.Linear(6, 5, bias=bias), nn.Tanh(), nn.Linear(5, 3, bias=bias)]
    return nn.Sequential(*layers).to(F64)


def deep_mlp() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 5), nn.GELU(), nn.Linear(5, 4), nn.ELU(),
                         nn.Linear(4, 4), nn.LeakyReLU(0.2), nn.Linear(4, 4), nn.Sigmoid(),
                         nn.Linear(4, 3)).to(F64)


def conv_first() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3)).to(F64)


def data(input_shape, n=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *input_shape), generator=g, dtype=F64)
    y = torch.randint(0, N_CLASSES, (n,), generator=g)
    return x, y


def center_and_directions(model, seed=0, scale=0.5, spread=0.3):
    """A centre ``spread`` away from the model's own weights and two dense random directions (biases included)."""
    g = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    center = {k: p.detach() + spread * torch.randn(p.shape, generator=g, dtype=F64) for k, p in params.items()}
    d1 = {k: scale * torch.randn(p.shape, generator=g, dtype=F64) for k, p in params.items()}
    d2 = {k: scale * torch.randn(p.shape, generator=g, dtype=F64) for k, p in params.items()}
    return center, d1, d2


def brute_force(model, center, d1, d2, alphas, betas, x, y, loss_kind):
    """Independent reference: a fresh copy of the model per point, weights set by hand, one forward pass."""
    out = np.empty((len(alphas), len(betas)))
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            m = copy.deepcopy(model).eval()
            with torch.no_grad():
                for name, p in m.named_parameters():
                    p.copy_(center[name] + float(a) * d1[name] + float(b) * d2[name])
                logits = m(x)
                if loss_kind == "cross_entropy":
                    val = nn.functional.cross_entropy(logits, y)
                else:
                    onehot = nn.functional.one_hot(y, N_CLASSES).to(logits.dtype)
                    val = ((logits - onehot) ** 2).mean()
            out[i, j] = float(val)
    return out


def evaluator(model, x, y, loss_kind, d1, d2, strategy="auto", **kw):
    return LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn(loss_kind, N_CLASSES), d1, d2, CPU, F64,
                              strategy=strategy, **kw)


MODELS = {
    "mlp_bias": (lambda: mlp(bias=True), (6,)),
    "mlp_nobias": (lambda: mlp(bias=False), (6,)),
    "flatten_mlp": (lambda: mlp(flatten=True), (2, 3)),
    "deep_mlp": (deep_mlp, (6,)),
}


@pytest.mark.parametrize("loss_kind", LOSSES)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("model_name", list(MODELS))
def test_grid_equals_brute_force(model_name, strategy, loss_kind):
    build, shape = MODELS[model_name]
    model = build()
    x, y = data(shape)
    center, d1, d2 = center_and_directions(model)
    ev = evaluator(model, x, y, loss_kind, d1, d2, strategy=strategy)
    assert ev.strategy == strategy
    got = ev.grid(center, ALPHAS, BETAS)
    want = brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, loss_kind)
    assert got.shape == (len(ALPHAS), len(BETAS))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    # 'ij' indexing, checked at one point directly: [i, j] is at (alphas[i], betas[j])
    one = brute_force(model, center, d1, d2, [ALPHAS[3]], [BETAS[1]], x, y, loss_kind)[0, 0]
    assert got[3, 1] == pytest.approx(one, rel=1e-9)


@pytest.mark.parametrize("loss_kind", LOSSES)
@pytest.mark.parametrize("strategy", STRATEGIES + ["auto"])
@pytest.mark.parametrize("flatten", [False, True])
def test_logistic_model_equals_brute_force(strategy, loss_kind, flatten):
    torch.manual_seed(2)
    model = nn.Sequential(*([nn.Flatten()] if flatten else []), nn.Linear(6, 3)).to(F64)
    x, y = data((2, 3) if flatten else (6,))
    center, d1, d2 = center_and_directions(model, seed=4)
    ev = evaluator(model, x, y, loss_kind, d1, d2, strategy=strategy)
    got = ev.grid(center, ALPHAS, BETAS)
    np.testing.assert_allclose(got, brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, loss_kind),
                               rtol=1e-6, atol=0)


@pytest.mark.parametrize("strategy", ["linear_first", "vmap"])
@pytest.mark.parametrize("loss_kind", LOSSES)
def test_conv_model_equals_brute_force(strategy, loss_kind):
    model = conv_first()
    x, y = data((1, 5, 5), n=7)
    center, d1, d2 = center_and_directions(model, seed=5)
    ev = evaluator(model, x, y, loss_kind, d1, d2, strategy=strategy)
    got = ev.grid(center, ALPHAS, BETAS)
    np.testing.assert_allclose(got, brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, loss_kind),
                               rtol=1e-6, atol=0)


def test_first_layer_shortcut_refuses_a_model_without_a_leading_linear_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.LayerNorm(6), nn.Linear(6, 3)).to(F64)
    x, y = data((6,))
    center, d1, d2 = center_and_directions(model)
    for strategy in ("mlp", "linear_first"):
        with pytest.raises(ValueError, match="does not apply"):
            evaluator(model, x, y, "cross_entropy", d1, d2, strategy=strategy)
    ev = evaluator(model, x, y, "cross_entropy", d1, d2)
    assert ev.strategy == "vmap"
    np.testing.assert_allclose(ev.grid(center, ALPHAS, BETAS),
                               brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, "cross_entropy"), rtol=1e-6)


def test_mlp_strategy_refuses_a_conv_model():
    model = conv_first()
    x, y = data((1, 5, 5), n=4)
    _, d1, d2 = center_and_directions(model)
    with pytest.raises(ValueError, match="'mlp' does not apply"):
        evaluator(model, x, y, "cross_entropy", d1, d2, strategy="mlp")


def test_auto_picks_the_fastest_strategy_that_applies():
    x6, y6 = data((6,))
    xc, yc = data((1, 5, 5), n=4)
    for build, (x, y), want in [(mlp, (x6, y6), "mlp"), (conv_first, (xc, yc), "linear_first")]:
        model = build()
        _, d1, d2 = center_and_directions(model)
        assert evaluator(model, x, y, "cross_entropy", d1, d2).strategy == want


def test_unknown_strategy_is_a_value_error():
    model = mlp()
    x, y = data((6,))
    _, d1, d2 = center_and_directions(model)
    with pytest.raises(ValueError):
        evaluator(model, x, y, "cross_entropy", d1, d2, strategy="bogus")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_small_chunks_give_identical_results(strategy):
    model = deep_mlp()
    x, y = data((6,))
    center, d1, d2 = center_and_directions(model, seed=6)
    ev = evaluator(model, x, y, "cross_entropy", d1, d2, strategy=strategy)
    ev.chunk = 10_000
    big = ev.grid(center, ALPHAS, BETAS)
    ev.chunk = 3  # 20 points: 6 full chunks and a last one of 2
    small = ev.grid(center, ALPHAS, BETAS)
    np.testing.assert_allclose(small, big, rtol=1e-12, atol=0)
    ev.chunk = 1
    np.testing.assert_allclose(ev.grid(center, ALPHAS, BETAS), big, rtol=1e-12, atol=0)


def test_reference_grid_agrees():
    model = mlp(flatten=True)
    x, y = data((2, 3))
    center, d1, d2 = center_and_directions(model, seed=7)
    calls = []
    ref = reference_grid(copy.deepcopy(model), center, d1, d2, ALPHAS, BETAS, x, y,
                         loss_fn("cross_entropy", N_CLASSES), on_point=lambda: calls.append(1))
    assert len(calls) == ALPHAS.size * BETAS.size
    want = brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, "cross_entropy")
    np.testing.assert_allclose(ref, want, rtol=1e-6, atol=0)
    ev = evaluator(model, x, y, "cross_entropy", d1, d2)
    np.testing.assert_allclose(ev.grid(center, ALPHAS, BETAS), ref, rtol=1e-6, atol=0)


def test_evaluate_at_origin_is_the_centre_loss_and_centre_is_not_the_model_weights():
    model = mlp()
    x, y = data((6,))
    center, d1, d2 = center_and_directions(model, seed=8)
    ev = evaluator(model, x, y, "cross_entropy", d1, d2)
    zero = torch.zeros(1, dtype=F64)
    got = float(ev.evaluate(center, zero, zero)[0])
    want = brute_force(model, center, d1, d2, [0.0], [0.0], x, y, "cross_entropy")[0, 0]
    assert got == pytest.approx(want, rel=1e-9)
    own = {k: p.detach() for k, p in model.named_parameters()}
    assert float(ev.evaluate(own, zero, zero)[0]) != pytest.approx(got, rel=1e-6)


def test_same_evaluator_serves_several_centres():
    """The 'follow' frame: one evaluator, a new centre per captured step, no state carried over."""
    model = deep_mlp()
    x, y = data((6,))
    c1, d1, d2 = center_and_directions(model, seed=9)
    c2, _, _ = center_and_directions(model, seed=10)
    ev = evaluator(model, x, y, "mse", d1, d2, strategy="mlp")
    g1 = ev.grid(c1, ALPHAS, BETAS)
    g2 = ev.grid(c2, ALPHAS, BETAS)
    np.testing.assert_allclose(g2, brute_force(model, c2, d1, d2, ALPHAS, BETAS, x, y, "mse"), rtol=1e-6)
    np.testing.assert_array_equal(ev.grid(c1, ALPHAS, BETAS), g1)


def test_float32_evaluator_is_close_to_float64_reference():
    model = mlp()
    x, y = data((6,))
    center, d1, d2 = center_and_directions(model, seed=11)
    ev = LandscapeEvaluator(copy.deepcopy(model), x.float(), y, loss_fn("cross_entropy", N_CLASSES),
                            {k: v.float() for k, v in d1.items()}, {k: v.float() for k, v in d2.items()},
                            CPU, torch.float32)
    got = ev.grid({k: v.float() for k, v in center.items()}, ALPHAS, BETAS)
    want = brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, "cross_entropy")
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_chunk_size_respects_memory_budget():
    model = deep_mlp()
    x, y = data((6,), n=50)
    _, d1, d2 = center_and_directions(model)
    small = evaluator(model, x, y, "cross_entropy", d1, d2, strategy="vmap", memory_mb=1)
    large = evaluator(model, x, y, "cross_entropy", d1, d2, strategy="vmap", memory_mb=64)
    assert 1 <= small.chunk < large.chunk <= 8192


# ------------------------------------------------------------------------------------ per-sample landscapes


def brute_force_per_sample(model, center, d1, d2, alphas, betas, x, y, loss_kind):
    """(n, nx, ny): each sample's loss alone, from the independent brute force on a batch of that one sample."""
    return np.stack([brute_force(model, center, d1, d2, alphas, betas, x[i:i + 1], y[i:i + 1], loss_kind)
                     for i in range(len(x))])


@pytest.mark.parametrize("loss_kind", LOSSES)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_per_sample_grid_equals_brute_force(strategy, loss_kind):
    model = deep_mlp()
    x, y = data((6,), n=5)
    center, d1, d2 = center_and_directions(model, seed=7)
    ev = evaluator(model, x, y, loss_kind, d1, d2, strategy=strategy)
    ev.chunk = 3  # several chunks, on two threads for the mlp strategy
    each = ev.grid(center, ALPHAS, BETAS, reduction="none")
    assert each.shape == (5, len(ALPHAS), len(BETAS))
    np.testing.assert_allclose(each, brute_force_per_sample(model, center, d1, d2, ALPHAS, BETAS, x, y, loss_kind),
                               rtol=1e-10)
    # Their mean is the loss on those samples together.
    np.testing.assert_allclose(each.mean(axis=0), ev.grid(center, ALPHAS, BETAS), rtol=1e-12)


def test_per_sample_evaluate_shape_and_unknown_reduction():
    model = mlp()
    x, y = data((6,), n=4)
    center, d1, d2 = center_and_directions(model)
    ev = evaluator(model, x, y, "mse", d1, d2)
    a = torch.tensor([0.0, 0.5, -1.0])
    assert ev.evaluate(center, a, a, reduction="none").shape == (3, 4)
    with pytest.raises(ValueError, match="unknown reduction 'sum'"):
        ev.evaluate(center, a, a, reduction="sum")


# ------------------------------------------------------------------------------------------- CPU threads


@pytest.mark.parametrize("loss_kind", LOSSES)
def test_threaded_mlp_path_equals_one_thread_and_restores_torch_threads(loss_kind):
    model = deep_mlp()
    x, y = data((6,), n=13)
    center, d1, d2 = center_and_directions(model, seed=8)
    one = evaluator(model, x, y, loss_kind, d1, d2, strategy="mlp", threads=1)
    two = evaluator(model, x, y, loss_kind, d1, d2, strategy="mlp", threads=2)
    one.chunk = two.chunk = 2  # 20 points: 10 chunks shared by the two workers
    before = torch.get_num_threads()
    got = two.grid(center, ALPHAS, BETAS)
    assert torch.get_num_threads() == before
    np.testing.assert_allclose(got, one.grid(center, ALPHAS, BETAS), rtol=1e-12, atol=0)
    np.testing.assert_allclose(got, brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, loss_kind), rtol=1e-10)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunk, group", [(5, 2), (7, 3), (20, 1), (3, 8)])
def test_points_grouped_within_a_batch_equal_brute_force(chunk, group, threads):
    """On a CPU the mlp path multiplies ``group`` points at a time within each batch of ``chunk``: a group that
    does not divide the batch (nor the batch the 20 grid points) changes no value, per-sample losses included."""
    model = deep_mlp()
    x, y = data((6,), n=5)
    center, d1, d2 = center_and_directions(model, seed=12)
    ev = evaluator(model, x, y, "cross_entropy", d1, d2, strategy="mlp", threads=threads)
    ev.chunk, ev.group = chunk, group
    np.testing.assert_allclose(ev.grid(center, ALPHAS, BETAS),
                               brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, "cross_entropy"), rtol=1e-10)
    np.testing.assert_allclose(ev.grid(center, ALPHAS, BETAS, reduction="none"),
                               brute_force_per_sample(model, center, d1, d2, ALPHAS, BETAS, x, y, "cross_entropy"),
                               rtol=1e-10)


def test_wide_hidden_layer_is_multiplied_one_point_at_a_time_and_stays_exact():
    """The group size follows the widest hidden activation (about 2 MB a group): 600 units x 1,000 float32
    samples is one point per product, in batches of several points."""
    torch.manual_seed(13)
    model = nn.Sequential(nn.Linear(6, 20), nn.Sigmoid(), nn.Linear(20, 600), nn.Sigmoid(),
                          nn.Linear(600, N_CLASSES)).to(F64)
    x, y = data((6,), n=1000)
    center, d1, d2 = center_and_directions(model, seed=13, scale=0.2)
    f32 = {k: v.float() for k, v in center.items()}
    ev = LandscapeEvaluator(copy.deepcopy(model), x.float(), y, loss_fn("mse", N_CLASSES),
                            {k: v.float() for k, v in d1.items()}, {k: v.float() for k, v in d2.items()},
                            CPU, torch.float32, strategy="mlp", threads=2)
    assert ev.group == 1 and ev.chunk > 1
    got = ev.grid(f32, ALPHAS, BETAS)
    np.testing.assert_allclose(got, brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, "mse"), rtol=1e-5)


def test_worker_error_reaches_the_caller_and_threads_are_restored():
    model = deep_mlp()
    x, y = data((6,))
    center, d1, d2 = center_and_directions(model)
    ev = evaluator(model, x, y, "cross_entropy", d1, d2, strategy="mlp", threads=2)
    ev.chunk = 1
    before = torch.get_num_threads()
    bad = dict(center)
    bad["2.weight"] = bad["2.weight"][:, :3]  # wrong shape: the layer's product fails inside a worker
    with pytest.raises(RuntimeError):
        ev.grid(bad, ALPHAS, BETAS)
    assert torch.get_num_threads() == before


def test_threads_apply_to_the_cpu_only():
    model = mlp()
    x, y = data((6,))
    _, d1, d2 = center_and_directions(model)
    assert evaluator(model, x, y, "mse", d1, d2, threads=3).threads == 3
    assert evaluator(model, x, y, "mse", d1, d2).threads == torch.get_num_threads()


# ----------------------------------------------------------------- layers the directions leave alone


def zero_except(d: dict, keep: set) -> dict:
    return {k: (v if k in keep else torch.zeros_like(v)) for k, v in d.items()}


@pytest.mark.parametrize("moved", [
    {"10.weight"},                               # two named weights of the output layer (as 'weights' directions)
    {"4.weight", "4.bias", "10.bias"},           # a middle layer and a later bias
    {"2.bias"},                                  # only a bias: the layer is still linear in it
    set(),                                       # nothing moves: every point is the centre
])
@pytest.mark.parametrize("loss_kind", LOSSES)
def test_layers_without_direction_are_computed_once_and_still_exact(moved, loss_kind):
    model = deep_mlp()
    x, y = data((6,))
    center, d1, d2 = center_and_directions(model, seed=9)
    if moved == {"10.weight"}:  # sparse like named weights: one entry in each direction
        d1 = zero_except({k: torch.zeros_like(v) for k, v in d1.items()}, set())
        d2 = {k: torch.zeros_like(v) for k, v in d2.items()}
        d1["10.weight"][1, 2] = 1.0
        d2["10.weight"][0, 3] = 1.0
    else:
        d1, d2 = zero_except(d1, moved), zero_except(d2, moved)
    ev = evaluator(model, x, y, loss_kind, d1, d2, strategy="mlp")
    ev.chunk, ev.group = 3, 2  # skipped layers scale the batch up; groups of 2 within it
    got = ev.grid(center, ALPHAS, BETAS)
    np.testing.assert_allclose(got, brute_force(model, center, d1, d2, ALPHAS, BETAS, x, y, loss_kind), rtol=1e-10)
    each = ev.grid(center, ALPHAS, BETAS, reduction="none")
    np.testing.assert_allclose(each.mean(axis=0), got, rtol=1e-12)
    if not moved:
        np.testing.assert_allclose(got, got[0, 0], rtol=1e-12)
    # The shortcut did start the per-point work after the last unmoved linear layer.
    (zc, z1, z2), _ = ev._first_layer(center)
    start = skip_unmoved_layers(ev.plan, center, ev.d1, ev.d2, *(z.T.contiguous() for z in (zc, z1, z2)))[0]
    first_moved = min((int(k.split(".")[0]) for k in moved), default=None)
    # plan.layers are the model's children after the first (index 0): child i is plan.layers[i - 1]
    assert start == (len(ev.plan.layers) if first_moved is None else first_moved)
