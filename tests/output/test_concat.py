"""Segments joined without re-encoding (real ffmpeg, small synthetic frames, decoded back): exactly the frames of
a whole encode where the codec allows (lossless H.264, ProRes, PNG), within encoder noise where it does not."""

from __future__ import annotations

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from conftest import decode
from llstudio.config.presets import FORMATS
from llstudio.errors import RenderError
from llstudio.output.concat import available_demuxers, concat_list, demuxer_names, join, join_sequences
from llstudio.output.encode import FilmWriter

W, H, N, FPS = 96, 64, 30, 10


def moving_frames(n: int = N) -> np.ndarray:
    """(n, H, W, 3) uint8: a smooth gradient with a bright disc crossing it, like a film's slow camera move."""
    y, x = np.mgrid[0:H, 0:W]
    frames = []
    for i in range(n):
        cx, cy = 10 + 2.5 * i, 20 + 12 * np.sin(i / 5)
        disc = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 60.0)
        rgb = np.stack([x / W * 200 + 40 * disc, y / H * 180 + 60 * disc, 120 + 100 * disc], axis=-1)
        frames.append(np.clip(rgb, 0, 255).astype(np.uint8))
    return np.stack(frames)


def encode(path, frames, fmt, crf=18, preset="veryfast"):
    with FilmWriter(path, W, H, FPS, crf, preset, format=fmt) as w:
        for f in frames:
            w.write(f)
    return path


def timestamps(path) -> list[tuple[str, str]]:
    """(pts, duration) of every decoded frame, from ffmpeg's framemd5."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v",
                          "-f", "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    rows = [ln.split(",") for ln in out.splitlines() if not ln.startswith("#")]
    return [(r[2].strip(), r[3].strip()) for r in rows]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def whole_and_split(tmp_path, fmt, crf, cuts=(12, 21)):
    frames = moving_frames()
    suffix = FORMATS[fmt].suffix
    whole = encode(tmp_path / f"whole{suffix}", frames, fmt, crf)
    bounds = [0, *cuts, N]
    segs = [encode(tmp_path / f"seg{i}{suffix}", frames[a:b], fmt, crf) for i, (a, b) in
            enumerate(zip(bounds, bounds[1:]))]
    joined = join(segs, tmp_path / f"joined{suffix}", fmt)
    return whole, joined


@pytest.mark.parametrize("fmt, crf", [("mp4", 0), ("prores", 18)])
def test_lossless_and_intra_segments_join_to_the_whole_films_frames(tmp_path, fmt, crf):
    where = tmp_path / "it's a [film]"  # the concat list quotes what the shell and ffmpeg would trip over
    where.mkdir()
    whole, joined = whole_and_split(where, fmt, crf)
    (_, a), (_, b) = decode(whole), decode(joined)
    assert len(a) == len(b) == N
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert timestamps(joined) == timestamps(whole)


# Measured here: at least 42.8 dB (mp4, crf 18) and 41.3 dB (webm, crf 30) between whole and joined frames; the
# bounds leave a margin for encoders that thread differently on other machines.
@pytest.mark.parametrize("fmt, crf, min_psnr", [("mp4", 18, 40), ("webm", 30, 38)])
def test_lossy_segments_join_within_encoder_noise(tmp_path, fmt, crf, min_psnr):
    whole, joined = whole_and_split(tmp_path, fmt, crf)
    (meta_a, a), (meta_b, b) = decode(whole), decode(joined)
    assert len(a) == len(b) == N and meta_a["fps"] == meta_b["fps"] == FPS
    assert timestamps(joined) == timestamps(whole)
    source = moving_frames()
    # Not bit for bit (rate control and lookahead restart in every segment), but close to the whole encode, and
    # as close to the rendered frames as the whole encode is.
    assert min(psnr(x, y) for x, y in zip(a, b)) > min_psnr
    assert np.mean([psnr(y, s) for y, s in zip(b, source)]) > np.mean([psnr(x, s) for x, s in zip(a, source)]) - 0.5


def test_mp4_join_keeps_the_index_first(tmp_path):
    _, joined = whole_and_split(tmp_path, "mp4", 18)
    head = joined.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


def test_png_sequences_join_renumbered(tmp_path):
    frames = moving_frames(7)
    segs = [encode(tmp_path / "a", frames[:3], "png"), encode(tmp_path / "b", frames[3:], "png")]
    out = join_sequences(segs, tmp_path / "film")
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(7)]
    _, back = decode(out / "frame_00004.png")
    assert np.array_equal(back[0], frames[4])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_concat_list_quotes_paths(tmp_path):
    p = tmp_path / "it's.mp4"
    assert concat_list([p]) == "file '" + str(p).replace("'", "'\\''") + "'\n"


def test_join_refuses_what_it_cannot_join(tmp_path):
    seg = encode(tmp_path / "a.gif", moving_frames(3), "gif")
    with pytest.raises(RenderError, match="only mp4, webm, prores"):
        join([seg], tmp_path / "b.gif", "gif")
    with pytest.raises(RenderError, match="no segments"):
        join([], tmp_path / "c.mp4", "mp4")


def test_a_failed_join_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a film")
    with pytest.raises(RenderError, match="could not join"):
        join([bad], tmp_path / "out.mp4", "mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


def test_the_film_writers_ffmpeg_has_the_concat_demuxer():
    assert "concat" in available_demuxers() and "mov" in available_demuxers()


def test_demuxer_listing_is_parsed():
    listing = """File formats:
 D. = Demuxing supported
 .E = Muxing supported
 --
 D  concat          Virtual concatenation script
 DE matroska,webm   Matroska / WebM
  E mp4             MP4 (MPEG-4 Part 14)
"""
    assert demuxer_names(listing) == {"concat", "matroska", "webm"}
