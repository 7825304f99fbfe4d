"""capture_scene end to end (no rendering): cache keys, cache hits, resume, and values against brute force."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_scene
from llstudio.pipeline import OutputSettings, axes, capture_key, capture_scene, estimate, output_settings, parse_frames
from llstudio.errors import UsageError
from llstudio.store.store import CaptureStore

CPU = torch.device("cpu")


def forbid_work(monkeypatch):
    """Make training and grid capture fail loudly if anything tries to run them."""
    import llstudio.landscape.evaluator
    import llstudio.pipeline.runs

    def no_train(*a, **k):
        raise AssertionError("training ran although the cache holds it")

    def no_grid(*a, **k):
        raise AssertionError("capture ran although the cache holds it")

    monkeypatch.setattr(llstudio.pipeline.runs, "train", no_train)
    monkeypatch.setattr(llstudio.landscape.evaluator.LandscapeEvaluator, "grid", no_grid)


def snapshot(path):
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(path.iterdir())}


def brute_force_capture(cap, k):
    """Loss at every grid point of captured step ``k``, from the stored centre, one forward pass per point."""
    x, y = cap.eval_data
    dtype = getattr(torch, cap.scene.capture.dtype)
    x, y = torch.as_tensor(x, dtype=dtype), torch.as_tensor(y)
    d1, d2 = cap.directions
    model = cap.model(k)
    center = {n: p.detach().clone() for n, p in model.named_parameters()}
    n_classes = int(cap.data.n_classes)
    out = np.empty((len(cap.alphas), len(cap.betas)))
    with torch.no_grad():
        for i, a in enumerate(cap.alphas):
            for j, b in enumerate(cap.betas):
                for n, p in model.named_parameters():
                    p.copy_(center[n] + float(a) * d1[n].to(dtype) + float(b) * d2[n].to(dtype))
                logits = model(x)
                if cap.scene.training.loss == "cross_entropy":
                    out[i, j] = float(nn.functional.cross_entropy(logits, y))
                else:
                    t = nn.functional.one_hot(y, n_classes).to(dtype)
                    out[i, j] = float(((logits - t) ** 2).mean())
    return out


# ------------------------------------------------------------------------------------------------ shapes


def test_capture_shapes(tiny_capture):
    cap = tiny_capture
    assert list(cap.steps) == [0, 4, 8, 12]
    assert cap.loss.shape == (4, 5, 5)
    assert cap.center_loss.shape == (4,)
    assert cap.train_loss.shape == (12,)
    np.testing.assert_allclose(cap.alphas, np.linspace(-1, 1, 5))
    assert len(cap.centers) == 4
    assert np.all(np.isfinite(cap.loss)) and np.all(cap.loss > 0)
    # the grid's centre point is the centre loss
    np.testing.assert_allclose(cap.loss[:, 2, 2], cap.center_loss, rtol=1e-5)


def test_training_reduces_the_loss(tiny_capture):
    cap = tiny_capture
    assert cap.center_loss[-1] < cap.center_loss[0]
    assert np.all(np.isfinite(cap.train_loss))


def test_directions_are_filter_normalised_against_final_weights(tiny_capture):
    d1, d2 = tiny_capture.directions
    final = tiny_capture.centers[-1]
    for name, w in final.items():
        if w.dim() >= 2:
            torch.testing.assert_close(d1[name].double().norm(dim=1), w.double().norm(dim=1), rtol=1e-5, atol=0)
        else:
            assert torch.count_nonzero(d1[name]) == 0 and torch.count_nonzero(d2[name]) == 0


def test_capture_model_has_the_stored_centre_weights(tiny_capture):
    for k in (0, -1):
        m = tiny_capture.model(k)
        for n, p in m.named_parameters():
            assert torch.equal(p.detach(), tiny_capture.centers[k][n])
    assert not torch.equal(tiny_capture.centers[0]["0.weight"], tiny_capture.centers[-1]["0.weight"])


@pytest.mark.parametrize("k", [0, 2, 3])
def test_captured_values_equal_brute_force_float32(tiny_capture, k):
    np.testing.assert_allclose(tiny_capture.loss[k], brute_force_capture(tiny_capture, k), rtol=1e-4)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_captured_values_equal_brute_force_float64(tmp_path, loss):
    scene = make_scene(tmp_path / "t64.toml", capture={"dtype": "float64"}, training={"loss": loss},
                       grid={"resolution": [5, 4], "range": [-0.5, 1.0], "y_range": [-2.0, 0.25]},
                       directions={"include_biases": True})
    cap = capture_scene(scene, device=CPU)
    assert cap.loss.shape == (4, 5, 4)
    np.testing.assert_allclose(cap.betas, np.linspace(-2.0, 0.25, 4))
    for k in range(len(cap.steps)):
        np.testing.assert_allclose(cap.loss[k], brute_force_capture(cap, k), rtol=1e-6, atol=0)


def test_logistic_scene(tmp_path):
    scene = make_scene(tmp_path / "lg.toml", model={"kind": "logistic"}, capture={"dtype": "float64"})
    cap = capture_scene(scene, device=CPU)
    assert cap.loss.shape == (4, 5, 5)
    np.testing.assert_allclose(cap.loss[-1], brute_force_capture(cap, -1), rtol=1e-6)


# ------------------------------------------------------------------------------------------------ cache


def test_second_capture_is_a_cache_hit(tiny_scene, isolated_cache, monkeypatch):
    first = capture_scene(tiny_scene, device=CPU)
    assert first.path.parent == isolated_cache / "captures"
    before = snapshot(first.path)
    assert {"manifest.json", "trajectory.npz", "directions.npz", "step_0000000.npz",
            "step_0000012.npz"} <= set(before)

    forbid_work(monkeypatch)
    second = capture_scene(tiny_scene, device=CPU)
    assert snapshot(second.path) == before
    assert second.key == first.key
    np.testing.assert_array_equal(second.loss, first.loss)
    np.testing.assert_array_equal(second.center_loss, first.center_loss)
    np.testing.assert_array_equal(second.train_loss, first.train_loss)
    for a, b in zip(first.directions, second.directions):
        assert all(torch.equal(a[n], b[n]) for n in a)
    for ca, cb in zip(first.centers, second.centers):
        assert all(torch.equal(ca[n], cb[n]) for n in ca)


def test_cache_uses_the_store_under_llstudio_cache(tiny_scene, isolated_cache):
    cap = capture_scene(tiny_scene, device="cpu")
    assert (isolated_cache / "captures" / cap.key / "manifest.json").exists()
    manifest = CaptureStore().open(cap.key).read_manifest()
    assert manifest["key"] == cap.key and manifest["steps"] == [0, 4, 8, 12]


def test_camera_look_timeline_output_changes_keep_the_key(tmp_path, monkeypatch):
    base = make_scene(tmp_path / "a.toml")
    first = capture_scene(base, device=CPU)
    variants = [
        dict(camera={"keyframes": [{"at": 0.0, "azimuth": 10.0}, {"at": 1.0, "azimuth": 90.0}]}),
        dict(look={"colormap": "magma", "background": "white", "contours": 0}),
        dict(timeline={"seconds_per_step": 1.0}),
        dict(scaling={"log": False}),
        dict(output={"quality": "h", "crf": 30}),
        dict(title="another title"),
        dict(capture={"memory_mb": 64}),
    ]
    forbid_work(monkeypatch)
    for v in variants:
        scene = make_scene(tmp_path / "b.toml", **v)
        assert capture_key(scene, "cpu") == first.key, v
        hit = capture_scene(scene, device=CPU)  # would raise if it trained or captured
        np.testing.assert_array_equal(hit.loss, first.loss)


# Changes to what a training run computes (they change the capture key and the training key).
RUN_CHANGES = [
    dict(training={"seed": 1}),
    dict(training={"lr": 0.2}),
    dict(model={"hidden": [9]}),
    dict(data={"eval_size": 65}),
    dict(capture={"every": 3}),
    dict(capture={"dtype": "float64"}),
]


@pytest.mark.parametrize("change", RUN_CHANGES + [
    dict(grid={"resolution": 7}),
    dict(grid={"range": [-2.0, 2.0]}),
    dict(directions={"seed": 4}),
])
def test_changes_to_the_numbers_change_the_key(tmp_path, change):
    base = capture_key(make_scene(tmp_path / "a.toml"), "cpu")
    assert capture_key(make_scene(tmp_path / "a.toml", **change), "cpu") != base


def test_key_depends_on_device_type_not_on_file_name(tmp_path):
    a = capture_key(make_scene(tmp_path / "a.toml"), "cpu")
    assert capture_key(make_scene(tmp_path / "elsewhere" / "b.toml"), "cpu") == a
    assert capture_key(make_scene(tmp_path / "a.toml"), "cuda") != a


@pytest.mark.parametrize("change", [
    dict(grid={"resolution": 7}),
    dict(grid={"range": [-2.0, 2.0]}),
    dict(directions={"seed": 4}),
    dict(directions={"kind": "pca"}),
    dict(capture={"data": "batch"}),
])
def test_captures_of_the_same_run_share_its_training(tmp_path, isolated_cache, monkeypatch, change):
    """Only the way of looking at the run changes: the new capture reuses the trained trajectory (training
    would raise), holds its own copy of it, and its values are still those of a plain forward pass."""
    import llstudio.pipeline.runs

    first = capture_scene(make_scene(tmp_path / "a.toml"), device=CPU)
    trainings = list((isolated_cache / "trainings").iterdir())
    assert len(trainings) == 1 and (trainings[0] / "trajectory.npz").exists()

    def no_train(*a, **k):
        raise AssertionError("the same run was trained again")

    monkeypatch.setattr(llstudio.pipeline.runs, "train", no_train)
    scene = make_scene(tmp_path / "b.toml", **change)
    assert capture_key(scene, "cpu") != first.key
    second = capture_scene(scene, device=CPU)
    assert (second.path / "trajectory.npz").exists()
    np.testing.assert_array_equal(second.train_loss, first.train_loss)
    for ca, cb in zip(first.centers, second.centers):
        assert all(torch.equal(ca[n], cb[n]) for n in ca)
    if change != dict(capture={"data": "batch"}):
        np.testing.assert_allclose(second.loss[-1], brute_force_capture(second, -1), rtol=1e-6)


@pytest.mark.parametrize("change", RUN_CHANGES)
def test_training_key_follows_what_determines_the_run(tmp_path, change):
    from llstudio.pipeline import training_key

    base = make_scene(tmp_path / "a.toml")
    key = training_key(base, "cpu")
    assert training_key(make_scene(tmp_path / "a.toml", **change), "cpu") != key
    assert training_key(base, "cuda") != key
    for same in (dict(grid={"resolution": 7}), dict(directions={"seed": 4}), dict(capture={"mode": "train"}),
                 dict(look={"colormap": "magma"}), dict(data={"root": str(tmp_path)})):
        assert training_key(make_scene(tmp_path / "b.toml", **same), "cpu") == key, same


def test_a_cache_hit_from_before_shared_trainings_creates_nothing(tiny_scene, isolated_cache, monkeypatch):
    """A capture whose directory holds its trajectory (as every capture made before trainings/ existed) is
    loaded without opening the shared training store."""
    import shutil

    capture_scene(tiny_scene, device=CPU)
    shutil.rmtree(isolated_cache / "trainings")
    forbid_work(monkeypatch)
    capture_scene(tiny_scene, device=CPU)
    assert not (isolated_cache / "trainings").exists()


def test_editing_a_custom_factory_changes_both_keys(tmp_path, monkeypatch):
    from llstudio.pipeline import training_key

    module = tmp_path / "llstudio_key_factory.py"
    module.write_text("import torch\ndef make(shape, n):\n    return torch.nn.Sequential(torch.nn.Flatten(), "
                      "torch.nn.Linear(4, n))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    scene = make_scene(tmp_path / "a.toml", model={"kind": "custom", "factory": "llstudio_key_factory:make"})
    keys = capture_key(scene, "cpu"), training_key(scene, "cpu")
    assert keys == (capture_key(scene, "cpu"), training_key(scene, "cpu"))
    module.write_text(module.read_text().replace("Linear(4, n)", "Linear(4, n, bias=False)"))
    changed = capture_key(scene, "cpu"), training_key(scene, "cpu")
    assert changed[0] != keys[0] and changed[1] != keys[1]


def test_no_cache_retrains_and_cache_clear_removes_shared_training(tiny_scene, isolated_cache, monkeypatch):
    import llstudio.pipeline.runs

    capture_scene(tiny_scene, device=CPU)
    calls = []
    real = llstudio.pipeline.runs.train
    monkeypatch.setattr(llstudio.pipeline.runs, "train", lambda *a, **k: calls.append(1) or real(*a, **k))
    capture_scene(tiny_scene, device=CPU, use_cache=False)
    assert calls == [1]
    store = CaptureStore()
    assert store.training_usage()[0] == 1
    assert store.clear() == 1  # one capture; its shared training goes too
    assert store.training_usage() == (0, 0)
    capture_scene(tiny_scene, device=CPU)
    assert calls == [1, 1]


def test_deleted_step_is_recomputed_and_equal(tiny_scene, monkeypatch):
    import llstudio.pipeline.runs

    first = capture_scene(tiny_scene, device=CPU)
    step_file = first.path / "step_0000008.npz"
    other = first.path / "step_0000004.npz"
    other_mtime = other.stat().st_mtime_ns
    step_file.unlink()

    def no_train(*a, **k):
        raise AssertionError("training ran although the trajectory is cached")

    monkeypatch.setattr(llstudio.pipeline.runs, "train", no_train)
    second = capture_scene(tiny_scene, device=CPU)
    assert step_file.exists()
    assert other.stat().st_mtime_ns == other_mtime  # only the missing step was captured
    np.testing.assert_array_equal(second.loss, first.loss)
    np.testing.assert_array_equal(second.center_loss, first.center_loss)


def test_no_cache_recomputes_the_same_numbers(tiny_scene):
    first = capture_scene(tiny_scene, device=CPU)
    step = first.path / "step_0000000.npz"
    before = step.stat().st_mtime_ns
    again = capture_scene(tiny_scene, device=CPU, use_cache=False)
    assert step.stat().st_mtime_ns != before  # rewritten
    np.testing.assert_allclose(again.loss, first.loss, rtol=1e-6)
    np.testing.assert_array_equal(again.train_loss, first.train_loss)  # training is deterministic


@pytest.mark.parametrize("name", ["capture", "render"])
def test_notebook_functions_survive_a_capture(tiny_scene, name):
    # The package docstring's notebook use: cap = llstudio.capture(scene); llstudio.render(scene).
    # Running any capture imports llstudio/capture.py (and rendering llstudio/render.py), and Python then binds
    # the package attributes of the same names to those submodules.
    import llstudio.renderer.plotter  # noqa: F401  (what render_film does on its first frame)

    capture_scene(tiny_scene, device="cpu")
    assert isinstance(getattr(llstudio, name), types.FunctionType), getattr(llstudio, name)


# ------------------------------------------------------------------------------------------------ divergence


def test_diverging_run_is_captured_with_nan_and_shown_with_a_warning(tmp_path):
    from llstudio.pipeline import make_film

    scene = make_scene(tmp_path / "div.toml", training={"lr": 1e3, "loss": "mse"},
                       directions={"normalize_to": "initial"})
    cap = capture_scene(scene, device=CPU)
    assert not np.all(np.isfinite(cap.train_loss))
    assert np.all(np.isfinite(cap.loss[0])) and np.isfinite(cap.center_loss[0])
    assert not np.all(np.isfinite(cap.loss[-1]))  # stored as NaN, not dropped
    with pytest.warns(RuntimeWarning, match="NaN or infinite"):
        film = make_film(cap, OutputSettings(64, 48, 10))
    for f in range(film.n_frames):
        assert np.all(np.isfinite(film.timeline.frame(f).values))


def test_diverging_run_still_shows_the_steps_before_divergence(tmp_path):
    scene = make_scene(tmp_path / "div.toml", training={"lr": 1e3, "loss": "mse"})
    cap = capture_scene(scene, device=CPU)
    assert all(torch.isfinite(w).all() for w in cap.centers[0].values())  # step 0 weights are fine
    assert np.isfinite(cap.center_loss[0])
    assert np.all(np.isfinite(cap.loss[0]))


# ------------------------------------------------------------------------------------------------ film maths


def test_axes_and_estimate(tmp_path):
    scene = make_scene(tmp_path / "a.toml", grid={"resolution": [5, 3], "y_range": [0.0, 2.0]})
    a, b = axes(scene)
    np.testing.assert_allclose(a, [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(b, [0, 1, 2])
    est = estimate(scene, "l")
    assert est["captured_steps"] == 4 and est["grid"] == "5x3" and est["grid_evaluations"] == 60
    # 0.1 + 3 * 0.2 + 0.1 = 0.8 s at 15 fps
    assert est["frames"] == 12 and est["duration_s"] == 0.8 and est["resolution"] == "854x480"


def test_output_settings_quality_wins(tmp_path):
    scene = make_scene(tmp_path / "a.toml", output={"quality": "m", "fps": 24})
    assert output_settings(scene) == OutputSettings(1280, 720, 24)
    assert output_settings(scene, "l") == OutputSettings(854, 480, 15)
    with pytest.raises(UsageError):
        output_settings(scene, "x")


@pytest.mark.parametrize("spec,want", [(None, range(12)), ("0:5", range(5)), ("3:", range(3, 12)),
                                       (":4", range(4)), ("-2:", range(10, 12))])
def test_parse_frames(spec, want):
    assert parse_frames(spec, 12) == want


@pytest.mark.parametrize("spec", ["5", "a:b", "20:30", "5:5"])
def test_parse_frames_rejects(spec):
    with pytest.raises(UsageError):
        parse_frames(spec, 12)


# ------------------------------------------------------------------------------------------------ misc


def test_normalize_to_initial_uses_step_zero_when_it_is_captured(tmp_path):
    from llstudio.train.training import initial_model

    scene = make_scene(tmp_path / "i.toml", directions={"normalize_to": "initial"})
    cap = capture_scene(scene, device=CPU)
    w0 = dict(initial_model(scene, cap.data, torch.float32).named_parameters())
    d1, _ = cap.directions
    torch.testing.assert_close(d1["0.weight"].norm(dim=1), w0["0.weight"].detach().norm(dim=1), rtol=1e-5, atol=0)


def test_normalize_to_initial_uses_the_initial_weights_even_if_step_zero_is_not_captured(tmp_path):
    from llstudio.train.training import initial_model

    scene = make_scene(tmp_path / "i.toml", capture={"steps": [4, 12]}, directions={"normalize_to": "initial"})
    cap = capture_scene(scene, device=CPU)
    assert list(cap.steps) == [4, 12]
    w0 = dict(initial_model(scene, cap.data, torch.float32).named_parameters())
    d1, _ = cap.directions
    torch.testing.assert_close(d1["0.weight"].norm(dim=1), w0["0.weight"].detach().norm(dim=1), rtol=1e-5, atol=0)


def test_explicit_capture_steps(tmp_path):
    scene = make_scene(tmp_path / "s.toml", capture={"steps": [0, 5, 12]})
    cap = capture_scene(scene, device=CPU)
    assert list(cap.steps) == [0, 5, 12] and cap.loss.shape == (3, 5, 5)
    assert sorted(p.name for p in cap.path.glob("step_*.npz")) == [
        "step_0000000.npz", "step_0000005.npz", "step_0000012.npz"]


def test_cuda_without_a_gpu_is_a_usage_error():
    from llstudio.device import resolve_device

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(UsageError, match="--device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") == CPU and resolve_device("cpu") == CPU


def test_render_requests_out_of_range_fail_before_any_file(tiny_capture, tmp_path):
    from llstudio.pipeline import render_film, render_still

    with pytest.raises(UsageError, match="12 frames"):
        render_still(tiny_capture, 12, output=tmp_path / "s.png", quality="l")
    with pytest.raises(UsageError, match="selects no frame"):
        render_film(tiny_capture, output=tmp_path / "f.mp4", quality="l", frames="20:30")
    assert list(tmp_path.iterdir()) == []


def test_a_degenerate_free_rectangle_falls_back_to_the_framings_default():
    from llstudio.pipeline.render import room_of
    from llstudio.renderer.layout import Box, PanelLayout

    def layout(free, boxes=None):
        return PanelLayout(100, 50, boxes or {}, free, 2, 10, 8)

    assert room_of(layout(Box(10, 5, 10, 45))) is None
    room = room_of(layout(Box(10, 5, 90, 45), {"title": Box(2, 2, 40, 8)}))
    rect = room.free
    assert (rect.left, rect.bottom, rect.right, rect.top) == pytest.approx((0.1, 0.1, 0.9, 0.9))
    # the panel less its margin, y up; the title grown by the margin
    b = room.bounds
    assert (b.left, b.bottom, b.right, b.top) == pytest.approx((0.02, 0.04, 0.98, 0.96))
    (t,) = room.obstacles
    assert (t.left, t.bottom, t.right, t.top) == pytest.approx((0.0, 1 - 10 / 50, 0.42, 1.0))
