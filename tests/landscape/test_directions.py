"""Direction normalisation (Li et al. 2018) and seeding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llstudio.landscape.directions import cosine, flatten, normalize, random_direction, random_directions
from llstudio.train.models import state_of
from llstudio.config.scene import DirectionsSpec


def conv_reference(dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Weights of a small conv + MLP model (4-D, 2-D and 1-D tensors), with non-trivial filter norms."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 10),
                          nn.BatchNorm1d(10), nn.Linear(10, 4)).to(dtype)
    ref = state_of(model)
    # Make filter norms differ a lot so a per-tensor scaling would not pass for a per-filter one.
    ref["3.weight"] *= torch.linspace(0.1, 5.0, 10, dtype=dtype).view(-1, 1)
    return ref


def spec(**kw) -> DirectionsSpec:
    return DirectionsSpec(**kw)


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_filter_normalisation_matches_every_filter_norm(dtype, rtol):
    ref = conv_reference(dtype)
    d1, d2 = random_directions(spec(normalization="filter"), ref)
    for d in (d1, d2):
        assert d.keys() == ref.keys()
        for k, w in ref.items():
            assert d[k].shape == w.shape and d[k].dtype == w.dtype
            if w.dim() >= 2:
                dn = d[k].flatten(1).norm(dim=1)
                wn = w.flatten(1).norm(dim=1)
                torch.testing.assert_close(dn, wn, rtol=rtol, atol=0)
            else:
                assert torch.count_nonzero(d[k]) == 0, f"1-D tensor {k} should be zero by default"


def test_filter_normalisation_changes_direction_not_just_scale():
    ref = conv_reference()
    g = torch.Generator().manual_seed(5)
    raw = random_direction(ref, g)
    out = normalize(raw, ref, "filter")
    # each filter is a positive multiple of the raw filter
    for k, w in ref.items():
        if w.dim() >= 2:
            for r, o in zip(raw[k].flatten(1), out[k].flatten(1)):
                assert torch.nn.functional.cosine_similarity(r, o, dim=0) > 1 - 1e-9


def test_biases_included_when_asked():
    ref = conv_reference()
    d1, _ = random_directions(spec(normalization="filter", include_biases=True), ref)
    for k, w in ref.items():
        if w.dim() == 1:
            # a bias has no filters: it is scaled per tensor (a zero one, like BatchNorm's, stays zero)
            torch.testing.assert_close(d1[k].norm(), w.norm(), rtol=1e-6, atol=0)
            if torch.count_nonzero(w):
                assert torch.count_nonzero(d1[k]) == d1[k].numel(), k
    assert torch.count_nonzero(d1["0.bias"]) > 0 and torch.count_nonzero(d1["3.bias"]) > 0


def test_layer_normalisation_gives_per_tensor_norms():
    ref = conv_reference()
    d1, d2 = random_directions(spec(normalization="layer"), ref)
    for d in (d1, d2):
        for k, w in ref.items():
            if w.dim() >= 2:
                torch.testing.assert_close(d[k].norm(), w.norm(), rtol=1e-6, atol=0)
            else:
                assert torch.count_nonzero(d[k]) == 0
    # per tensor, not per filter: the filter norms of the scaled Linear do not follow the reference's
    fn = d1["3.weight"].norm(dim=1)
    wn = ref["3.weight"].norm(dim=1)
    assert not torch.allclose(fn, wn, rtol=0.1)


def test_model_normalisation_gives_whole_vector_norm():
    ref = conv_reference()
    d1, _ = random_directions(spec(normalization="model"), ref)
    weights = [k for k, w in ref.items() if w.dim() >= 2]
    dn = torch.sqrt(sum((d1[k] ** 2).sum() for k in weights))
    wn = torch.sqrt(sum((ref[k] ** 2).sum() for k in weights))
    torch.testing.assert_close(dn, wn, rtol=1e-6, atol=0)
    assert all(torch.count_nonzero(d1[k]) == 0 for k, w in ref.items() if w.dim() == 1)
    torch.testing.assert_close(flatten(d1).norm(), wn, rtol=1e-6, atol=0)


def test_model_normalisation_with_biases():
    ref = conv_reference()
    d1, _ = random_directions(spec(normalization="model", include_biases=True), ref)
    torch.testing.assert_close(flatten(d1).norm(), flatten(ref).norm(), rtol=1e-6, atol=0)


def test_none_leaves_weights_raw_and_zeroes_biases():
    ref = conv_reference()
    g = torch.Generator().manual_seed(1)
    raw = random_direction(ref, g)
    d1, _ = random_directions(spec(normalization="none", seed=1), ref)
    for k, w in ref.items():
        if w.dim() >= 2:
            torch.testing.assert_close(d1[k], raw[k], rtol=0, atol=0)
        else:
            assert torch.count_nonzero(d1[k]) == 0


def test_zero_reference_filter_gives_zero_direction_filter():
    ref = conv_reference()
    ref["3.weight"][2] = 0.0
    d1, _ = random_directions(spec(normalization="filter"), ref)
    assert torch.all(d1["3.weight"][2] == 0)
    assert torch.all(torch.isfinite(d1["3.weight"]))


def test_same_seed_same_directions_different_seed_different():
    ref = conv_reference()
    a1, a2 = random_directions(spec(seed=7), ref)
    b1, b2 = random_directions(spec(seed=7), ref)
    c1, _ = random_directions(spec(seed=8), ref)
    for k in ref:
        assert torch.equal(a1[k], b1[k]) and torch.equal(a2[k], b2[k])
    assert not torch.equal(flatten(a1), flatten(c1))
    assert not torch.equal(flatten(a1), flatten(a2))  # the two directions differ


def test_directions_do_not_depend_on_global_rng():
    ref = conv_reference()
    torch.manual_seed(123)
    a1, _ = random_directions(spec(seed=2), ref)
    torch.manual_seed(456)
    b1, _ = random_directions(spec(seed=2), ref)
    assert torch.equal(flatten(a1), flatten(b1))


def test_random_directions_are_nearly_orthogonal():
    torch.manual_seed(0)
    big = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    ref = state_of(big)
    n = sum(v.numel() for v in ref.values())
    assert n > 100_000
    for seed in range(3):
        d1, d2 = random_directions(spec(seed=seed), ref)
        # |cos| of two independent Gaussian vectors is about 1/sqrt(n) ≈ 0.003
        assert abs(cosine(d1, d2)) < 0.03
    assert cosine(d1, d1) == pytest.approx(1.0)
