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
def step(k):
    # An activation of 8 MiB and a little more each time, every page written (as a loop whose batch grows).
    t = torch.ones(2**21 + k * 2**14)
    del t
step(0)
before = faults()
for k in range(1, 21):
    step(k)
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
    # Untuned, each tensor is a little larger than the mmap threshold that freeing the last one set, so it is a
    # fresh mapping: its 2,048 pages and more faulted in (44,000 faults over the 20 steps, measured). Tuned, it is
    # heap memory used before: 2,600-13,000 faults in all, measured (the heap's growth, and what torch's own
    # allocations around it disturb).
    assert untuned > 20 * 1500
    assert faults < 20 * 1000


def test_tune_is_harmless_to_call_twice():
    first = allocator.tune()
    assert allocator.tune() == first
