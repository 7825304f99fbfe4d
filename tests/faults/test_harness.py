"""The fault suite's own parts, checked cheaply: scene dicts written as TOML read back the same, each corruption
really damages a file, and the leftover scan sees the temporary names the writers make."""

from __future__ import annotations

import random

import numpy as np
import pytest

import fault_harness as h

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def test_scene_dicts_round_trip_through_toml():
    d = {**h.CORRUPT_SCENE, "look": {"anti_aliasing": "none", "odd": [float("inf"), -0.5, "é\"\\n"]}}
    assert tomllib.loads(h.to_toml(d)) == d


@pytest.mark.parametrize("how", h.CORRUPTIONS)
def test_each_corruption_breaks_an_npz_or_its_shapes(tmp_path, how):
    p = tmp_path / "step_0000004.npz"
    with open(p, "wb") as f:
        np.savez(f, loss=np.arange(25.0).reshape(5, 5), center_loss=np.array(1.0))
    before = p.read_bytes()
    h.corrupt(p, how, random.Random(0))
    assert p.read_bytes() != before
    try:
        with np.load(p) as z:
            shapes = {k: z[k].shape for k in z.files}
    except Exception:  # noqa: BLE001 - unreadable is what most corruptions are for
        return
    assert shapes != {"loss": (5, 5), "center_loss": ()}


def test_leftovers_finds_temporary_names(tmp_path):
    from llstudio.files import temp_path

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".film.mp4.host~12.abc.part.mp4").write_text("")
    (tmp_path / ".film.k2j4_x9a.part.mp4").write_text("")  # the film writer's older name, no owner
    temp_path(tmp_path / "b.npz", "x").write_text("")
    (tmp_path / "film.mp4").write_text("")
    assert len(h.leftovers(tmp_path)) == 3


def test_a_caught_signal_ends_with_128_plus_n_or_by_the_signal_itself():
    assert h.clean_exit("SIGINT", 130) and h.clean_exit("SIGINT", -2)
    assert h.clean_exit("SIGTERM", 143) and h.clean_exit("SIGTERM", -15)
    assert not any(h.clean_exit(s, rc) for s in ("SIGINT", "SIGTERM") for rc in (0, 1, 2, None))
    assert not h.clean_exit("SIGINT", 143) and not h.clean_exit("SIGTERM", -2)
