"""Bad requests are refused before any work, and nothing is written: each case runs ``llstudio`` (its ``main``, in
this process, for speed) and checks the exit status, the message and that neither the cache nor the working folder
holds anything new. SIGTERM's cases run in subprocesses: tests/e2e/test_resume.py (a film being encoded) and
tests/e2e/test_cli_split.py (a split render's segments)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_dict
from llstudio import cli

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def everything(*dirs: Path) -> list[str]:
    """Every path under ``dirs`` (what `find` would list), for 'nothing was written'."""
    return sorted(str(p) for d in dirs if d.exists() for p in d.rglob("*"))


def write_scene(path: Path, **overrides) -> Path:
    """The tiny scene with overrides as a TOML file (its values are JSON-compatible TOML: numbers, strings, lists)."""
    lines = []
    for key, value in tiny_dict(**overrides).items():
        if isinstance(value, dict):
            lines += [f"[{key}]", *(f"{k} = {json.dumps(v)}" for k, v in value.items())]
        else:
            lines.insert(0, f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def home(tmp_path, monkeypatch, isolated_cache):
    """A working folder holding tiny.toml; the cache is the test's own (empty) one."""
    monkeypatch.chdir(tmp_path)
    write_scene(tmp_path / "tiny.toml")
    return tmp_path


def refused(argv, capsys, home: Path, cache: Path, code: int = 2) -> str:
    """Run ``llstudio argv``; it must exit ``code`` with no traceback and leave the cache and home as they were."""
    before = everything(home, cache)
    assert cli.main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "llstudio: error: " in err
    assert everything(home, cache) == before
    return err


# ------------------------------------------------------------------------------------ defect 6: --frames


@pytest.mark.parametrize("frames, says", [("abc", "expected A:B"), ("50:10", "selects no frame"),
                                          ("1000:1010", "selects no frame")])
def test_bad_frames_are_refused_before_training(home, isolated_cache, capsys, frames, says):
    err = refused(["render", "tiny.toml", "--frames", frames, "--progress", "none"], capsys, home, isolated_cache)
    assert says in err and "--frames" in err


def test_a_still_of_a_frame_the_film_lacks_is_refused_before_training(home, isolated_cache, capsys):
    assert "--frame 100000: the film has" in refused(["still", "tiny.toml", "--frame", "100000"], capsys, home,
                                                     isolated_cache)


def test_a_scene_still_outside_the_story_is_refused_before_training(home, isolated_cache, capsys):
    write_scene(home / "s.toml", output={"still": 1.5})
    err = refused(["still", "s.toml"], capsys, home, isolated_cache)
    assert "output.still" in err and "less than or equal to 1" in err


# ------------------------------------------------------------------------------------ defect 4: output paths


def test_output_under_a_regular_file_is_refused(home, isolated_cache, capsys):
    (home / "FILE").write_text("not a folder")
    err = refused(["render", "tiny.toml", "-o", "FILE/x.mp4"], capsys, home, isolated_cache)
    assert "FILE is a file, not a folder" in err and "FILE/x.mp4" in err


def test_output_where_no_file_can_be_created_is_refused(home, isolated_cache, capsys):
    err = refused(["render", "tiny.toml", "-o", "/proc/x.mp4"], capsys, home, isolated_cache)
    assert "/proc/x.mp4" in err and "/proc does not take new files" in err


def test_output_of_the_wrong_kind_is_refused(home, isolated_cache, capsys):
    (home / "film.mp4").mkdir()
    err = refused(["render", "tiny.toml", "-o", "film.mp4"], capsys, home, isolated_cache)
    assert "film.mp4 is a folder, not a file" in err
    (home / "frames").write_text("a file where a PNG sequence (a folder) would go")
    err = refused(["render", "tiny.toml", "-o", "frames", "--format", "png"], capsys, home, isolated_cache)
    assert "frames exists and is not a folder" in err


@pytest.mark.skipif(ROOT_USER, reason="root may write into a read-only folder")
def test_output_in_a_read_only_folder_is_refused(home, isolated_cache, capsys):
    ro = home / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        err = refused(["render", "tiny.toml", "-o", "ro/x.mp4"], capsys, home, isolated_cache)
    finally:
        ro.chmod(0o755)
    assert "ro does not take new files" in err


def test_still_and_export_outputs_are_checked_first(home, isolated_cache, capsys):
    (home / "FILE").write_text("not a folder")
    assert "FILE/s.png" in refused(["still", "tiny.toml", "-o", "FILE/s.png"], capsys, home, isolated_cache)
    assert "exists and is not a folder" in refused(["export", "tiny.toml", "-f", "npz", "-o", "FILE"], capsys, home,
                                                   isolated_cache)


# ------------------------------------------------------------------------------------ defect 5: the cache


def test_a_cache_that_is_a_file_is_refused(home, capsys, monkeypatch):
    cache = home / "cachefile"
    cache.write_text("not a folder")
    monkeypatch.setenv("LLSTUDIO_CACHE", str(cache))
    err = refused(["render", "tiny.toml"], capsys, home, cache)
    assert "cachefile" in err and "LLSTUDIO_CACHE" in err and "exists and is not a folder" in err
    monkeypatch.setenv("LLSTUDIO_CACHE", str(cache / "sub"))
    assert "cachefile is a file, not a folder" in refused(["render", "tiny.toml"], capsys, home, cache)


@pytest.mark.skipif(ROOT_USER, reason="root may write into a read-only folder")
def test_a_read_only_cache_is_refused(home, capsys, monkeypatch):
    cache = home / "ro-cache"
    cache.mkdir()
    cache.chmod(0o555)
    monkeypatch.setenv("LLSTUDIO_CACHE", str(cache))
    try:
        err = refused(["render", "tiny.toml"], capsys, home, cache)
    finally:
        cache.chmod(0o755)
    assert "ro-cache" in err and "does not take new files" in err


def test_a_full_disk_is_a_message_not_a_traceback(home, isolated_cache, capsys, monkeypatch):
    """ENOSPC from the first cache write (simulated where the atomic writer flushes): exit 1, which file, how much
    space is free, and no temporary file left."""
    import llstudio.files

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(llstudio.files.os, "fsync", full)
    assert cli.main(["render", "tiny.toml", "--progress", "none"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no space left to write" in err and "MiB free" in err
    assert str(isolated_cache) in err
    assert [p for p in everything(isolated_cache) if ".part" in p] == []


def test_a_full_disk_outside_the_atomic_writer_is_a_message_too(home, isolated_cache, capsys, monkeypatch):
    def full(self, *args, **kwargs):  # the first folder the render makes: the capture's store entry
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "mkdir", full)
    assert cli.main(["render", "tiny.toml", "--progress", "none"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no space left to write" in err and "MiB free" in err


# ------------------------------------------------------------------------------------ defect 7: the scene's data


def test_scene_errors_found_with_the_data_write_no_manifest(home, isolated_cache, capsys):
    write_scene(home / "f.toml", model={"kind": "custom", "factory": "no_such_module_here:make"})
    assert "model.factory" in refused(["render", "f.toml"], capsys, home, isolated_cache)
    (home / "bad.pt").write_bytes(b"not a checkpoint")
    write_scene(home / "c.toml", directions={"kind": "interpolation", "start": "bad.pt"})
    assert "bad.pt" in refused(["render", "c.toml"], capsys, home, isolated_cache)
    write_scene(home / "w.toml", directions={"kind": "weights", "weights": ["no.such.weight", "net.0.weight"]})
    assert "directions.weights[0]" in refused(["render", "w.toml"], capsys, home, isolated_cache)


def test_missing_mnist_writes_no_manifest(home, isolated_cache, capsys):
    pytest.importorskip("torchvision")
    (home / "empty").mkdir()
    write_scene(home / "m.toml", data={"dataset": "mnist", "root": "empty", "eval_size": 8}, model={"kind": "cnn"})
    assert "mnist" in refused(["render", "m.toml"], capsys, home, isolated_cache, code=3).lower()


# ------------------------------------------------------------------------------------ defect 8: --format


def test_format_overrides_output_format_for_transparency(home, isolated_cache, capsys):
    write_scene(home / "t.toml", look={"anti_aliasing": "none", "background": "transparent"})
    # Without an override, check and render refuse it with the key path ...
    assert "look.background" in refused(["check", "t.toml"], capsys, home, isolated_cache)
    assert "(it is 'mp4')" in refused(["render", "t.toml"], capsys, home, isolated_cache)
    # ... and --format png or -o's suffix get past that check (to the next one, here a deliberate --frames error).
    for extra in (["--format", "png"], ["-o", "t.mov"]):
        err = refused(["render", "t.toml", *extra, "--frames", "9:1"], capsys, home, isolated_cache)
        assert "--frames" in err and "transparent" not in err


# ------------------------------------------------------------------------------------ defect 3: temporary films


def test_cache_clear_sweeps_killed_renders_films_from_renders(home, capsys):
    from llstudio.files import _owner

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = _owner().split("~")[0]
    renders = home / "renders"
    renders.mkdir()
    killed = renders / f".tiny.mp4.{host}~{int(proc.stdout)}.0a1b.part.mp4"
    live = renders / f".tiny.mp4.{_owner()}.0a1b.part.mp4"  # this process's: still being written
    for p in (killed, live, renders / "tiny.mp4"):
        p.write_bytes(b"x")
    assert cli.main(["cache", "clear"]) == 0
    assert "1 stale temporary file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in renders.iterdir()) == sorted([live.name, "tiny.mp4"])
