"""Files appear whole or not at all: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, path: str | Path) -> None:
    """Give a finished temporary file the usual permissions (mkstemp makes it private) and rename it into place."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def atomic_write(path: Path | str, write) -> None:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path``; the temporary file lives beside ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".part" + path.suffix, dir=path.parent)
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
