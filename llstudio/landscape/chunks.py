"""Grid points in chunks, on worker threads, with buffers each worker reuses from one chunk to the next."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import torch


def run_chunks(n: int, chunk: int, body: Callable[[int, int, dict], None], threads: int = 1) -> None:
    """Call ``body(start, stop, scratch)`` for every chunk of ``n`` points, ``chunk`` points each, on up to
    ``threads`` threads.

    Each worker thread (and the calling thread, when one worker suffices) runs torch single-threaded and pulls
    the next chunk when done (so a core slowed by other processes takes fewer chunks); ``scratch`` is the worker's own dict for reusable buffers. Two
    single-threaded workers beat one two-threaded pass here: the per-point matrices are too small for
    intra-op parallelism to pay for its synchronisation. torch releases the GIL inside its kernels.
    """
    starts = range(0, n, chunk)
    workers = min(threads, len(starts))
    if workers <= 1:
        # Single-threaded here too, so that a point's value never depends on the process's thread count: a few
        # points (a step's centre, a rank's share of a small grid) give the same bits as in a worker thread.
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            scratch: dict = {}
            for s in starts:
                body(s, min(s + chunk, n), scratch)
        finally:
            torch.set_num_threads(before)
        return
    todo = iter(starts)
    lock = threading.Lock()
    stop = threading.Event()

    def worker():
        torch.set_num_threads(1)
        scratch: dict = {}
        with torch.no_grad():
            while not stop.is_set():
                with lock:
                    s = next(todo, None)
                if s is None:
                    return
                body(s, min(s + chunk, n), scratch)

    before = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="llstudio-grid") as pool:
            futures = [pool.submit(worker) for _ in range(workers)]
            try:
                for f in futures:
                    f.result()
            finally:
                stop.set()  # an error or Ctrl-C in one place stops the others after their current chunk
    finally:
        # set_num_threads in a worker also changes torch's process-wide default for new threads: restore it.
        torch.set_num_threads(before)


def reused(scratch: dict, tag, shape: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The worker's buffer ``tag`` of ``shape`` from ``scratch``, allocated (and kept there) when it has none of
    that shape: a batch's weights and activations can be hundreds of megabytes, and fresh temporaries of that
    size cost more in page faults than the arithmetic."""
    t = scratch.get(tag)
    if t is None or t.shape != shape:
        t = scratch[tag] = torch.empty(shape, device=device, dtype=dtype)
    return t
