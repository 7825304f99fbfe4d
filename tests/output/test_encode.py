"""FilmWriter: real ffmpeg, tiny frames; the film appears whole or not at all."""

from __future__ import annotations

import numpy as np
import pytest

from llstudio.output.encode import FilmWriter, available_encoders
from llstudio.errors import RenderError

W, H = 64, 48


def solid(rgb) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (H, W, 3)).copy()


def decode(path):
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    return meta, [np.frombuffer(f, np.uint8).reshape(H, W, 3) for f in gen]


def test_libx264_is_available():
    assert "libx264" in available_encoders()


def test_writes_an_h264_film(tmp_path):
    out = tmp_path / "films" / "f.mp4"
    greys = [(20, 20, 20), (128, 128, 128), (230, 230, 230)]  # greys decode the same under any YUV matrix
    with FilmWriter(out, W, H, fps=12, crf=10, preset="ultrafast") as w:
        for c in greys:
            w.write(solid(c))
    assert w.frames == 3
    meta, frames = decode(out)
    assert meta["codec"] == "h264" and meta["fps"] == 12 and tuple(meta["size"]) == (W, H)
    assert meta["pix_fmt"].startswith("yuv420p") and "bt709" in meta["pix_fmt"]
    assert len(frames) == 3
    for f, c in zip(frames, greys):
        np.testing.assert_allclose(f.reshape(-1, 3).mean(axis=0), c, atol=4)
    assert sorted(p.name for p in out.parent.iterdir()) == ["f.mp4"]


def test_saturated_colours_survive_encoding(tmp_path):
    out = tmp_path / "c.mp4"
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    with FilmWriter(out, W, H, fps=10, crf=0, preset="ultrafast") as w:
        for c in colours:
            w.write(solid(c))
    _, frames = decode(out)  # ffmpeg decodes with the matrix the stream is tagged with
    for f, c in zip(frames, colours):
        np.testing.assert_allclose(f.reshape(-1, 3).mean(axis=0), c, atol=5)


def test_error_while_rendering_leaves_nothing_and_keeps_the_old_film(tmp_path):
    out = tmp_path / "f.mp4"
    out.write_bytes(b"the old film")
    with pytest.raises(RuntimeError, match="render failed"):
        with FilmWriter(out, W, H, fps=10, preset="ultrafast") as w:
            w.write(solid((1, 2, 3)))
            raise RuntimeError("render failed")
    assert out.read_bytes() == b"the old film"
    assert [p.name for p in tmp_path.iterdir()] == ["f.mp4"]


def test_wrong_frame_shape_is_an_error_and_cleans_up(tmp_path):
    out = tmp_path / "f.mp4"
    with pytest.raises(RenderError, match="expected"):
        with FilmWriter(out, W, H, fps=10, preset="ultrafast") as w:
            w.write(np.zeros((H, W + 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_no_frames_is_an_error(tmp_path):
    with pytest.raises(RenderError, match="no frames"):
        with FilmWriter(tmp_path / "f.mp4", W, H, fps=10, preset="ultrafast"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_odd_size_is_refused():
    with pytest.raises(RenderError, match="even"):
        FilmWriter("x.mp4", 65, 48, fps=10)


def test_film_gets_normal_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        out = tmp_path / "f.mp4"
        with FilmWriter(out, W, H, fps=10, preset="ultrafast") as w:
            w.write(solid((9, 9, 9)))
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
    finally:
        os.umask(mask)


def test_the_encoder_keeps_to_a_jobs_thread_share(tmp_path, monkeypatch):
    out = tmp_path / "f.mp4"
    monkeypatch.delenv("LLSTUDIO_THREADS", raising=False)
    assert "-threads" not in FilmWriter(out, W, H, fps=12)._command()  # alone on the machine: ffmpeg's choice
    assert FilmWriter(out, W, H, fps=12, threads=3)._command()[-3:-1] == ["-threads", "3"]
    monkeypatch.setenv("LLSTUDIO_THREADS", "1")  # a --jobs worker's share
    with FilmWriter(out, W, H, fps=12, preset="ultrafast") as w:
        assert w._command()[-3:-1] == ["-threads", "1"]
        for c in [(20, 20, 20), (200, 200, 200)]:
            w.write(solid(c))
    assert len(decode(out)[1]) == 2


# ------------------------------------------------------------------------------------ temporary films


def _dead_owner() -> str:
    import os
    import subprocess
    import sys

    from llstudio.files import _owner

    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True).stdout)
    assert not os.path.exists(f"/proc/{pid}")
    return f"{_owner().split('~')[0]}~{pid}"


@pytest.mark.parametrize("fmt, name", [("mp4", "film.mp4"), ("png", "frames")])
def test_temporary_film_names_its_owner_and_sweeps_killed_ones(tmp_path, fmt, name):
    """The film being written is .NAME.host~pid.TAG.part(.SUFFIX), like the cache's temporary files; a killed
    render's (its owner gone) is removed when the next film is written in that folder."""
    from llstudio.files import _owner

    killed = tmp_path / (f".film.mp4.{_dead_owner()}.0a1b.part.mp4" if fmt == "mp4" else
                         f".frames.{_dead_owner()}.0a1b.part")
    if fmt == "mp4":
        killed.write_bytes(b"half a film")
    else:
        killed.mkdir()
        (killed / "frame_00000.png").write_bytes(b"x")
    other = tmp_path / ".film.mp4.otherhost~1.0a1b.part.mp4"  # another host's, maybe still being written
    other.write_bytes(b"x")
    with FilmWriter(tmp_path / name, 64, 48, 10, format=fmt) as w:
        during = sorted(p.name for p in tmp_path.iterdir())
        w.write(solid((10, 20, 30)))
    assert not killed.exists() and other.exists()
    [tmp] = [n for n in during if n != other.name]
    suffix = ".mp4" if fmt == "mp4" else ""
    assert tmp.startswith(f".{name}.{_owner()}.") and tmp.endswith(".part" + suffix)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, other.name])
