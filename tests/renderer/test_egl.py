"""Which EGL device renders on which CUDA GPU: the mapping from what EGL reports (fake device lists here; this
machine's own EGL in the last test)."""

from __future__ import annotations

from llstudio.renderer.egl import cuda_egl_mapping, egl_cuda_devices, map_cuda_to_egl


def test_nvidia_egl_devices_map_by_the_cuda_index_they_report():
    # Mesa's software device first, then two GPUs that EGL lists in another order than CUDA.
    m = map_cuda_to_egl([0, 1], [None, 1, 0])
    assert m.egl == {0: 2, 1: 1} and m.known
    assert m.note == "CUDA 0 → EGL 2, CUDA 1 → EGL 1"


def test_a_gpu_no_egl_device_claims_falls_back_to_its_own_index_with_a_warning():
    m = map_cuda_to_egl([0, 1], [1, None])
    assert m.egl == {0: 0, 1: 0} and not m.known
    assert "no EGL device reports CUDA device(s) 0" in m.note


def test_without_nvidia_egl_the_mapping_is_an_identity_guess():
    for listed, why in (([None], "none of the 1 EGL device(s) is an NVIDIA one"), (None, "could not be listed")):
        m = map_cuda_to_egl([0, 1, 2], listed)
        assert m.egl == {0: 0, 1: 1, 2: 2} and not m.known
        assert why in m.note and "unknown" in m.note


def test_no_gpu_needs_no_mapping():
    assert map_cuda_to_egl([], [None]).egl == {}


def test_this_machines_egl_answers_without_a_crash():
    listed = egl_cuda_devices()
    assert listed is None or all(c is None or c >= 0 for c in listed)
    assert cuda_egl_mapping([]).note == "no CUDA GPU"
