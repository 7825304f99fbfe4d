"""The look: lighting, background gradient, contour view, overlays (legend, loss inset, cards), 1D curves,
anti-aliasing, contact sheets and a decoded film without jumps. Real VTK off-screen, at 160x90."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from llstudio.config.scene import LookSpec
from llstudio.film.timeline import CardState, FrameState
from llstudio.renderer.layout import text_size

from conftest import make_scene

pytestmark = pytest.mark.render

W, H = 160, 90
ALPHAS = np.linspace(-1.0, 1.0, 9)
BETAS = np.linspace(-1.0, 1.0, 7)
A, B = np.meshgrid(ALPHAS, BETAS, indexing="ij")
BOWL = (A - 0.2) ** 2 + 0.6 * B**2
POSE = ((3.5, -3.0, 3.0), (0.0, 0.0, 0.5), (0.0, 0.0, 1.0))
CURVE = (np.arange(100.0), 2.0 * np.exp(-np.arange(100.0) / 30) + 0.1)
# A plain background (no 'auto' gradient): the tests tell the surface from the background by colour.
BARE = dict(anti_aliasing="none", overlay=False, contours=0, marker=False, trail=False, arrows=False,
            background_top="none")


def state(values=BOWL, step=50.0, **kw) -> FrameState:
    return FrameState(0, values, step, 1.0, float(values.min()), float(values.max()), **kw)


def render(look: dict, st=None, pose=POSE, alphas=ALPHAS, betas=BETAS, width=W, height=H, **kw):
    from llstudio.renderer.plotter import SurfaceRenderer

    with SurfaceRenderer(alphas, betas, LookSpec(**look), width, height, z_scale=0.5, **kw) as r:
        return r.render(st if st is not None else state(), pose)


def changed(a, b, tol=12) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2) > tol


def hex_rgb(h: str) -> np.ndarray:
    h = h.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)])


@pytest.mark.parametrize("pbr", [False, True])
def test_contour_lines_are_drawn_on_the_surface_by_its_shader(pbr):
    plain = render(dict(BARE, background="#000000", pbr=pbr))
    lined = render(dict(BARE, background="#000000", pbr=pbr, contours=5, contour_color="#ff00ff"))
    diff = changed(lined, plain)
    assert 0.005 < diff.mean() < 0.25  # thin lines on the surface, no more
    assert (lined.sum(axis=2) > 30).mean() == pytest.approx((plain.sum(axis=2) > 30).mean(), abs=0.01)
    # The lines are magenta-ish: more red and blue than the surface under them.
    d = lined[diff].astype(int) - plain[diff].astype(int)
    assert np.median(d[:, 0]) > 0 and np.median(d[:, 2]) > 0


def behind_a_wall(look: dict, **shown) -> tuple[np.ndarray, np.ndarray]:
    """(with ghosts, without) frames of what ``shown`` puts on a flat floor behind a wall in front of the camera."""
    from llstudio.renderer.plotter import SurfaceRenderer

    ridge = np.where(B < -0.3, 2.0, 0.0) + 0.0 * A  # a wall in front of the camera, flat floor behind it
    pose = ((2.5, -4.0, 1.2), (0.0, 0.0, 0.5), (0.0, 0.0, 1.0))
    with SurfaceRenderer(ALPHAS, BETAS, LookSpec(**dict(BARE, background="#000000", colormap="gray", **look)),
                         W, H, z_scale=0.5) as r:
        ghosts = r.render(state(ridge, **shown), pose)
        r.top.DrawOff()  # the layer of ghosts
        return ghosts, r.render(state(ridge, **shown), pose)


def dominant(img: np.ndarray, channel: int) -> np.ndarray:
    """Pixels where ``channel`` stands out over the other two by more than 40."""
    others = [c for c in range(3) if c != channel]
    return img[..., channel].astype(int) - img[..., others].max(axis=2) > 40


def test_a_path_and_marker_behind_a_ridge_show_through_as_ghosts():
    trail = np.column_stack([np.linspace(-0.8, 0.8, 30), np.full(30, 0.4)])
    ghosts, hidden = behind_a_wall(dict(trail=True, trail_color="#ff0000", marker=True, marker_color="#00ff00"),
                                   trail=trail, marker=(0.0, 0.4))
    assert not dominant(hidden, 0).any() and not dominant(hidden, 1).any()  # the wall hides both
    assert dominant(ghosts, 0).sum() > 10 and dominant(ghosts, 1).sum() > 5


def test_an_arrow_and_critical_points_behind_a_ridge_show_through_as_ghosts():
    from llstudio.film.critical import CriticalPoint

    ghosts, hidden = behind_a_wall(dict(arrows=True, arrow_color="#ff0000", critical_points=True),
                                   arrow=((-0.6, 0.4), (0.6, 0.4)),
                                   critical=(CriticalPoint("minimum", 0.0, 0.5, 0.0),))  # blue (CRITICAL_COLORS)
    assert not dominant(hidden, 0).any() and not dominant(hidden, 2).any()  # the wall hides both
    assert dominant(ghosts, 0).sum() > 10 and dominant(ghosts, 2).sum() > 3


def test_background_gradient_runs_from_bottom_to_top():
    img = render(dict(BARE, background="#000000", background_top="#4080ff"))
    np.testing.assert_allclose(img[0, -1], hex_rgb("#4080ff"), atol=4)
    np.testing.assert_allclose(img[-1, -1], [0, 0, 0], atol=4)
    column = img[:, -1, 2].astype(int)
    assert np.all(np.diff(column) <= 1)  # blue fades steadily from top to bottom


def test_lighting_presets_differ_and_flat_shows_the_colormap_exactly():
    import matplotlib

    imgs = {name: render(dict(BARE, lighting=name, background="#000000")) for name in
            ("studio", "soft", "dramatic", "flat")}
    for a in imgs:
        for b in imgs:
            if a < b:
                assert changed(imgs[a], imgs[b], 6).mean() > 0.02, (a, b)
    # Unlit: every surface pixel is a viridis colour (up to the 8-bit colour table VTK uses).
    lut = (matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255)
    surf = imgs["flat"][imgs["flat"].sum(axis=2) > 30].astype(float)
    dist = np.min(np.linalg.norm(surf[:, None, :] - lut[None], axis=2), axis=1)
    assert np.percentile(dist, 95) < 6, np.percentile(dist, 95)


def test_pbr_and_wireframe_change_the_surface():
    plain = render(BARE)
    assert changed(render(dict(BARE, pbr=True, metallic=0.8, roughness=0.3)), plain).mean() > 0.02
    wire = render(dict(BARE, wireframe=True, wireframe_color="#ff00ff"))
    diff = changed(wire, plain)
    assert 0.005 < diff.mean() < 0.3  # lines over the surface, not a new surface


def test_contour_view_is_a_top_down_map_with_the_marker():
    look = dict(BARE, view="contours", contours=8, marker=True)
    st = state(marker=(0.2, 0.0))
    # Twice the usual frame: the anti-aliased lines between the bands blend a few pixels each, a large share of
    # the 160 x 90 map.
    W, H = 320, 180
    img = render(look, st, width=W, height=H)
    surface = render(dict(BARE, marker=True), st, width=W, height=H)
    assert changed(img, surface).mean() > 0.1
    bg = hex_rgb(LookSpec().background)
    covered = np.abs(img.astype(int) - bg).max(axis=2) > 10
    rows, cols = np.nonzero(covered)
    # A square map centred in the frame, whatever the pose (the camera is fixed).
    h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert abs(h - w) <= 3 and 0.7 * H < h < H
    assert abs((cols.min() + cols.max()) / 2 - W / 2) <= 2
    np.testing.assert_array_equal(render(look, st, pose=((0.0, -4.0, 1.0), (0, 0, 0), (0, 0, 1)), width=W,
                                         height=H), img)
    # Filled contours: a handful of flat colour bands, not a smooth ramp.
    inner = img[rows.min() + 3:rows.max() - 3, cols.min() + 3:cols.max() - 3].reshape(-1, 3)
    colours, counts = np.unique(inner, axis=0, return_counts=True)
    assert counts[np.argsort(counts)[-9:]].sum() > 0.7 * len(inner)
    # The marker (orange-red) sits at alpha 0.2, beta 0: right of centre, on the middle row.
    red = (img[..., 0] > 180) & (img[..., 1] < 140) & (img[..., 2] < 120)
    ys, xs = np.nonzero(red)
    assert len(xs) > 0
    assert xs.mean() == pytest.approx(W / 2 + 0.1 * w, abs=3) and ys.mean() == pytest.approx(H / 2, abs=3)


def test_loss_inset_draws_in_its_corner_and_its_dot_moves():
    look = dict(BARE, loss_inset=True, inset_corner="top_right")
    base = render(BARE, state(curve=CURVE))
    early = render(look, state(step=5.0, curve=CURVE))
    late = render(look, state(step=90.0, curve=CURVE))
    diff = changed(early, base)
    ys, xs = np.nonzero(diff)
    assert diff.mean() > 0.02
    assert xs.min() > W * 0.6 and ys.max() < H * 0.35  # only the top-right corner changed
    moved = changed(early, late)
    ys, xs = np.nonzero(moved)
    assert moved.any() and xs.min() > W * 0.6 and ys.max() < H * 0.35
    # no curve data, no inset
    np.testing.assert_array_equal(render(look, state()), render(BARE, state()))


def test_legend_draws_at_the_right_edge():
    base = render(BARE)
    img = render(dict(BARE, legend=True), width=320, height=180)
    big = render(BARE, width=320, height=180)
    diff = changed(img, big)
    ys, xs = np.nonzero(diff)
    assert diff.any() and xs.min() > 320 * 0.75
    assert base.shape == (H, W, 3)


def test_trail_coloured_by_loss():
    trail = np.column_stack([np.linspace(-0.8, 0.2, 20), np.linspace(0.8, 0.0, 20)])
    st = state(trail=trail, trail_values=np.linspace(BOWL.max(), BOWL.min(), 20))
    solid = render(dict(BARE, trail=True), st)
    by_loss = render(dict(BARE, trail=True, trail_coloring="loss"), st)
    assert changed(solid, by_loss).any()
    none = render(BARE, st)
    assert changed(by_loss, none).any()


def test_epoch_in_the_overlay():
    def one_line(text):  # a 160-pixel frame breaks the text into lines
        return text.replace("\n", "    ")

    from llstudio.renderer.plotter import SurfaceRenderer

    with SurfaceRenderer(ALPHAS, BETAS, LookSpec(anti_aliasing="none"), W, H, z_scale=0.5) as r:
        r.render(state(step=1234.0, epoch=2.5), POSE)
        assert one_line(r.info_text) == "step 1,234    epoch 2.50    loss 1"
        r.render(state(step=7.0), POSE)
        assert one_line(r.info_text) == "step 7    loss 1"
    with SurfaceRenderer(ALPHAS, BETAS, LookSpec(anti_aliasing="none", epoch=False), W, H, z_scale=0.5) as r:
        r.render(state(step=7.0, epoch=2.5), POSE)
        assert one_line(r.info_text) == "step 7    loss 1"


def test_cards_veil_the_scene_and_draw_text():
    from llstudio.renderer.plotter import SurfaceRenderer

    look = LookSpec(**dict(BARE, background_top="#303050"))
    with SurfaceRenderer(ALPHAS, BETAS, look, W, H, z_scale=0.5) as r:
        scene = r.render(state(), POSE)
        bg = r.background_image()
        blank = r.render(state(card=CardState("Title", "sub", 0.0, 1.0)), POSE)
        titled = r.render(state(card=CardState("Title", "sub", 1.0, 1.0)), POSE)
        half = r.render(state(card=CardState("Title", "", 0.0, 0.5)), POSE)
        clear = r.render(state(card=CardState("Title", "", 0.0, 0.0)), POSE)
    np.testing.assert_array_equal(blank, bg)
    text = changed(titled, bg, 30)
    ys, xs = np.nonzero(text)
    assert text.any() and abs(xs.mean() - W / 2) < 8 and abs(ys.mean() - H / 2) < 12
    np.testing.assert_array_equal(clear, scene)
    mid = (scene.astype(float) + bg) / 2
    assert np.abs(half - mid).max() <= 1.0


@pytest.mark.parametrize("view", ["surface", "contours"])
def test_one_dimensional_capture_renders_as_a_curve(view):
    from llstudio.renderer.plotter import SurfaceRenderer

    alphas, betas = np.linspace(-1.0, 1.0, 41), np.array([0.0])
    values = ((alphas - 0.3) ** 2)[:, None] + 0.1  # (nx, 1)
    look = LookSpec(anti_aliasing="none", overlay=False, view=view, background_top="none")
    pose = ((0.4, -5.0, 1.2), (0.0, 0.0, 0.5), (0.0, 0.0, 1.0))
    with SurfaceRenderer(alphas, betas, look, W, H, z_scale=0.5) as r:
        img = r.render(state(values, marker=(0.3, 0.0)), pose)
        assert r.one_d and r.contour_actor is None
        x, y, z = r.marker_actor.GetPosition()
        # The marker sits on the curve at alpha 0.3, the minimum: height 0 plus its lift.
        assert (x, y) == pytest.approx((0.3, 0.0)) and z == pytest.approx(0.01 * 2.0, abs=1e-6)
        assert r.curve.n_points > 100  # the tube
        zs = np.asarray(r.grid.points)[:, 2]
        assert zs.min() == 0.0 and zs.max() == pytest.approx(1.0)
    bg = hex_rgb(LookSpec().background)
    covered = np.abs(img.astype(int) - bg).max(axis=2) > 10
    assert 0.03 < covered.mean() < 0.8
    # a U-shaped curve: the covered region reaches higher at the sides than at the minimum
    cols = np.nonzero(covered.any(axis=0))[0]
    top = [np.nonzero(covered[:, c])[0].min() for c in cols]
    assert min(top[: len(top) // 5]) < np.median(top[len(top) // 3: 2 * len(top) // 3])


def test_anti_aliasing_resolution_and_ssaa_smooths_edges():
    from llstudio.renderer.plotter import resolve_anti_aliasing

    assert [resolve_anti_aliasing("auto", h) for h in (480, 720, 1080, 1440, 2160)] == \
        ["msaa", "msaa", "ssaa", "ssaa", "ssaa"]
    assert resolve_anti_aliasing("none", 2160) == "none"
    # SSAA is exactly the 2x2 box average of the same scene drawn at twice the size.
    none = render(dict(BARE, anti_aliasing="none"))
    ssaa = render(dict(BARE, anti_aliasing="ssaa"))
    big = render(dict(BARE, anti_aliasing="none"), width=2 * W, height=2 * H)
    box = (big.reshape(H, 2, W, 2, 3).astype(int).sum(axis=(1, 3)) + 2) // 4
    assert ssaa.shape == (H, W, 3)
    assert np.abs(ssaa.astype(int) - box).max() <= 1
    # ... which blends the pixels along the surface's edges: more distinct colours than without it.
    assert len(np.unique(ssaa.reshape(-1, 3), axis=0)) > len(np.unique(none.reshape(-1, 3), axis=0))


def test_fxaa_blends_edges_in_place_and_the_reference_supersamples_four_times():
    none = render(dict(BARE, anti_aliasing="none"))
    fxaa = render(dict(BARE, anti_aliasing="fxaa"))
    # A pass over the finished picture: same size, the same scene, its edges blended (more distinct colours).
    assert fxaa.shape == (H, W, 3)
    assert changed(none, fxaa, tol=60).mean() < 0.01
    assert len(np.unique(fxaa.reshape(-1, 3), axis=0)) > len(np.unique(none.reshape(-1, 3), axis=0))
    # benchmarks/render.py's PSNR reference: supersample=4, the 4x4 box average of the scene at 4x the size.
    ref = render(dict(BARE, anti_aliasing="none"), supersample=4)
    big = render(dict(BARE, anti_aliasing="none"), width=4 * W, height=4 * H)
    box = (big.reshape(H, 4, W, 4, 3).astype(int).sum(axis=(1, 3)) + 8) // 16
    assert ref.shape == (H, W, 3) and np.abs(ref.astype(int) - box).max() <= 1


def test_fxaa_is_refused_with_a_transparent_background():
    from llstudio.errors import RenderError

    with pytest.raises(RenderError, match="fxaa.*transparent"):
        render(dict(BARE, anti_aliasing="fxaa", background="transparent"))


def test_contact_sheet_tiles_exactly():
    from llstudio.renderer.overlay import contact_sheet, sheet_shape

    assert sheet_shape(9, 16 / 9) == (3, 3)
    assert sheet_shape(1, 16 / 9) == (1, 1)
    tiles = [np.full((18, 32, 3), 20 * i, dtype=np.uint8) for i in range(5)]
    sheet = contact_sheet(tiles, [f"#{i}" for i in range(5)], cols=3, gap=4)
    strip = max(12, 18 // 9)
    assert sheet.shape == (2 * (18 + strip) + 3 * 4, 3 * 32 + 4 * 4, 3)
    for i in range(5):
        r, c = divmod(i, 3)
        y, x = 4 + r * (18 + strip + 4), 4 + c * (32 + 4)
        np.testing.assert_array_equal(sheet[y:y + 18, x:x + 32], tiles[i])


def test_contact_sheet_of_a_film(tiny_capture, tmp_path):
    from PIL import Image

    from llstudio.renderer.overlay import sheet_shape
    from llstudio.pipeline import make_film, contact_frames, output_settings, render_contact_sheet

    out = render_contact_sheet(tiny_capture, 4, output=tmp_path / "sheet.png", quality="l")
    s = output_settings(tiny_capture.scene, "l")
    rows, cols = sheet_shape(4, s.width / s.height)
    w, h = s.width // max(rows, cols) // 2 * 2, s.height // max(rows, cols) // 2 * 2
    strip = max(12, h // 9)
    with Image.open(out) as im:
        assert im.size == (cols * w + (cols + 1) * 4, rows * (h + strip) + (rows + 1) * 4)
    n = make_film(tiny_capture, s).n_frames
    assert contact_frames(n, 4) == [0, round((n - 1) / 3), round(2 * (n - 1) / 3), n - 1]




def test_film_of_a_1d_capture_uses_a_side_camera(tiny_capture):
    from llstudio.pipeline import make_film, OutputSettings

    cap = dataclasses.replace(tiny_capture, betas=np.array([0.0]), loss=tiny_capture.loss[:, :, 2:3],
                              plane_path=np.zeros((len(tiny_capture.steps), 2)))
    film = make_film(cap, OutputSettings(W, H, 10))
    pos, focal, _ = film.pose(0)
    off = np.subtract(pos, focal)
    assert off[1] < -abs(off[0])  # on the -beta side, looking across the curve
    with film.renderer() as r:
        img = film.frame(r, film.n_frames // 2)
    assert img.shape == (H, W, 3) and r.one_d


def test_decoded_film_has_no_jumps_at_captured_steps(tiny_capture, tmp_path):
    """Consecutive-frame differences at the captured steps (and across a card's dissolve) are no spikes."""
    import imageio_ffmpeg

    from llstudio.output.encode import FilmWriter
    from llstudio.pipeline import make_film, OutputSettings

    scene = make_scene(tmp_path / "t.toml", timeline={
        "seconds_per_step": 0.8, "hold_start": 0.0, "hold_end": 0.0, "interpolation": "cubic",
        "speed": [{"at": 0.0, "speed": 0.5}, {"at": 1.0, "speed": 1.5}],
        "title_card": {"text": "T", "seconds": 0.6, "fade": 0.1, "dissolve": 0.5}},
        look={"anti_aliasing": "none", "overlay": False}, camera={"orbit": 20.0})
    film = make_film(dataclasses.replace(tiny_capture, scene=scene), OutputSettings(W, H, 20))
    path = tmp_path / "f.mp4"
    with film.renderer() as r, FilmWriter(path, W, H, 20, 18, "ultrafast") as w:
        for i in range(film.n_frames):
            w.write(film.frame(r, i))
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    assert tuple(meta["size"]) == (W, H)
    frames = np.stack([np.frombuffer(f, np.uint8).reshape(H, W, 3) for f in gen]).astype(np.float32)
    assert len(frames) == film.n_frames
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    sc = film.timeline.schedule
    body = diff[sc.body_start:]
    med = np.median(body)
    assert med > 0
    for k in range(1, len(sc.arrive) - 1):
        f = int(sc.arrive[k])
        assert diff[f - 1] < 3 * med and diff[f] < 3 * med, (k, diff[f - 1], diff[f], med)
    # The title starts on the bare background and dissolves into the film: spread over its frames, each frame
    # changes a fraction of what a cut from background to film would.
    cut = np.abs(frames[sc.body_start] - frames[0]).mean()
    assert cut > 4 * med
    assert diff[: sc.body_start].max() < 0.35 * cut, (diff[: sc.body_start].max(), cut)


def test_run_key_stays_above_a_loss_inset_in_its_corner():
    from PIL import Image

    from llstudio.renderer.overlay import draw_run_key

    img = Image.new("RGB", (200, 120))
    draw_run_key(img, [("first", "#ff0000"), ("second", "#00ff00")], 200, 120, "#ffffff", bottom=60)
    ys, _ = np.nonzero(np.asarray(img).max(axis=2))
    assert len(ys) and ys.max() < 60

    # In a film: only the runs' names differ between the two frames, so every changed pixel is the key's.
    trail = np.zeros((0, 2))
    look = dict(BARE, overlay=True, loss_inset=True, inset_corner="bottom_right")
    runs = lambda second: (("a", (0.0, 0.0), trail), (second, (0.3, 0.2), trail))  # noqa: E731
    width, height = 320, 180
    one = render(look, state(curve=CURVE, runs=runs("bbbbbbbbbb")), width=width, height=height)
    two = render(look, state(curve=CURVE, runs=runs("c")), width=width, height=height)
    ys, xs = np.nonzero(changed(one, two))
    inset_top = height - int(0.22 * height) - int(0.025 * height)
    assert len(ys) and ys.max() < inset_top and xs.min() > width // 2


def test_info_text_breaks_into_lines_in_a_narrow_frame():
    """A panel a few hundred pixels wide would clip 'step … epoch … loss …' on one line: it wraps instead."""
    from llstudio.renderer.plotter import SurfaceRenderer

    width, height = 150, 240
    with SurfaceRenderer(ALPHAS, BETAS, LookSpec(**dict(BARE, overlay=True)), width, height, z_scale=0.5) as r:
        r.render(state(step=123456.0, epoch=12.5), POSE)
        text = r.info_text
        box, size = r.layout.boxes["info"], r.overlays.text._info_size
    assert "\n" in text and text.replace("\n", "    ").startswith("step 123,456")
    assert text_size(text, size)[0] <= box.w <= width - 2 * r.layout.margin
    with SurfaceRenderer(ALPHAS, BETAS, LookSpec(**dict(BARE, overlay=True)), 640, 360, z_scale=0.5) as r:
        r.render(state(step=10.0, epoch=1.0), POSE)
        assert "\n" not in r.info_text  # room enough: one line


def test_title_shrinks_to_fit_a_narrow_frame():
    from llstudio.renderer.plotter import SurfaceRenderer

    title = "contour map and training loss"
    sizes = {}
    for width in (200, 640):
        with SurfaceRenderer(ALPHAS, BETAS, LookSpec(anti_aliasing="none"), width, 480, z_scale=0.5,
                             title=title) as r:
            box = r.layout.boxes["title"]
            assert text_size(title, r.layout.title_size)[0] <= box.w <= width - 2 * r.layout.margin
            sizes[width] = r.layout.title_size
    assert sizes[200] < sizes[640]


def test_occlusion_darkens_basins_and_leaves_open_ground():
    from llstudio.renderer.occlusion import occlusion_factor, openness

    x = np.linspace(-1.0, 1.0, 21)
    X, Y = np.meshgrid(x, x, indexing="ij")
    assert np.allclose(openness(np.zeros((21, 21)), 0.1, 0.1, 4), 1.0)  # a plain sees the whole sky
    assert np.allclose(openness(0.3 * X, 0.1, 0.1, 4)[10], openness(0.3 * X, 0.1, 0.1, 4)[10, 0])  # a slope: even
    bowl = X**2 + Y**2
    f = occlusion_factor(bowl, 2.0, 0.6)
    assert f[10, 10] < f[10, 5] < f[10, 0] <= 1.0 and f.min() >= 0.4  # darker the deeper in the basin
    assert np.allclose(occlusion_factor(bowl, 2.0, 0.0), 1.0)


def test_occlusion_shades_the_surface_but_not_a_flat_map():
    deep = (A**2 + B**2) * 4.0
    plain = render(dict(BARE, background="#000000", occlusion=0.0, specular=0.0), state(deep))
    shaded = render(dict(BARE, background="#000000", occlusion=1.0, specular=0.0), state(deep))
    on = plain.sum(axis=2) > 30
    assert (shaded.sum(axis=2) > 30).mean() == pytest.approx(on.mean(), abs=0.01)  # the same outline
    darker = plain.astype(int).sum(axis=2) - shaded.astype(int).sum(axis=2)
    assert (darker[on] >= -3).all() and (darker[on] > 20).mean() > 0.1  # only darker, and visibly in places
    flat = dict(BARE, view="contours", contours=8)
    np.testing.assert_array_equal(render(dict(flat, occlusion=0.0)), render(dict(flat, occlusion=1.0)))


def test_the_marker_glows_on_the_surface_under_it():
    look = dict(BARE, background="#000000", colormap="gray", occlusion=0.0)
    st = state(BOWL, marker=(0.2, 0.0))  # at the bottom of the bowl
    pose = ((0.0, -2.0, 4.0), (0.0, 0.0, 0.3), (0.0, 0.0, 1.0))  # from high up: the bowl fills the frame
    off = render(look, st, pose, width=320, height=180)
    on = render(dict(look, marker=True, marker_color="#ff0000"), st, pose, width=320, height=180)
    sphere = (on[..., 0].astype(int) - on[..., 1:].max(axis=2)) > 120  # the ball itself: saturated red
    tinted = (on[..., 0].astype(int) - off[..., 0]) > 6  # redder than the bare surface
    assert sphere.sum() > 20 and tinted.sum() > 2.5 * sphere.sum()  # a glow around the ball, on the surface
    ys, xs = np.nonzero(tinted & ~sphere)
    cy, cx = np.nonzero(sphere)
    assert abs(np.median(xs) - cx.mean()) < 6  # centred under it
