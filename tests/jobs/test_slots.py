"""How N concurrent jobs share a machine: the cores split, one GPU each (round robin), the matching EGL device."""

from __future__ import annotations

from llstudio.jobs.slots import Slot, plan_slots, visible_devices


def test_cpu_jobs_split_the_cores():
    slots = plan_slots(4, 16, [], {})
    assert [s.threads for s in slots] == [4, 4, 4, 4]
    env = slots[0].env()
    assert {env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "LP_NUM_THREADS", "LLSTUDIO_THREADS")} == {"4"}
    assert "CUDA_VISIBLE_DEVICES" not in env and "VTK_DEFAULT_EGL_DEVICE_INDEX" not in env
    assert [s.threads for s in plan_slots(3, 2, [], {})] == [1, 1, 1]  # more jobs than cores: one thread each


def test_gpu_jobs_get_one_gpu_each_round_robin_with_its_egl_device():
    slots = plan_slots(3, 16, [0, 1], {0: 2, 1: 1})
    assert [(s.cuda, s.egl) for s in slots] == [(0, 2), (1, 1), (0, 2)]
    assert slots[1].env()["CUDA_VISIBLE_DEVICES"] == "1"
    assert slots[1].env()["VTK_DEFAULT_EGL_DEVICE_INDEX"] == "1"
    assert slots[0].threads == 5


def test_a_restricted_parent_names_its_own_gpus():
    visible = visible_devices({"CUDA_VISIBLE_DEVICES": "3, GPU-1b2c"})
    assert visible == ["3", "GPU-1b2c"]
    slots = plan_slots(2, 4, [0, 1], {0: 3, 1: 4}, visible)
    assert [s.env()["CUDA_VISIBLE_DEVICES"] for s in slots] == ["3", "GPU-1b2c"]
    assert visible_devices({}) is None
    assert Slot(0, 2, 1, None).env()["CUDA_VISIBLE_DEVICES"] == "1"
