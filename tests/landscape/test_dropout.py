"""Dropout during capture (capture.dropout = 'fixed'): one set of masks per captured step, the same at every grid
point, checked against a float64 brute-force forward pass of the unmodified torch modules with those masks applied
by hand (forward hooks), on every strategy, BatchNorm mode and reduction."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_scene, perturbed_stats
from test_landscape import center_and_directions
from llstudio.landscape.dropout import UnsupportedDropout, mask_seed, swap_dropout
from llstudio.errors import SceneError
from llstudio.landscape.evaluator import LandscapeEvaluator
from llstudio.train.models import build_model, loss_fn
from llstudio.config.scene import ModelSpec

CPU = torch.device("cpu")
F64 = torch.float64
N_CLASSES = 3
ALPHAS = np.array([-0.6, 0.1, 0.5])
BETAS = np.array([-0.4, 0.3])
DROPS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def _data(shape, n, seed=0, classes=N_CLASSES):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g, dtype=F64), torch.randint(0, classes, (n,), generator=g)


def dropout_mlp(p=0.4) -> nn.Sequential:
    """Input dropout before the first layer (the first-layer shortcut's prefix) and dropout between layers."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Dropout(p), nn.Linear(6, 7), nn.Tanh(), nn.Dropout(p), nn.Linear(7, 5), nn.ReLU(),
                         nn.Dropout(p / 2), nn.Linear(5, N_CLASSES)).to(F64)


def conv_dropout1d() -> nn.Sequential:
    """A Dropout1d on (N, C, L) features, channel-wise."""
    torch.manual_seed(4)
    return nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Dropout1d(0.5), nn.Flatten(),
                         nn.Linear(3 * 4, N_CLASSES)).to(F64)


def tiny_cnn(batch_norm: bool, dropout: float = 0.4) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelSpec(kind="cnn", width=2, batch_norm=batch_norm, dropout=dropout), (1, 8, 8),
                       N_CLASSES).to(F64)


def brute_force(model, center, d1, d2, masks, x, y, mode="eval", buffers=None, bn_x=None, reduction="mean",
                alphas=ALPHAS, betas=BETAS):
    """Per point: a fresh copy of the unmodified model, weights set by hand, torch's own BatchNorm behaviour, and
    each dropout layer (in eval mode: the identity) replaced by ``input * mask`` through a forward hook. The
    recompute pass over ``bn_x`` runs without the masks. (nx, ny), or (n, nx, ny) with reduction 'none'."""
    out = np.empty((len(alphas), len(betas)) if reduction == "mean" else (len(x), len(alphas), len(betas)))
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            m = copy.deepcopy(model)
            hooked = [True]
            for name, mod in m.named_modules():
                if isinstance(mod, DROPS):
                    mod.register_forward_hook(
                        lambda _m, inp, _out, k=name: inp[0] * masks[k] if hooked[0] else None)
            with torch.no_grad():
                for name, p in m.named_parameters():
                    p.copy_(center[name] + float(a) * d1[name] + float(b) * d2[name])
                for name, t in m.named_buffers():
                    if name in (buffers or {}):
                        t.copy_(buffers[name])
                bns = [mod for mod in m.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
                drops = [mod for mod in m.modules() if isinstance(mod, DROPS)]
                if mode == "recompute_bn":
                    for bn in bns:
                        bn.reset_running_stats()
                        bn.momentum = None
                    m.train()
                    for d in drops:
                        d.eval()
                    hooked[0] = False
                    m(bn_x)
                    hooked[0] = True
                    m.eval()
                elif mode == "train":
                    m.train()
                    for d in drops:
                        d.eval()  # the hook applies the masks; torch's own dropout stays off
                else:
                    m.eval()
                logits = m(x)
                if reduction == "mean":
                    out[i, j] = float(nn.functional.cross_entropy(logits, y))
                else:
                    out[:, i, j] = nn.functional.cross_entropy(logits, y, reduction="none").numpy()
    return out


def evaluator(model, x, y, strategy="auto", dropout="fixed", **kw):
    return LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn("cross_entropy", N_CLASSES), kw.pop("d1"),
                              kw.pop("d2"), CPU, F64, strategy=strategy, dropout=dropout, **kw)


# ------------------------------------------------------------------------------------- against brute force


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("strategy", ["mlp", "linear_first", "vmap"])
def test_fixed_masks_equal_brute_force_on_every_strategy(strategy, reduction):
    model = dropout_mlp()
    x, y = _data((6,), 9)
    center, d1, d2 = center_and_directions(model, seed=1, scale=0.4, spread=0.2)
    ev = evaluator(model, x, y, strategy, d1=d1, d2=d2, threads=2)
    ev.chunk = 2  # several chunks, on two threads for the mlp strategy
    masks = ev.dropout_masks(mask_seed(0, 10))
    got = ev.grid(center, ALPHAS, BETAS, reduction=reduction, masks=masks)
    want = brute_force(model, center, d1, d2, masks, x, y, reduction=reduction)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)
    # The masks matter: without them the values differ.
    assert not np.allclose(got, brute_force(model, center, d1, d2, {k: 1.0 for k in masks}, x, y,
                                            reduction=reduction))


def test_auto_keeps_the_mlp_fast_path_with_masks():
    model = dropout_mlp()
    x, y = _data((6,), 5)
    _, d1, d2 = center_and_directions(model)
    assert evaluator(model, x, y, d1=d1, d2=d2).strategy == "mlp"


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("mode", ["eval", "train", "recompute_bn"])
def test_cnn_fixed_masks_equal_brute_force_in_every_batch_norm_mode(mode, reduction):
    model = tiny_cnn(batch_norm=True)
    x, y = _data((1, 8, 8), 6)
    bn_x = _data((1, 8, 8), 9, seed=1)[0] if mode == "recompute_bn" else None
    center, d1, d2 = center_and_directions(model, seed=2, scale=0.3, spread=0.1)
    bufs = perturbed_stats(model)
    ev = evaluator(model, x, y, d1=d1, d2=d2, mode=mode, bn_x=bn_x)
    assert ev.strategy == "vmap"
    ev.chunk = 4  # two chunks
    masks = ev.dropout_masks(mask_seed(3, 40))
    got = ev.grid(center, ALPHAS, BETAS, buffers=bufs, reduction=reduction, masks=masks)
    want = brute_force(model, center, d1, d2, masks, x, y, mode, bufs, bn_x, reduction)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)


@pytest.mark.parametrize("build,shape", [(lambda: tiny_cnn(batch_norm=False), (1, 8, 8)),
                                         (conv_dropout1d, (2, 6))], ids=["cnn", "dropout1d"])
def test_conv_models_fixed_masks_equal_brute_force(build, shape):
    model = build()
    x, y = _data(shape, 5)
    center, d1, d2 = center_and_directions(model, seed=3, scale=0.3, spread=0.1)
    ev = evaluator(model, x, y, d1=d1, d2=d2)
    masks = ev.dropout_masks(mask_seed(0, 0))
    np.testing.assert_allclose(ev.grid(center, ALPHAS, BETAS, masks=masks),
                               brute_force(model, center, d1, d2, masks, x, y), rtol=1e-5, atol=0)


def test_vgg_fixed_masks_equal_brute_force():
    torch.manual_seed(3)
    model = build_model(ModelSpec(kind="vgg", width=2, batch_norm=True, dropout=0.5), (1, 8, 8),
                        N_CLASSES).to(F64)
    x, y = _data((1, 8, 8), 5)
    center, d1, d2 = center_and_directions(model, seed=4, scale=0.3, spread=0.1)
    ev = evaluator(model, x, y, d1=d1, d2=d2, mode="train")
    masks = ev.dropout_masks(mask_seed(0, 7))
    assert list(masks) == ["classifier.2"]
    np.testing.assert_allclose(ev.grid(center, ALPHAS, BETAS, masks=masks),
                               brute_force(model, center, d1, d2, masks, x, y, "train"), rtol=1e-5, atol=0)


# ------------------------------------------------------------------------------------------------ the masks


def test_masks_are_shaped_and_scaled_as_torch_dropout():
    model = tiny_cnn(batch_norm=False, dropout=0.4)
    x, y = _data((1, 8, 8), 200)
    _, d1, d2 = center_and_directions(model)
    masks = evaluator(model, x, y, d1=d1, d2=d2).dropout_masks(mask_seed(0, 0))
    # Dropout2d after pooling: whole channels, one value per (sample, channel); Dropout before the last layer.
    assert masks["features.5"].shape == (200, 4, 1, 1)
    assert masks["classifier.2"].shape == (200, 8)
    for m in masks.values():
        assert set(torch.unique(m).tolist()) == {0.0, 1 / 0.6}
        assert abs(float((m == 0).double().mean()) - 0.4) < 0.06


def test_same_step_same_masks_across_evaluators_chunks_threads_and_reruns():
    model = dropout_mlp()
    x, y = _data((6,), 9)
    center, d1, d2 = center_and_directions(model, seed=5)
    one = evaluator(model, x, y, "mlp", d1=d1, d2=d2, threads=1)
    two = evaluator(model, x, y, "mlp", d1=d1, d2=d2, threads=2)
    vm = evaluator(model, x, y, "vmap", d1=d1, d2=d2)
    m1, m2, m3 = (e.dropout_masks(mask_seed(0, 30)) for e in (one, two, vm))
    for k in m1:
        assert torch.equal(m1[k], m2[k]) and torch.equal(m1[k], m3[k])
    one.chunk, two.chunk, vm.chunk = 100, 1, 4
    g1 = one.grid(center, ALPHAS, BETAS, masks=m1)
    np.testing.assert_allclose(two.grid(center, ALPHAS, BETAS, masks=m2), g1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(vm.grid(center, ALPHAS, BETAS, masks=m3), g1, rtol=1e-10, atol=0)
    np.testing.assert_array_equal(one.grid(center, ALPHAS, BETAS, masks=m1), g1)  # a rerun


def test_different_steps_and_seeds_give_different_masks():
    model = dropout_mlp()
    x, y = _data((6,), 20)
    _, d1, d2 = center_and_directions(model)
    ev = evaluator(model, x, y, d1=d1, d2=d2)
    draws = [ev.dropout_masks(mask_seed(seed, step)) for seed, step in [(0, 0), (0, 10), (1, 0), (0, "plane")]]
    for i in range(len(draws)):
        for j in range(i + 1, len(draws)):
            assert not torch.equal(draws[i]["3"], draws[j]["3"]), (i, j)


def test_masks_follow_the_evaluation_data():
    model = dropout_mlp()
    x, y = _data((6,), 9)
    center, d1, d2 = center_and_directions(model, seed=6)
    ev = evaluator(model, x, y, d1=d1, d2=d2)
    assert ev.dropout_masks(mask_seed(0, 0))["0"].shape == (9, 6)
    x2, y2 = _data((6,), 4, seed=2)
    ev.set_data(x2, y2)  # e.g. each step's mini-batch
    masks = ev.dropout_masks(mask_seed(0, 0))
    assert masks["0"].shape == (4, 6)
    np.testing.assert_allclose(ev.grid(center, ALPHAS, BETAS, masks=masks),
                               brute_force(model, center, d1, d2, masks, x2, y2), rtol=1e-5, atol=0)


# ------------------------------------------------------------------------------------ off, p = 0, none, bad


@pytest.mark.parametrize("strategy", ["mlp", "vmap"])
def test_off_equals_todays_eval_values(strategy):
    model = dropout_mlp()
    x, y = _data((6,), 7)
    center, d1, d2 = center_and_directions(model, seed=7)
    off = evaluator(model, x, y, strategy, dropout="off", d1=d1, d2=d2)
    default = LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn("cross_entropy", N_CLASSES), d1, d2, CPU, F64,
                                 strategy=strategy)
    assert off.dropout_masks(mask_seed(0, 0)) == {} and not off.has_dropout
    got = off.grid(center, ALPHAS, BETAS)
    np.testing.assert_array_equal(got, default.grid(center, ALPHAS, BETAS))
    ones = {n: 1.0 for n, m in model.named_modules() if isinstance(m, DROPS)}
    np.testing.assert_allclose(got, brute_force(model, center, d1, d2, ones, x, y), rtol=1e-10)
    with pytest.raises(ValueError, match="dropout masks given"):
        off.grid(center, ALPHAS, BETAS, masks=evaluator(model, x, y, d1=d1, d2=d2).dropout_masks([0]))


def test_p_zero_is_a_no_op():
    model = dropout_mlp(p=0.0)
    x, y = _data((6,), 7)
    center, d1, d2 = center_and_directions(model, seed=8)
    ev = evaluator(model, x, y, d1=d1, d2=d2)
    masks = ev.dropout_masks(mask_seed(0, 5))
    assert all(bool((m == 1).all()) for m in masks.values())
    np.testing.assert_array_equal(ev.grid(center, ALPHAS, BETAS, masks=masks),
                                  evaluator(model, x, y, dropout="off", d1=d1, d2=d2).grid(center, ALPHAS, BETAS))


def test_a_model_without_dropout_is_unchanged_by_fixed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, N_CLASSES)).to(F64)
    x, y = _data((6,), 7)
    center, d1, d2 = center_and_directions(model, seed=9)
    ev = evaluator(model, x, y, d1=d1, d2=d2)
    assert not ev.has_dropout and ev.dropout_masks(mask_seed(0, 0)) == {}
    np.testing.assert_array_equal(ev.grid(center, ALPHAS, BETAS, masks={}),
                                  evaluator(model, x, y, dropout="off", d1=d1, d2=d2).grid(center, ALPHAS, BETAS))


def test_fixed_needs_masks_and_alpha_dropout_is_refused():
    model = dropout_mlp()
    x, y = _data((6,), 5)
    center, d1, d2 = center_and_directions(model)
    ev = evaluator(model, x, y, d1=d1, d2=d2)
    with pytest.raises(ValueError, match="needs a mask for every dropout layer"):
        ev.grid(center, ALPHAS, BETAS)
    with pytest.raises(UnsupportedDropout, match="AlphaDropout"):
        swap_dropout(nn.Sequential(nn.Linear(2, 2), nn.AlphaDropout(0.1)))
    with pytest.raises(ValueError, match="unknown dropout 'on'"):
        evaluator(model, x, y, dropout="on", d1=d1, d2=d2)


# ------------------------------------------------------------------------------------------------ pipeline


def _cnn_scene(tmp_path, name="cnn.toml", **capture):
    return make_scene(tmp_path / name, data={"eval_size": 24, "train_size": 96},
                      model={"kind": "cnn", "width": 2, "batch_norm": True, "dropout": 0.3},
                      training={"steps": 4, "batch_size": 16, "lr": 0.05},
                      grid={"resolution": 3}, capture={"every": 2, "device": "cpu", "dtype": "float64", **capture})


def test_capture_key_depends_on_dropout_only_when_fixed():
    from llstudio.pipeline import capture_key

    keys = {(d, s): capture_key(make_scene(model={"kind": "cnn"}, capture={"dropout": d, "dropout_seed": s}), "cpu")
            for d, s in [("off", 0), ("off", 1), ("fixed", 0), ("fixed", 1)]}
    assert keys[("off", 0)] == keys[("off", 1)]  # the seed matters only with masks
    assert len({keys[("off", 0)], keys[("fixed", 0)], keys[("fixed", 1)]}) == 3
    # 'off' keeps the keys scenes had before capture.dropout existed: nothing about dropout is hashed.
    assert capture_key(make_scene(model={"kind": "cnn"}), "cpu") == keys[("off", 0)]


def test_pipeline_fixed_masks_per_step_equal_brute_force(tmp_path):
    from llstudio.pipeline import capture_scene

    scene = _cnn_scene(tmp_path, mode="train", dropout="fixed", dropout_seed=2)
    cap = capture_scene(scene)
    manifest = json.loads((cap.path / "manifest.json").read_text())
    assert manifest["dropout"] == "fixed" and manifest["dropout_seed"] == 2 and manifest["capture_mode"] == "train"
    off = capture_scene(_cnn_scene(tmp_path, "off.toml", mode="train"))
    assert json.loads((off.path / "manifest.json").read_text())["dropout"] == "off"
    assert off.key != cap.key and not np.allclose(off.loss, cap.loss)
    x, y = torch.as_tensor(cap.eval_data[0]).to(F64), torch.as_tensor(cap.eval_data[1])
    d1, d2 = cap.directions
    for k, step in enumerate(cap.steps):
        model = cap.model(k).to(F64)
        ev = LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn("cross_entropy", 10), d1, d2, CPU, F64,
                                mode="train", dropout="fixed")
        masks = ev.dropout_masks(mask_seed(2, int(step)))
        want = brute_force(model, cap.centers[k], d1, d2, masks, x, y, "train", alphas=cap.alphas, betas=cap.betas)
        np.testing.assert_allclose(cap.loss[k], want, rtol=1e-5)
        assert cap.center_loss[k] == pytest.approx(float(cap.loss[k, 1, 1]), rel=1e-9)  # the follow frame's centre
    # Reproducible: a capture from scratch gives the same numbers.
    again = capture_scene(scene, use_cache=False)
    np.testing.assert_array_equal(again.loss, cap.loss)


def test_fixed_frame_plane_has_one_set_of_masks(tmp_path):
    from llstudio.pipeline import capture_scene

    scene = _cnn_scene(tmp_path, dropout="fixed", data="eval")
    scene = scene.model_copy(update={"directions": scene.directions.model_copy(update={"frame": "fixed"})})
    cap = capture_scene(scene)
    assert all(np.array_equal(cap.loss[0], g) for g in cap.loss[1:])
    # The plane (centred at the final weights, eval mode with their running statistics) has the masks of 'plane',
    # and so has the loss at every step's own weights: one thinned network for the whole film.
    x, y = torch.as_tensor(cap.eval_data[0]).to(F64), torch.as_tensor(cap.eval_data[1])
    d1, d2 = cap.directions
    model = cap.model(-1).to(F64)
    ev = LandscapeEvaluator(copy.deepcopy(model), x, y, loss_fn("cross_entropy", 10), d1, d2, CPU, F64,
                            dropout="fixed")
    masks = ev.dropout_masks(mask_seed(0, "plane"))
    want = brute_force(model, cap.centers[-1], d1, d2, masks, x, y, "eval", cap.center_buffers[-1],
                       alphas=cap.alphas, betas=cap.betas)
    np.testing.assert_allclose(cap.loss[0], want, rtol=1e-5)
    for k in range(len(cap.steps)):
        zero = np.zeros(1)
        one = brute_force(model, cap.centers[k], d1, d2, masks, x, y, "eval", cap.center_buffers[k],
                          alphas=zero, betas=zero)[0, 0]
        assert cap.center_loss[k] == pytest.approx(one, rel=1e-5)


def test_fixed_without_dropout_layers_warns_and_equals_off(tmp_path):
    from llstudio.pipeline import capture_scene
    from llstudio.progress import Progress

    log = io.StringIO()
    fixed = capture_scene(make_scene(tmp_path / "a.toml", capture={"dropout": "fixed", "device": "cpu"}),
                          progress=Progress("auto", stream=log))
    assert "has no dropout layer" in log.getvalue()
    off = capture_scene(make_scene(tmp_path / "b.toml"))
    np.testing.assert_array_equal(fixed.loss, off.loss)


def test_fixed_dropout_with_curvature_is_refused_naming_both_keys():
    with pytest.raises(SceneError, match=r"capture\.dropout: .*\[capture\.curvature\]"):
        make_scene(capture={"dropout": "fixed", "curvature": {"resolution": 3}})
    make_scene(capture={"dropout": "fixed", "curvature": {"enabled": False}})  # switched off: fine


def test_alpha_dropout_in_a_custom_model_is_a_scene_error(tmp_path, monkeypatch):
    from llstudio.pipeline import capture_scene

    pkg = tmp_path / "alphanets.py"
    pkg.write_text("import math\nfrom torch import nn\n\ndef make(shape, n):\n"
                   "    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), 4), nn.SELU(),\n"
                   "                         nn.AlphaDropout(0.1), nn.Linear(4, n))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    scene = make_scene(tmp_path / "c.toml", model={"kind": "custom", "factory": "alphanets:make"},
                       capture={"dropout": "fixed", "device": "cpu"})
    with pytest.raises(SceneError, match=r"capture\.dropout: .*AlphaDropout"):
        capture_scene(scene)
