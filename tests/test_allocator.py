"""glibc allocator tuning (llstudio.allocator): freed multi-megabyte tensors are reused, not page-faulted in again."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llstudio import allocator

_FAULTS = """
import resource, sys, torch
from llstudio import allocator
tuned = allocator.tune() if sys.argv[1] == "tune" else False
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def forward():
    acts = [torch.ones(2**19) for _ in range(3)]  # three 2 MiB activations, every page written
    del acts
for _ in range(20):  # the heap grows to its working size
    forward()
before = faults()
for _ in range(20):
    forward()
print(tuned, faults() - before)
"""


def _faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True).stdout
    tuned, faults = out.split()
    return tuned == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tuned_allocator_reuses_freed_tensors_instead_of_faulting_them_in_again():
    tuned, faults = _faults("tune")
    if not tuned:
        pytest.skip("not glibc")
    _, untuned = _faults("plain")
    # Untuned, glibc gives the freed top of the heap back at every step (its trim threshold follows the mmap one),
    # so the 6 MiB are faulted in again: about 1,500 pages a step. Tuned: the same heap memory every time.
    assert untuned > 20 * 500
    assert faults < 20 * 20


def test_tune_is_harmless_to_call_twice():
    first = allocator.tune()
    assert allocator.tune() == first
