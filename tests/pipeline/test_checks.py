"""What render refuses, found by check without training (defect 10), the dataset sizes known once loaded (defect
9), and the memory estimate that refuses a capture the machine cannot hold (defect 11)."""

from __future__ import annotations

import pytest
import torch

from conftest import make_scene, write_mnist
from llstudio.config.scene import DataSpec
from llstudio.errors import SceneError
from llstudio.pipeline import calibrate, cost
from llstudio.pipeline.checks import check_data, check_memory, check_scene, SceneNeedsData
from llstudio.train.data import load_dataset

CPU = torch.device("cpu")
MNIST = {"dataset": "mnist", "eval_size": 8}
CNN = {"kind": "cnn", "width": 2}


def test_check_finds_a_missing_dataset_and_bad_weight_names_at_once(tmp_path):
    scene = make_scene(tmp_path / "s.toml", data={**MNIST, "root": str(tmp_path / "empty")}, model=CNN,
                       directions={"kind": "weights", "weights": ["nope.weight[0,0]", "fc2.bias[99]"]},
                       grid={"resolution": 5, "range": [-1.0, 1.0]}, training={"init": {"conv1.weight[9,0,0,0]": 1.0}})
    with pytest.raises(SceneNeedsData) as e:
        check_scene(scene)
    msg, paths = str(e.value), [p for p, _ in e.value.problems]
    assert e.value.exit_code == 3
    assert "data.root" in paths and "MNIST/raw" in msg and "download=True" in msg
    assert {"directions.weights[0]", "directions.weights[1]", 'training.init."conv1.weight[9,0,0,0]"'} <= set(paths)
    assert not (tmp_path / "empty").exists()  # nothing downloaded


def test_check_passes_a_local_mnist_and_refuses_wrong_weights_with_exit_2(tmp_path):
    write_mnist(tmp_path)
    good = make_scene(tmp_path / "s.toml", data={**MNIST, "root": str(tmp_path)}, model=CNN)
    assert set(check_scene(good)["models"]) == {""}
    bad = make_scene(tmp_path / "s.toml", data={**MNIST, "root": str(tmp_path)}, model=CNN,
                     training={"init": {"fc9.weight[0,0]": 1.0}})
    with pytest.raises(SceneError) as e:
        check_scene(bad)
    assert e.value.exit_code == 2 and [p for p, _ in e.value.problems] == ['training.init."fc9.weight[0,0]"']


def test_check_reads_checkpoints_with_weights_only_and_fits_them(tmp_path):
    torch.save({"0.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    scene = make_scene(tmp_path / "s.toml", directions={"kind": "interpolation", "start": "wrong.pt",
                                                         "end": "garbage.pt"})
    with pytest.raises(SceneError) as e:
        check_scene(scene)
    found = dict(e.value.problems)
    assert "lacks the model's parameters" in found["directions.start"] or "does not fit" in found["directions.start"]
    assert "weights_only=True" in found["directions.end"]


def test_check_imports_the_model_factory(tmp_path):
    scene = make_scene(tmp_path / "s.toml", model={"kind": "custom", "factory": "no_such_module_xyz:make"})
    with pytest.raises(SceneError) as e:
        check_scene(scene)
    assert [p for p, _ in e.value.problems] == ["model.factory"] and "no_such_module_xyz" in str(e.value)


def test_a_dataset_smaller_than_its_table_is_refused_before_training(tmp_path):
    write_mnist(tmp_path, n=30)
    spec = DataSpec(dataset="mnist", root=str(tmp_path), eval_size=100)
    scene = make_scene(tmp_path / "s.toml", data=spec.model_dump(), model=CNN)
    with pytest.raises(SceneError, match=r"data.eval_size: 100 samples asked for, but 'mnist' holds 30 training"):
        check_data(scene, load_dataset(spec, images=True))


def test_memory_parts_count_the_grids_samples_and_weights(tmp_path):
    scene = make_scene(tmp_path / "s.toml", grid={"resolution": [40, 30], "range": [-1.0, 1.0]},
                       capture={"every": 4, "data": "samples", "samples": 3, "device": "cpu"})
    parts = cost.memory_parts(scene, n_params=1000, input_shape=(64,))
    steps = len(scene.captured_steps())  # 4
    assert parts["grids"] == 2 * steps * 40 * 30 * 8 and parts["samples"] == 3 * parts["grids"]
    assert parts["training"] == 1000 * 4 * (steps + 4) and parts["dataset"] == 2 * 1797 * 64 * 4
    assert parts["batches"] == 512 * 2**20 + 64 * 64 * 4


def test_a_capture_bigger_than_the_memory_is_refused_unless_forced(tmp_path, monkeypatch):
    scene = make_scene(tmp_path / "s.toml", grid={"resolution": 4097, "range": [-1.0, 1.0]})
    monkeypatch.setattr("llstudio.pipeline.checks.host_available_mib", lambda: 4000)
    with pytest.raises(SceneError) as e:
        check_memory(scene, CPU)
    msg = str(e.value)
    assert "grid.resolution: this capture needs about" in msg and "4,000 MiB of available RAM" in msg
    assert "4 captured steps of 4097x4097 points" in msg and "capture.every" in msg and "--force" in msg
    with pytest.raises(SceneError, match="grid.resolution: this capture needs about"):
        check_scene(scene)
    check_memory(scene, CPU, force=True)  # --force: no refusal
    check_scene(scene, force=True)
    monkeypatch.setattr("llstudio.pipeline.checks.host_available_mib", lambda: 10**6)
    check_memory(scene, CPU)


def test_the_calibration_gives_every_part(tmp_path):
    scene = make_scene(tmp_path / "s.toml")
    checked = check_scene(scene)
    c = cost.estimate(scene)
    est = calibrate.capture_estimate(scene, None, checked, c)
    assert est["capture_s"] > 0 and est["seconds_per_grid_point"] > 0 and est["training_s"] > 0
    assert est["peak_memory_mib"] == round(sum(checked["memory"].values()) / 2**20)
    assert est["capture_time"].startswith("about ") and "MiB" in est["peak_memory"]


def test_curvature_is_priced_by_its_own_products(tmp_path):
    scene = make_scene(tmp_path / "s.toml", capture={"every": 4, "device": "cpu", "curvature": {"resolution": 2}})
    est = calibrate.capture_estimate(scene, None, check_scene(scene), cost.estimate(scene))
    assert est["curvature_s"] > 0 and "curvature" in est["capture_time"]
    assert est["capture_s"] >= 0.99 * (est["curvature_s"] + est["grid_s"])  # each rounded to 3 digits
