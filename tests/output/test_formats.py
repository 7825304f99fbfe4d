"""Output formats (real ffmpeg, tiny frames, decoded back), transparency, and the overlapped writer."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import decode, make_scene, stream_info
from llstudio.output.encode import GIF_MAX_WIDTH, FilmWriter, available_encoders, output_frames
from llstudio.errors import RenderError, SceneError, UsageError
from llstudio.config.checks import format_problems
from llstudio.config.presets import FORMATS

W, H = 64, 48
GREYS = [(20, 20, 20), (128, 128, 128), (230, 230, 230)]  # greys decode the same under any YUV matrix


def solid(rgb, alpha=None, w=W, h=H) -> np.ndarray:
    px = list(rgb) + ([] if alpha is None else [alpha])
    return np.broadcast_to(np.array(px, dtype=np.uint8), (h, w, len(px))).copy()


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_every_format_has_its_encoder():
    assert {f.encoder for f in FORMATS.values()} <= available_encoders()


@pytest.mark.parametrize("fmt, codec", [("mp4", "h264"), ("webm", "vp9")])
def test_yuv420_formats_decode_back(tmp_path, fmt, codec):
    out = tmp_path / f"f{FORMATS[fmt].suffix}"
    with FilmWriter(out, W, H, fps=12, crf=10, preset="ultrafast", format=fmt) as w:
        for c in GREYS:
            w.write(solid(c))
    info = stream_info(out)
    assert f"Video: {codec}" in info and "yuv420p(tv, bt709" in info and f"{W}x{H}" in info, info
    meta, frames = decode(out)
    assert meta["fps"] == 12 and tuple(meta["size"]) == (W, H) and len(frames) == 3
    for f, c in zip(frames, GREYS):
        np.testing.assert_allclose(f.reshape(-1, 3).mean(axis=0), c, atol=4)
    assert leftovers(tmp_path) == [out.name]


def test_gif_is_capped_in_size_and_rate(tmp_path):
    out = tmp_path / "f.gif"
    w, h, fps, n = 700, 394, 60, 7  # 60 fps → every 3rd frame at 20 fps; 700 px → 640 px wide, even height
    colours = [(30 * i, 255 - 30 * i, 90) for i in range(n)]
    with FilmWriter(out, w, h, fps=fps, format="gif") as wr:
        for c in colours:
            wr.write(solid(c, w=w, h=h))
    assert (wr.frames, wr.encoded, wr.out_fps) == (7, 3, 20.0)
    assert output_frames("gif", n, fps) == (3, 20.0)
    meta, frames = decode(out)
    assert tuple(meta["size"]) == (GIF_MAX_WIDTH, 360) and meta["fps"] == 20 and len(frames) == 3
    # the kept frames are 0, 3 and 6, with their colours (a palette of the film's colours: close, not exact)
    for f, c in zip(frames, colours[::3]):
        np.testing.assert_allclose(f.reshape(-1, 3).mean(axis=0), c, atol=6)
    assert "Video: gif" in stream_info(out)


@pytest.mark.parametrize("alpha", [False, True], ids=["opaque", "alpha"])
def test_prores_4444(tmp_path, alpha):
    out = tmp_path / "f.mov"
    frame = solid((200, 60, 30), 255 if alpha else None)
    if alpha:
        frame[:, : W // 2, 3] = 0  # left half transparent
    with FilmWriter(out, W, H, fps=10, format="prores", alpha=alpha) as w:
        for _ in range(2):
            w.write(frame)
    info = stream_info(out)
    # the bitstream is 4444 (ap4h) with or without alpha; ffmpeg's decoder widens 10-bit samples to 12 bits
    assert "prores (4444) (ap4h" in info and f"{W}x{H}" in info and "bt709" in info, info
    assert ("yuva444p" in info) == alpha, info
    meta, frames = decode(out, rgba=True)
    assert len(frames) == 2 and tuple(meta["size"]) == (W, H)
    f = frames[0].astype(int)
    np.testing.assert_allclose(f[:, W // 2 + 2:, :3].reshape(-1, 3).mean(axis=0), (200, 60, 30), atol=3)
    if alpha:
        assert (f[:, : W // 2 - 2, 3] == 0).all() and (f[:, W // 2 + 2:, 3] == 255).all()
    else:
        assert (f[..., 3] == 255).all()


def test_prores_flags_in_command(tmp_path):
    w = FilmWriter(tmp_path / "f.mov", W, H, fps=10, format="prores", alpha=True)
    w._tmp = str(tmp_path / "t.mov")
    cmd = w._command()
    for opt, val in [("-c:v", "prores_ks"), ("-profile:v", "4444"), ("-pix_fmt", "yuva444p10le")]:
        assert cmd[cmd.index(opt, cmd.index("pipe:0")) + 1] == val


@pytest.mark.parametrize("alpha", [False, True], ids=["rgb", "rgba"])
def test_png_sequence(tmp_path, alpha):
    from PIL import Image

    out = tmp_path / "seq"
    frames = [solid(c, 128 if alpha else None) for c in GREYS]
    with FilmWriter(out, W, H, fps=10, format="png", alpha=alpha) as w:
        for f in frames:
            w.write(f)
    assert leftovers(tmp_path) == ["seq"]
    assert leftovers(out) == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    for i, f in enumerate(frames):
        img = Image.open(out / f"frame_{i:05d}.png")
        assert img.mode == ("RGBA" if alpha else "RGB") and img.size == (W, H)
        np.testing.assert_array_equal(np.asarray(img), f)  # PNG is lossless


def test_png_sequence_replaces_an_old_one_whole(tmp_path):
    out = tmp_path / "seq"
    out.mkdir()
    for i in range(5):
        (out / f"frame_{i:05d}.png").write_bytes(b"old")
    with FilmWriter(out, W, H, fps=10, format="png") as w:
        w.write(solid((1, 2, 3)))
    assert leftovers(out) == ["frame_00000.png"]
    assert leftovers(tmp_path) == ["seq"]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_error_mid_film_leaves_nothing_and_keeps_the_old_film(tmp_path, fmt):
    out = tmp_path / f"f{FORMATS[fmt].suffix}"
    if fmt == "png":
        out.mkdir()
        (out / "frame_00000.png").write_bytes(b"old")
    else:
        out.write_bytes(b"the old film")
    with pytest.raises(RuntimeError, match="render failed"):
        with FilmWriter(out, W, H, fps=10, preset="ultrafast", format=fmt) as w:
            for c in GREYS:
                w.write(solid(c))
            raise RuntimeError("render failed")
    assert leftovers(tmp_path) == [out.name]
    if fmt == "png":
        assert (out / "frame_00000.png").read_bytes() == b"old" and leftovers(out) == ["frame_00000.png"]
    else:
        assert out.read_bytes() == b"the old film"


@pytest.mark.parametrize("queue_frames", [None, 0], ids=["threaded", "synchronous"])
def test_ffmpeg_dying_mid_film_is_an_error_and_leaves_nothing(tmp_path, queue_frames):
    out = tmp_path / "f.mp4"
    big = solid((50, 60, 70), w=640, h=480)  # larger than a pipe's buffer
    with pytest.raises(RenderError, match="ffmpeg"):
        with FilmWriter(out, 640, 480, fps=10, preset="ultrafast", queue_frames=queue_frames) as w:
            w.write(big)
            w._proc.kill()
            for _ in range(50):  # the writer notices the broken pipe and says so on a later write
                w.write(big)
    assert leftovers(tmp_path) == []


def test_writes_do_not_wait_for_ffmpeg(tmp_path):
    """With ffmpeg frozen, write() still accepts a queue's worth of frames: rendering overlaps encoding."""
    out = tmp_path / "f.mp4"
    frame = solid((90, 90, 90), w=640, h=480)
    with FilmWriter(out, 640, 480, fps=10, preset="ultrafast", queue_frames=4) as w:
        w.write(frame)
        os.kill(w._proc.pid, signal.SIGSTOP)
        try:
            t = threading.Thread(target=lambda: [w.write(frame) for _ in range(4)])
            t.start()
            t.join(30)
            accepted = not t.is_alive()
        finally:
            os.kill(w._proc.pid, signal.SIGCONT)
        t.join()
        assert accepted, "write() blocked while ffmpeg was stopped, with room left in the queue"
    meta, frames = decode(out)
    assert len(frames) == 5


def test_alpha_needs_a_format_with_alpha(tmp_path):
    with pytest.raises(RenderError, match="png or prores"):
        FilmWriter(tmp_path / "f.mp4", W, H, fps=10, format="mp4", alpha=True)
    with pytest.raises(RenderError, match="expected"):
        with FilmWriter(tmp_path / "f.mov", W, H, fps=10, format="prores", alpha=True) as w:
            w.write(solid((1, 2, 3)))  # RGB where RGBA belongs
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------- scene


def test_scene_format_and_transparency_checks():
    assert make_scene().output.format == "mp4"
    make_scene(look={"background": "transparent"}, output={"format": "prores"})
    from llstudio.pipeline.render import film_format  # the render stage's check (torch: only here)

    # A transparent mp4 scene loads (the command line may choose png); its own format is checked by check and render.
    transparent = make_scene(look={"background": "transparent"})
    [(path, msg)] = format_problems(transparent)
    assert path == "look.background" and msg.startswith("'transparent' needs an output format with alpha")
    assert format_problems(transparent, "png") == [] and format_problems(transparent, "prores") == []
    with pytest.raises(SceneError, match=r"look\.background: 'transparent' needs an output format with alpha"):
        film_format(transparent)
    assert film_format(transparent, fmt="png") == "png" and film_format(transparent, Path("t.mov")) == "prores"
    with pytest.raises(SceneError, match=r"output\.path: .* does not fit output\.format = 'webm'"):
        make_scene(output={"format": "webm", "path": "films/x.mp4"})
    with pytest.raises(SceneError, match=r"output\.format"):
        make_scene(output={"format": "avi"})
    with pytest.raises(SceneError, match=r"look\.contour_color"):
        make_scene(look={"contour_color": "transparent"})  # only the background can be transparent


def test_format_follows_flag_then_suffix_then_scene():
    from llstudio.pipeline import default_output, film_format

    scene = make_scene("s/tiny.toml", output={"format": "webm"})
    assert film_format(scene) == "webm" and default_output(scene) == default_output(scene, "webm")
    assert str(default_output(scene)) == os.path.join("renders", "tiny.webm")
    assert str(default_output(scene, "png")) == os.path.join("renders", "tiny")
    assert film_format(scene, "x.gif") == "gif"
    assert film_format(scene, "x.mov", "prores") == "prores"
    with pytest.raises(UsageError, match="does not fit format 'gif'"):
        film_format(scene, "x.mp4", "gif")
    with pytest.raises(SceneError, match=r"look\.background: .transparent. needs .* \(it is .mp4.\)"):
        film_format(make_scene(look={"background": "transparent"}, output={"format": "png"}), fmt="mp4")


# ------------------------------------------------------------------------------------------------ render


def _transparent(capture, anti_aliasing):
    scene = capture.scene
    look = scene.look.model_copy(update={"background": "transparent", "anti_aliasing": anti_aliasing})
    return dataclasses.replace(capture, scene=scene.model_copy(update={"look": look}))


@pytest.mark.render
@pytest.mark.parametrize("aa", ["none", "msaa"])
def test_transparent_png_film_has_transparent_background(tiny_capture, tmp_path, aa):
    from PIL import Image

    from llstudio.pipeline import render_film

    out = render_film(_transparent(tiny_capture, aa), output=tmp_path / "seq", quality="l", frames="0:2",
                      format="png")
    assert out == tmp_path / "seq" and leftovers(tmp_path) == ["seq", "seq.json"]
    assert leftovers(out) == ["frame_00000.png", "frame_00001.png"]
    img = np.asarray(Image.open(out / "frame_00000.png"))
    assert img.shape == (480, 854, 4)
    a = img[..., 3]
    assert (a[0, :] == 0).all() and (a[:, -1] == 0).all()  # the border is background: fully transparent
    assert 0.05 < (a == 255).mean() < 0.95  # the surface is opaque
    info = json.loads((tmp_path / "seq.json").read_text())
    assert info["format"] == "png" and info["alpha"] is True and info["file"]["frames"] == 2


@pytest.mark.render
def test_transparent_prores_film(tiny_capture, tmp_path):
    from llstudio.pipeline import render_film

    out = render_film(_transparent(tiny_capture, "msaa"), output=tmp_path / "f.mov", quality="l", frames="0:3")
    assert "yuva444p" in stream_info(out)
    meta, frames = decode(out, rgba=True)
    assert len(frames) == 3 and tuple(meta["size"]) == (854, 480)
    a = frames[0][..., 3]
    assert (a[0, :] == 0).all() and 0.05 < (a == 255).mean() < 0.95


@pytest.mark.render
def test_gif_film_through_the_pipeline(tiny_capture, tmp_path):
    from llstudio.pipeline import render_film

    out = render_film(tiny_capture, output=tmp_path / "f.gif", quality="l", frames="0:5")
    meta, frames = decode(out)
    info = json.loads((tmp_path / "f.json").read_text())
    assert info["format"] == "gif" and info["file"] == {"frames": 5, "fps": 15, "size": [640, 360]}
    assert tuple(meta["size"]) == (640, 360) and len(frames) == 5


# ----------------------------------------------------------------------------------------------------- cli






@pytest.mark.render
def test_transparent_still_is_an_rgba_png(tiny_capture, tmp_path):
    from PIL import Image

    from llstudio.pipeline import render_still

    out = render_still(_transparent(tiny_capture, "msaa"), 3, output=tmp_path / "s.png", quality="l")
    img = np.asarray(Image.open(out))
    assert img.shape == (480, 854, 4) and img[0, 0, 3] == 0 and (img[..., 3] == 255).any()
