"""Per-sample landscapes (capture.data = 'samples'): one landscape per chosen evaluation sample, and their mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_scene
from llstudio.errors import SceneError
from llstudio.output.export import export_npz
from llstudio.pipeline import capture_key, capture_scene
from llstudio.store.store import CaptureStore

CPU = torch.device("cpu")


def sample_scene(tmp_path, samples=3, **overrides):
    capture = {"data": "samples", "samples": samples, "every": 6}
    capture.update(overrides.pop("capture", {}))
    return make_scene(tmp_path / "samples.toml", capture=capture, grid={"resolution": [4, 3], "range": [-1.0, 1.0]},
                      **overrides)


def brute_force_sample(cap, k, i):
    """(nx, ny): the loss of evaluation sample ``i`` alone around captured step ``k``, float64, one pass a point."""
    x, y = cap.eval_data
    x, y = torch.as_tensor(x[i:i + 1], dtype=torch.float64), torch.as_tensor(y[i:i + 1])
    d1, d2 = cap.directions
    model = cap.model(k).double()
    center = {n: p.detach().clone() for n, p in model.named_parameters()}
    out = np.empty((len(cap.alphas), len(cap.betas)))
    with torch.no_grad():
        for a_i, a in enumerate(cap.alphas):
            for b_i, b in enumerate(cap.betas):
                for n, p in model.named_parameters():
                    p.copy_(center[n] + float(a) * d1[n].double() + float(b) * d2[n].double())
                out[a_i, b_i] = float(nn.functional.cross_entropy(model(x), y))
    return out


def test_per_sample_capture_against_float64_brute_force(tmp_path):
    scene = sample_scene(tmp_path, samples=[5, 0, 17], capture={"dtype": "float64"})
    cap = capture_scene(scene, device=CPU, store=CaptureStore(tmp_path / "cache"))
    assert list(cap.sample_indices) == [5, 0, 17]
    assert cap.sample_loss.shape == (len(cap.steps), 3, 4, 3)
    assert cap.sample_center_loss.shape == (len(cap.steps), 3)
    for k in (0, len(cap.steps) - 1):
        for s, i in enumerate(cap.sample_indices):
            np.testing.assert_allclose(cap.sample_loss[k, s], brute_force_sample(cap, k, int(i)), rtol=1e-5)
    # The main landscape is the samples' mean, which is the loss on those samples together.
    np.testing.assert_allclose(cap.loss, cap.sample_loss.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(cap.center_loss, cap.sample_center_loss.mean(axis=1), rtol=1e-12)
    assert np.all(np.isfinite(cap.loss))


def test_mean_equals_the_eval_subset_loss_on_those_samples(tmp_path):
    """A count n takes the subset's first n samples: the same numbers as an 'eval' capture on a subset of n."""
    store = CaptureStore(tmp_path / "cache")
    per = capture_scene(sample_scene(tmp_path, samples=4), device=CPU, store=store)
    assert list(per.sample_indices) == [0, 1, 2, 3]
    x, y = per.eval_data
    from llstudio.landscape.evaluator import LandscapeEvaluator
    from llstudio.train.models import loss_fn

    d1, d2 = per.directions
    ev = LandscapeEvaluator(per.model(-1), torch.as_tensor(x[:4]), torch.as_tensor(y[:4]),
                            loss_fn("cross_entropy", 10), d1, d2, CPU, torch.float32)
    want = ev.grid({n: p.detach() for n, p in per.model(-1).named_parameters()}, per.alphas, per.betas)
    np.testing.assert_allclose(per.loss[-1], want, rtol=1e-5)


def test_fixed_frame_shares_one_plane_of_samples(tmp_path):
    scene = sample_scene(tmp_path, samples=2, directions={"frame": "fixed", "center": "final", "seed": 3})
    cap = capture_scene(scene, device=CPU, store=CaptureStore(tmp_path / "cache"))
    assert cap.sample_loss.shape[:2] == (len(cap.steps), 2)
    for k in range(1, len(cap.steps)):
        np.testing.assert_array_equal(cap.sample_loss[k], cap.sample_loss[0])
    # the centre losses follow the steps, off the plane
    assert len(set(np.round(cap.center_loss, 9))) > 1


def test_per_sample_capture_resumes_from_the_store(tmp_path, monkeypatch):
    store = CaptureStore(tmp_path / "cache")
    scene = sample_scene(tmp_path)
    first = capture_scene(scene, device=CPU, store=store)
    # Drop one step: only it is recaptured, and the result is identical.
    first_step = store.open(first.key).step_path(int(first.steps[1]))
    first_step.unlink()
    again = capture_scene(scene, device=CPU, store=store)
    np.testing.assert_array_equal(again.sample_loss, first.sample_loss)
    np.testing.assert_array_equal(again.loss, first.loss)
    import llstudio.landscape.evaluator

    def no_grid(*a, **k):
        raise AssertionError("capture ran although the cache holds it")

    monkeypatch.setattr(llstudio.landscape.evaluator.LandscapeEvaluator, "grid", no_grid)
    cached = capture_scene(scene, device=CPU, store=store)
    np.testing.assert_array_equal(cached.sample_loss, first.sample_loss)


def test_capture_key_depends_on_the_samples_only_in_samples_mode(tmp_path):
    k = lambda **o: capture_key(make_scene(tmp_path / "s.toml", **o), "cpu")  # noqa: E731
    assert k(capture={"data": "samples", "samples": 3}) != k(capture={"data": "samples", "samples": [0, 1, 3]})
    # A count and the list it stands for are the same samples: the same capture.
    assert k(capture={"data": "samples", "samples": 3}) == k(capture={"data": "samples", "samples": [0, 1, 2]})
    assert k(capture={"data": "eval", "samples": 3}) == k(capture={"data": "eval", "samples": 5})
    assert k(capture={"data": "eval"}) != k(capture={"data": "samples"})


def test_export_npz_holds_the_per_sample_arrays(tmp_path):
    cap = capture_scene(sample_scene(tmp_path, samples=2), device=CPU, store=CaptureStore(tmp_path / "cache"))
    (path,) = export_npz(cap, tmp_path / "out")
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["sample_loss"], cap.sample_loss)
        np.testing.assert_array_equal(z["sample_indices"], [0, 1])
        assert z["sample_center_loss"].shape == (len(cap.steps), 2)


@pytest.mark.parametrize("samples, message", [
    (100, "capture.samples: 100 samples asked for, but the evaluation subset has data.eval_size = 64"),
    ([3, 64], "capture.samples: position 64 asked for"),
    ([], "capture.samples"),
    ([1, 1], "distinct positions"),
    (0, "capture.samples"),
])
def test_bad_samples_are_scene_errors_with_the_key_path(tmp_path, samples, message):
    with pytest.raises(SceneError, match=message.replace("(", r"\(").replace(".", r"\.")) as exc:
        make_scene(tmp_path / "s.toml", capture={"data": "samples", "samples": samples})
    assert exc.value.exit_code == 2


def test_samples_past_a_small_evaluation_subset_are_a_scene_error(tmp_path):
    # digits has 1,797 samples; a train subset of 20 caps the evaluation subset at 20 although eval_size = 64.
    scene = make_scene(tmp_path / "s.toml", data={"train_size": 20}, training={"batch_size": 4},
                       capture={"data": "samples", "samples": [25]})
    with pytest.raises(SceneError, match="capture.samples: position 25 is past the end"):
        capture_scene(scene, device=CPU, store=CaptureStore(tmp_path / "cache"))


def test_estimate_counts_the_chosen_samples(tmp_path):
    from llstudio.pipeline import estimate

    assert estimate(sample_scene(tmp_path, samples=[4, 2]))["eval_samples"] == 2
    assert estimate(make_scene(tmp_path / "s.toml"))["eval_samples"] == 64


def test_look_sample_shows_one_samples_landscape(tmp_path):
    """look.sample: the film's surface and centre loss are that sample's, not the mean."""
    from llstudio.pipeline import make_film, OutputSettings

    scene = sample_scene(tmp_path, samples=3, look={"sample": 2})
    cap = capture_scene(scene, device=CPU, store=CaptureStore(tmp_path / "cache"))
    film = make_film(cap, OutputSettings(64, 36, 4))
    np.testing.assert_allclose(film.timeline.center_loss, cap.sample_center_loss[:, 2])
    k = len(cap.steps) - 1
    state = film.timeline.frame(film.timeline.frame_of_step(k))
    from llstudio.film.timeline import scale_loss

    np.testing.assert_allclose(state.values, scale_loss(cap.sample_loss[k, 2], scene.scaling))


@pytest.mark.parametrize("over, msg", [
    ({"look": {"sample": 0}}, "capture.data = 'samples'"),
    ({"look": {"sample": 3}, "capture": {"data": "samples", "samples": 3}}, "past the 3 captured samples"),
])
def test_look_sample_errors(tmp_path, over, msg):
    with pytest.raises(SceneError) as e:
        make_scene(tmp_path / "s.toml", **over)
    assert any(p == "look.sample" and msg in m for p, m in e.value.problems), e.value.problems
