"""The off-screen renderer (real VTK through EGL/OSMesa), at small sizes."""

from __future__ import annotations

import numpy as np
import pytest

from llstudio.config.scene import LookSpec
from llstudio.film.timeline import FrameState

pytestmark = pytest.mark.render

W, H = 320, 240
ALPHAS = np.linspace(-1.0, 1.0, 7)
BETAS = np.linspace(-0.5, 1.5, 5)  # non-square, off-centre: catches a transposed or misplaced surface
A, B = np.meshgrid(ALPHAS, BETAS, indexing="ij")
BOWL = A**2 + (B - 0.5) ** 2
WAVE = np.sin(3 * A) + 0.5 * B
POSE = ((4.0, -3.0, 3.0), (0.0, 0.5, 0.5), (0.0, 0.0, 1.0))


def state(values, index=0, step=0.0, center=1.0, vmin=None, vmax=None) -> FrameState:
    return FrameState(index, values, step, center, float(values.min() if vmin is None else vmin),
                      float(values.max() if vmax is None else vmax))


@pytest.fixture
def renderer():
    from llstudio.renderer.plotter import SurfaceRenderer

    r = SurfaceRenderer(ALPHAS, BETAS, LookSpec(anti_aliasing="none"), W, H, z_scale=0.5, title="test")
    yield r
    r.close()


def hex_rgb(h: str) -> np.ndarray:
    h = h.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)])


def test_render_window_info(gl_context):
    from llstudio.renderer.backend import render_window_info

    info = render_window_info()
    assert info["window"].startswith("vtk") and info["window"] == gl_context


def test_image_shape_type_and_content(renderer):
    img = renderer.render(state(BOWL), POSE)
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert img.flags["C_CONTIGUOUS"]
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # a shaded surface, not a flat fill
    bg = hex_rgb(LookSpec().background)
    not_bg = np.any(np.abs(img.astype(int) - bg) > 10, axis=2)
    assert 0.05 < not_bg.mean() < 0.95  # the surface covers part of the frame


def test_background_matches_look(renderer):
    from llstudio.config.colors import gradient_top

    img = renderer.render(state(BOWL), POSE)
    look = LookSpec()
    bg, top = hex_rgb(look.background), hex_rgb(gradient_top(look.background, look.background_top))
    assert look.background_top == "auto" and top.sum() > bg.sum() + 30  # by default a gradient, lighter on top
    # top-right and bottom-right corners: away from the title (top left) and the info text (bottom left)
    np.testing.assert_allclose(img[H - 1, W - 1].astype(int), bg, atol=3)
    np.testing.assert_allclose(img[0, W - 1].astype(int), top, atol=3)


def test_custom_background_colour():
    from llstudio.renderer.plotter import SurfaceRenderer

    look = LookSpec(anti_aliasing="none", background="white", background_top="none", overlay=False, marker=False,
                    contours=0)
    with SurfaceRenderer(ALPHAS, BETAS, look, W, H, z_scale=0.5) as r:
        img = r.render(state(BOWL), POSE)
    np.testing.assert_allclose(img[0, 0].astype(int), [255, 255, 255], atol=3)
    np.testing.assert_allclose(img[H - 1, 0].astype(int), [255, 255, 255], atol=3)
    assert np.any(np.abs(img.astype(int) - 255).sum(axis=2) > 30)


def test_different_frames_give_different_images_and_rerender_is_stable(renderer):
    i1 = renderer.render(state(BOWL, step=0, center=2.0), POSE)
    i2 = renderer.render(state(WAVE, index=1, step=4, center=0.5), POSE)
    i3 = renderer.render(state(BOWL, step=0, center=2.0), POSE)
    assert (i1 != i2).any(axis=2).mean() > 0.01
    # nothing of the previous frame (heights, contours, marker, text) leaks into the next
    diff = np.abs(i1.astype(int) - i3.astype(int))
    assert diff.max() <= 2, diff.max()


def test_camera_pose_changes_the_image(renderer):
    i1 = renderer.render(state(BOWL), POSE)
    i2 = renderer.render(state(BOWL), ((-3.0, 4.0, 2.0), POSE[1], POSE[2]))
    assert (i1 != i2).any(axis=2).mean() > 0.01


def test_surface_heights_follow_ij_values(renderer):
    renderer.render(state(WAVE), POSE)
    pts = np.asarray(renderer.grid.points)
    unit = (WAVE - WAVE.min()) / (WAVE.max() - WAVE.min())
    z_height = 0.5 * 2.0  # z_scale times the larger grid extent
    # The grid is displayed as a square: alpha and beta are mapped to display coordinates independently.
    xs, ys = renderer.display_coords(ALPHAS, 0), renderer.display_coords(BETAS, 1)
    np.testing.assert_allclose([xs[0], xs[-1], ys[0], ys[-1]], [-1.0, 1.0, -1.0, 1.0])
    for i, a in enumerate(xs):
        for j, b in enumerate(ys):
            (k,) = np.nonzero(np.isclose(pts[:, 0], a) & np.isclose(pts[:, 1], b))[0]
            assert pts[k, 2] == pytest.approx(unit[i, j] * z_height)
    np.testing.assert_allclose(np.sort(renderer.grid["values"]), np.sort(unit.ravel()))


def test_marker_sits_on_the_surface_at_the_centre(renderer):
    renderer.render(state(BOWL), POSE)
    x, y, z = renderer.marker_actor.GetPosition()
    # (0, 0) is a grid point: BOWL there is 0.25, on a range [0, 2]
    unit = (0.25 - BOWL.min()) / (BOWL.max() - BOWL.min())
    # The weights (alpha, beta) = (0, 0) sit at display (0, -0.5): beta's range [-0.5, 1.5] maps to [-1, 1].
    assert (x, y) == pytest.approx((0.0, -0.5))
    assert z == pytest.approx(unit * 1.0 + 0.01 * 2.0)


def test_overlay_text_and_contours_update(renderer):
    renderer.render(state(BOWL, step=1234.0, center=0.123456), POSE)
    assert renderer.info_text == "step 1,234    loss 0.1235"
    assert renderer.contour_layer is not None  # drawn by the surface's shader (tests/renderer/test_look.py)
    renderer.render(state(WAVE, step=7.0, center=float("nan")), POSE)
    assert renderer.info_text == "step 7    loss diverged"


def test_flat_surface_renders(renderer):
    flat = np.full_like(BOWL, 3.0)
    img = renderer.render(state(flat), POSE)
    assert img.shape == (H, W, 3)
    np.testing.assert_allclose(np.asarray(renderer.grid.points)[:, 2], 0.0)


def test_save_png(renderer, tmp_path):
    from PIL import Image

    from llstudio.renderer.plotter import save_png

    img = renderer.render(state(BOWL), POSE)
    out = tmp_path / "sub" / "frame.png"
    save_png(img, out)
    with Image.open(out) as im:
        assert im.size == (W, H) and im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), img)
    assert [p.name for p in out.parent.iterdir()] == ["frame.png"]


def test_film_frames_of_a_capture(tiny_capture):
    from llstudio.pipeline import make_film, OutputSettings

    film = make_film(tiny_capture, OutputSettings(W, H, 10))
    assert film.n_frames == 8  # (0.1 + 3 * 0.2 + 0.1) s at 10 fps
    with film.renderer() as r:
        first = film.frame(r, 0)
        last = film.frame(r, film.n_frames - 1)
    assert first.shape == (H, W, 3)
    assert (first != last).any(axis=2).mean() > 0.01


def test_a_contour_map_or_wireframe_film_leaves_later_films_unchanged():
    """VTK keeps its polygon-offset switch in one process-wide setting: a film with a contour map or a wireframe
    turns it on, and it must be off again for a film rendered after it (a batch render), whose critical points it
    used to hide."""
    from llstudio.film.critical import critical_points
    from llstudio.renderer.plotter import SurfaceRenderer

    a = np.linspace(-1, 1, 21)
    A2, B2 = np.meshgrid(a, a, indexing="ij")
    v = A2 ** 2 + B2 ** 2
    look = LookSpec(critical_points=True, marker=False, contours=0, anti_aliasing="none", overlay=False,
                    colormap="gray")

    def frame():
        with SurfaceRenderer(a, a, look, 160, 90, 0.5) as r:
            return r.render(FrameState(0, v, 0.0, 1.0, 0.0, 2.0, critical=tuple(critical_points(v, a, a))), POSE)

    alone = frame()
    blue = ((alone[..., 2].astype(int) - alone[..., 0]) > 60).sum()  # the minimum's marker on a grey surface
    assert blue > 3
    for kw in (dict(view="contours", loss_inset=True), dict(wireframe=True)):
        with SurfaceRenderer(a, a, LookSpec(anti_aliasing="none", **kw), 160, 90, 0.5) as r:
            r.render(state(v), POSE)
        np.testing.assert_array_equal(frame(), alone)
