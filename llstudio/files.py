"""Files appear whole or not at all: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, path: str | Path) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes it private) and rename it into place."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


def _owner() -> str:
    """``host~pid`` of this process, written into temporary names so that a sweep can tell whose they are."""
    return f"{_host()}~{os.getpid()}"


def temp_path(path: Path | str, tag: str, suffix: Optional[str] = None) -> Path:
    """A temporary name beside ``path`` that ``stale_temp`` recognises as this process's: ``.NAME.host~pid.TAG.part``
    plus ``suffix`` (default: ``path``'s own). For files that a process assembles from parts (a split film's
    segments) and removes itself; ``tag`` ([A-Za-z0-9_]+) tells the parts apart."""
    path = Path(path)
    return path.parent / f".{path.name}.{_owner()}.{tag}.part{path.suffix if suffix is None else suffix}"


# ".step_0000120.npz.myhost~4242.k2j4_x9a.part.npz"; older names had no owner: ".step_0000120.npz.k2j4_x9a.part.npz"
TEMP_NAME = re.compile(r"^\.(?P<target>.+?)\.(?:(?P<host>[A-Za-z0-9_]+)~(?P<pid>\d+)\.)?[A-Za-z0-9_]+\.part(?:\.[^.]*)?$")
STALE_AFTER_S = 24 * 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def stale_temp(name: str, age_s: float, host: Optional[str] = None,
               alive: Callable[[int], bool] = _pid_alive, max_age_s: float = STALE_AFTER_S) -> bool:
    """Whether a file called ``name``, last modified ``age_s`` seconds ago, is a temporary file nobody will finish.

    Only names ``atomic_write`` makes qualify. Such a file is stale when the process that made it, on this host,
    has exited; a name from another host (a cache on a shared file system) or without an owner is stale only
    after ``max_age_s``: writes take seconds, and a pid is meaningless across hosts. A live owner's file is
    never stale before ``max_age_s`` (its pid may have been reused, hence the age limit even then).
    """
    m = TEMP_NAME.match(name)
    if m is None:
        return False
    if age_s > max_age_s:
        return True
    if m["pid"] is None or m["host"] != (host if host is not None else _host()):
        return False
    return not alive(int(m["pid"]))


def sweep_temp_files(directory: Path | str, max_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the stale temporary files (see ``stale_temp``) directly in ``directory``; returns those removed."""
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    now = time.time()
    host = _host()
    for p in directory.iterdir():
        if not p.name.startswith("."):
            continue
        try:
            st = p.stat()
        except FileNotFoundError:  # renamed into place or removed meanwhile
            continue
        if p.is_file() and stale_temp(p.name, now - st.st_mtime, host, max_age_s=max_age_s):
            try:
                p.unlink()
                removed.append(p)
            except FileNotFoundError:
                pass
    return removed


def atomic_write(path: Path | str, write) -> None:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path``; the temporary file lives beside ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_owner()}.", suffix=".part" + path.suffix, dir=path.parent)
        os.close(fd)
        write(tmp)
        # Flush to disk before the rename, so a power cut cannot leave a renamed but empty file.
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
