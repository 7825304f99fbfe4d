"""The Capture a notebook user gets: every landscape value is a plain forward pass at ``cap.center(k) + alpha *
scale * d1 + beta * scale * d2``, in either frame of reference (float64, brute force)."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from conftest import make_scene
from llstudio.pipeline import capture_scene
from llstudio.train.models import loss_fn

CPU = torch.device("cpu")

FRAMES = {
    "follow": {},
    "fixed": {"directions": {"frame": "fixed", "center": "final"}},
    "fixed-zoom": {"directions": {"frame": "fixed", "center": "initial"}, "grid": {"zoom": 0.5}},
    "named weights": {"directions": {"kind": "weights", "weights": ["0.weight[0,0]", "2.weight[1,3]"]}},
}


def brute_force(cap, k: int, i: int, j: int) -> float:
    """The loss of the plain model at grid point (i, j) of captured step k, one forward pass."""
    model = cap.model(k)
    x, y = (torch.as_tensor(v) for v in cap.eval_data)
    x = x.to(torch.float64)
    d1, d2 = cap.directions
    s = cap.scales[k]
    w = {n: c + cap.alphas[i] * s * d1[n] + cap.betas[j] * s * d2[n] for n, c in cap.center(k).items()}
    with torch.no_grad():
        out = functional_call(model, {**dict(model.named_buffers()), **w}, (x,))
        return float(loss_fn(cap.scene.training.loss, 10)(out, y))


@pytest.mark.parametrize("frame", list(FRAMES), ids=list(FRAMES))
def test_every_value_is_a_forward_pass_at_the_grid_centre(tmp_path, frame):
    scene = make_scene(tmp_path / "c.toml", capture={"every": 4, "device": "cpu", "dtype": "float64"},
                       **FRAMES[frame])
    cap = capture_scene(scene, device=CPU)
    nx, ny = cap.loss.shape[1:]
    for k in (0, len(cap.steps) - 1):
        for i, j in ((0, 0), (nx - 1, ny // 2), (nx // 2, ny - 1)):
            assert cap.loss[k, i, j] == pytest.approx(brute_force(cap, k, i, j), rel=1e-10)


def test_centre_is_the_step_in_follow_and_one_plane_in_fixed(tmp_path):
    follow = capture_scene(make_scene(tmp_path / "f.toml"), device=CPU)
    assert all(torch.equal(follow.center(1)[n], follow.centers[1][n]) for n in follow.centers[1])
    fixed = capture_scene(make_scene(tmp_path / "x.toml", directions={"frame": "fixed", "center": "final"}),
                          device=CPU)
    assert all(torch.equal(fixed.center(0)[n], fixed.centers[-1][n]) for n in fixed.centers[-1])
    assert fixed.curvature is None and fixed.samples is None and fixed.curv_min is None
    assert fixed.sample_loss is None and fixed.convexity is None
