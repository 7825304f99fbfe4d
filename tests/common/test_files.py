"""files.py: what can be written (checked before any work, creating nothing), a full disk as a message, and the
sweep of temporary files and folders whose owner has gone."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llstudio.errors import DiskFull, UsageError
from llstudio.files import (FILE, FOLDER, RENAMED_FOLDER, _owner, atomic_write, require_writable, sweep_temp_files,
                            temp_path, writable_problem)


def dead_pid() -> int:
    """The pid of a process that has exited (a pid is reused only after the counter wraps)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_what_can_be_written_creates_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    before = sorted(tmp_path.rglob("*"))
    assert writable_problem(tmp_path / "a" / "b" / "film.mp4") is None  # folders that can be made: fine
    assert writable_problem(tmp_path / "a" / "b", FOLDER) is None
    assert writable_problem(tmp_path / "folder", RENAMED_FOLDER) is None
    assert writable_problem(tmp_path / "file/x.mp4") == f"{tmp_path / 'file'} is a file, not a folder, so " \
                                                        f"{tmp_path / 'file/x.mp4'} cannot be created"
    assert writable_problem(tmp_path / "folder") == f"{tmp_path / 'folder'} is a folder, not a file"
    assert writable_problem(tmp_path / "file", FOLDER) == f"{tmp_path / 'file'} exists and is not a folder"
    assert writable_problem(tmp_path / "file", RENAMED_FOLDER) == f"{tmp_path / 'file'} exists and is not a folder"
    assert "/proc does not take new files" in writable_problem("/proc/x.mp4")
    with pytest.raises(UsageError, match=r"the film '/proc/x.mp4' cannot be written: .*; choose another path"):
        require_writable("/proc/x.mp4", FILE, "the film")
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_folder_cannot_be_written(tmp_path):
    tmp_path.chmod(0o555)
    try:
        assert "permission denied" in writable_problem(tmp_path / "x" / "film.mp4")
    finally:
        tmp_path.chmod(0o755)


def test_a_full_disk_is_a_disk_full_error_and_leaves_no_temporary_file(tmp_path):
    def write(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)

    with pytest.raises(DiskFull, match=r"no space left to write .*step\.npz \(No space left on device\); [0-9.]+ "
                                       r"MiB free on its file system"):
        atomic_write(tmp_path / "step.npz", write)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError, match="other"):  # other errors pass unchanged
        atomic_write(tmp_path / "step.npz", lambda tmp: (_ for _ in ()).throw(OSError(errno.EIO, "other")))


def test_sweep_removes_dead_owners_files_and_folders_only(tmp_path):
    mine = temp_path(tmp_path / "film.mp4", "ab12")
    assert mine.name == f".film.mp4.{_owner()}.ab12.part.mp4"
    host = _owner().split("~")[0]
    dead = tmp_path / f".film.mp4.{host}~{dead_pid()}.cd34.part.mp4"
    frames = tmp_path / f".frames.{host}~{dead_pid()}.ef56.part"  # a PNG sequence's folder
    for p in (mine, dead, tmp_path / "film.mp4"):
        p.write_bytes(b"x")
    frames.mkdir()
    (frames / "frame_00000.png").write_bytes(b"x")
    assert sorted(sweep_temp_files(tmp_path)) == sorted([dead, frames])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["film.mp4", mine.name])
