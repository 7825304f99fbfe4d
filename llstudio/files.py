"""Files appear whole or not at all: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from .errors import DiskFull, UsageError


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
    """Remove the stale temporary files (see ``stale_temp``) directly in ``directory``, and the stale temporary
    folders a PNG sequence is written into; returns those removed."""
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
        if stale_temp(p.name, now - st.st_mtime, host, max_age_s=max_age_s):
            try:
                if p.is_dir() and not p.is_symlink():  # a PNG sequence's frames, or a split film's PNG segment
                    shutil.rmtree(p)
                else:
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
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(path, exc) from None
        raise


def free_space(directory: Path | str) -> Optional[int]:
    """Bytes free for this user on the file system holding ``directory`` (or its nearest existing ancestor)."""
    p = Path(directory)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def disk_full(path: Path | str, exc: Optional[OSError] = None) -> DiskFull:
    """The error for a write of ``path`` that ran out of space (ENOSPC, or over quota)."""
    path = Path(path)
    free = free_space(path.parent)
    said = f" ({exc.strerror})" if exc is not None and exc.strerror else ""
    return DiskFull(f"no space left to write {path}{said}; {_mib(free)} free on its file system. Free some space "
                    "and run again (what was finished is kept; the next run resumes), or put the cache elsewhere with "
                    "LLSTUDIO_CACHE and the film elsewhere with -o")


def _mib(n: Optional[int]) -> str:
    return "unknown space" if n is None else f"{n / 2**20:.1f} MiB"


# What kinds of path a command writes (``writable_problem``): a file renamed into place in its folder; a folder the
# command writes files into (the cache, an export); a folder renamed into place as a whole (a PNG sequence).
FILE, FOLDER, RENAMED_FOLDER = "file", "folder", "renamed folder"


def writable_problem(path: Path | str, kind: str = FILE) -> Optional[str]:
    """Why ``path`` cannot be written as ``kind`` (FILE, FOLDER or RENAMED_FOLDER), in words, or None when it can.

    Creates nothing: the folders that would hold it may not exist yet (they are made when it is written), so the
    nearest existing one must be a folder this process may create files in. An existing ``path`` must be of the
    right kind (a film is not written over a folder, nor a PNG sequence over a file)."""
    path = Path(path)
    if path.exists():
        if kind == FILE and path.is_dir():
            return f"{path} is a folder, not a file"
        if kind != FILE and not path.is_dir():
            return f"{path} exists and is not a folder"
    where = path if kind == FOLDER else path.parent
    nearest = where
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        return f"{nearest} is a file, not a folder, so {path} cannot be created"
    problem = _creatable(nearest)
    if problem:
        return f"{nearest} does not take new files ({problem})"
    return None


def require_writable(path: Path | str, kind: str = FILE, what: str = "the output",
                     remedy: str = "choose another path with -o") -> None:
    """Raise a :class:`UsageError` (exit 2) naming ``path`` when it cannot be written as ``kind``; creates nothing."""
    problem = writable_problem(path, kind)
    if problem:
        raise UsageError(f"{what} {str(path)!r} cannot be written: {problem}; {remedy}")


def _creatable(directory: Path) -> Optional[str]:
    """Whether a file can be created in ``directory``: an unnamed file (O_TMPFILE: nothing ever appears in it)
    where the file system supports one, else a named one removed at once; None, or the reason."""
    if not os.access(directory, os.W_OK | os.X_OK):
        return "permission denied" if not _read_only(directory) else "read-only file system"
    try:
        fd = os.open(directory, getattr(os, "O_TMPFILE", 0) | os.O_WRONLY, 0o600)
        os.close(fd)
        return None
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.EISDIR, errno.ENOTDIR):
            return exc.strerror or str(exc)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".probe.{_owner()}.", suffix=".part", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _read_only(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False
