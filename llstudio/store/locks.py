"""Lock files: two processes (jobs of a batch, ranks, nodes sharing a cache) that need the same training run or
capture compute it once; the second waits for the first and then finds it in the store.

A lock is a file created with ``O_CREAT | O_EXCL`` (atomic, also on NFS v3+) holding its owner's host, pid and
start time as JSON. While held, a daemon thread touches it every ``HEARTBEAT_S`` seconds. A lock nobody will
release is stale and taken over: its owner on this host has exited (a killed job), or, for an owner on another
host (whose pid means nothing here), it has not been touched for ``STALE_AFTER_S``.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from ..files import _host, _pid_alive, disk_full

HEARTBEAT_S = 5.0
STALE_AFTER_S = 600.0
# A lock file whose content cannot be read is being written (create and write are two calls): give it this long.
UNREADABLE_GRACE_S = 60.0
SUFFIX = ".lock"

# Locks this process holds (path → depth): taking a lock again in the same process does not wait on itself.
_held: dict[str, int] = {}
_held_guard = threading.Lock()


def read_owner(path: Path | str) -> Optional[dict]:
    """The owner record {host, pid, time} of a lock file, or None when it is missing, empty or unreadable."""
    try:
        owner = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and "host" in owner and "pid" in owner else None


def is_stale(owner: Optional[dict], age_s: float, host: Optional[str] = None,
             alive: Callable[[int], bool] = _pid_alive, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether a lock with ``owner`` (None: unreadable), last touched ``age_s`` seconds ago, will never be released.

    An owner on this host is stale once its pid has exited (or, a reused pid, once its heartbeat stopped); an
    owner on another host only once its heartbeat stopped: a pid of another machine cannot be asked."""
    if owner is None:
        return age_s > UNREADABLE_GRACE_S
    if age_s > stale_after_s:
        return True
    if owner.get("host") != (host if host is not None else _host()):
        return False
    try:
        pid = int(owner["pid"])
    except (TypeError, ValueError):
        return True
    # Our own pid, yet not in ``_held``: a leftover of an earlier process that had this pid.
    return pid == os.getpid() or not alive(pid)


def describe(owner: Optional[dict]) -> str:
    return f"{owner['host']}:{owner['pid']}" if owner else "another process"


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"host": _host(), "pid": os.getpid(), "time": time.time()}, f)
    except OSError as exc:  # a full disk: no empty lock left behind for others to wait on, and the lock's name said
        os.unlink(path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(path, exc) from None
        raise
    return True


def _take_over(path: Path, seen: Optional[dict]) -> None:
    """Remove a stale lock, unless it changed hands since it was judged (another waiter took it over first)."""
    if read_owner(path) == seen:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _heartbeat(path: Path, stop: threading.Event, every_s: float) -> None:
    while not stop.wait(every_s):
        try:
            os.utime(path)
        except FileNotFoundError:  # removed (by 'cache clear'): nothing left to keep alive
            return


def acquire(path: Path, log: Callable[[str], None], what: str, poll_s: float,
            stale_after_s: float, timeout_s: Optional[float]) -> bool:
    """Wait until this process has created the lock file; True when it had to wait for another owner."""
    waited, said = False, None
    start = time.monotonic()
    while not _try_create(path):
        owner = read_owner(path)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:  # released meanwhile
            continue
        if is_stale(owner, age, stale_after_s=stale_after_s):
            log(f"{what}: taking over the stale lock of {describe(owner)} ({path})")
            _take_over(path, owner)
            continue
        if said != describe(owner):
            said = describe(owner)
            log(f"{what}: waiting for {said}, which is computing it ({path})")
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{path}: still held by {describe(owner)} after {timeout_s:.0f} s")
        waited = True
        time.sleep(poll_s)
    return waited


@contextmanager
def hold(path: Path | str, log: Optional[Callable[[str], None]] = None, what: str = "store", poll_s: float = 0.5,
         heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S,
         timeout_s: Optional[float] = None) -> Iterator[bool]:
    """Hold the lock file ``path`` while the block runs; yields whether it had to wait for another process (the
    caller then re-checks the store: the other one has probably computed what it needed). ``log`` gets one line
    when waiting starts (and one per change of owner, or takeover of a stale lock)."""
    path = Path(path)
    key = str(path.resolve())
    with _held_guard:
        depth = _held.get(key, 0)
        if depth:
            _held[key] = depth + 1
    if depth:  # this process holds it already (a nested stage): no wait, no second file
        try:
            yield False
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    waited = acquire(path, log or (lambda text: None), what, poll_s, stale_after_s, timeout_s)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(path, stop, heartbeat_s), name="llstudio-lock", daemon=True)
    with _held_guard:
        _held[key] = 1
    beat.start()
    try:
        yield waited
    finally:
        stop.set()
        with _held_guard:
            _held.pop(key, None)
        if _mine(path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _mine(path: Path) -> Optional[dict]:
    """The lock's owner record when this process is the owner, else None."""
    owner = read_owner(path)
    return owner if owner and owner.get("host") == _host() and owner.get("pid") == os.getpid() else None


def sweep_locks(directory: Path | str, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the stale lock files (see ``is_stale``) in ``directory``; returns those removed."""
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for p in directory.glob("*" + SUFFIX):
        owner = read_owner(p)
        try:
            age = time.time() - p.stat().st_mtime
        except FileNotFoundError:
            continue
        if is_stale(owner, age, stale_after_s=stale_after_s):
            _take_over(p, owner)
            removed.append(p)
    return removed
