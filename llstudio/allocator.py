"""glibc's allocator, tuned for a process that allocates and frees the same multi-megabyte tensors over and over.

torch's CPU tensors come from ``malloc``. glibc serves a request above its mmap threshold (128 KiB at start) with
a fresh ``mmap`` and returns it to the kernel on ``free``, so every such tensor is page-faulted in (and zeroed by
the kernel) again the next time: 512 faults for a 2 MiB activation. The threshold rises by itself when an mmapped
block is freed, but the trim threshold follows it, so the freed top of the heap is handed back at every step and
faulted in again: how fast a loop of forward passes runs depends on what the process did before. Measured on the
2-core target: a plain per-point loop over the 784-50-500-10 MLP with 1,000 samples ran at 230-320 points/s
untuned and 530-680 tuned (about 1,000 page faults a point untuned); training plus capture of the gallery's
``mnist_cnn_slice`` took 27 s instead of 36-37 s, ``random_vs_pca_resnet`` 21 s instead of 25 s.

:func:`tune` fixes the threshold at 32 MiB (glibc's own upper limit for the dynamic one) and lets freed memory
stay with the process up to 256 MiB before it is trimmed. The command line calls it once at start; the Python
API leaves the host program's allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 256 * 2**20


def tune() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False (and nothing done) where the C library is
    not glibc (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: musl has mallopt as a stub that does nothing
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
