"""Framing (issue 14, item 1): the camera fitted to the surface's projected outline. Pure numpy, no OpenGL."""

from __future__ import annotations

import numpy as np
import pytest

from llstudio.config.scene import load_scene
from llstudio.film.camera import Framing, camera_path
from llstudio.film.framing import (FreeRect, Room, convex_outline, fit_camera, free_rect, grid_triangles,
                                   hull_points, outline_coverage, polygon_hits_rect, project, room_to_grow,
                                   surface_points)

from conftest import SCENES_DIR

ASPECT = 854 / 480  # -q l
FREE = FreeRect(0.05, 0.1, 0.9, 0.8)


def direction(az: float, el: float) -> np.ndarray:
    a, e = np.radians(az), np.radians(el)
    return np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def bowl(n: int, height: float) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in landscape: a log-loss bowl off centre, normalised to [0, height] as the renderer shows it."""
    x = np.linspace(-1.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    u = np.log10(1 + 9 * ((X - 0.2) ** 2 + 0.7 * (Y + 0.1) ** 2))
    return x, (u - u.min()) / np.ptp(u) * height


def bounds(p: np.ndarray) -> np.ndarray:
    return np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()])


@pytest.mark.parametrize("az, el", [(-60, 35), (0, 20), (45, 60), (-150, 10)])
def test_fit_fills_the_free_rectangle_and_centres_the_points(az, el):
    rng = np.random.default_rng(0)
    pts = rng.uniform([-1, -1, 0], [1, 1, 0.8], (200, 3))
    up = np.array([0.0, 0.0, 1.0])
    pos, focal = fit_camera(hull_points(pts), direction(az, el), up, ASPECT, FREE, fill=0.9)
    b = bounds(project(pts, pos, focal, up, ASPECT))
    np.testing.assert_allclose(b, bounds(project(hull_points(pts), pos, focal, up, ASPECT)))
    w, h = b[2] - b[0], b[3] - b[1]
    # the limiting direction is filled to 90% of the free rectangle; both are centred in it
    assert max(w / FREE.width, h / FREE.height) == pytest.approx(0.9, abs=1e-3)
    assert w <= 0.9 * FREE.width + 1e-6 and h <= 0.9 * FREE.height + 1e-6
    np.testing.assert_allclose([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], FREE.center, atol=0.01)  # the middle of the allowed positions: centred to about 1%
    # the camera looks along -direction
    view = (focal - pos) / np.linalg.norm(focal - pos)
    np.testing.assert_allclose(view, -direction(az, el), atol=1e-9)


def test_fit_around_a_followed_point_keeps_it_centred_and_everything_inside():
    x, h = bowl(9, 0.9)
    pts = surface_points(h, x, x)
    up = np.array([0.0, 0.0, 1.0])
    center = np.array([0.7, -0.6, 0.45])
    pos, focal = fit_camera(pts, direction(-60, 35), up, ASPECT, FREE, fill=0.9, center=center)
    np.testing.assert_allclose(project([center], pos, focal, up, ASPECT)[0], FREE.center, atol=1e-6)
    b = bounds(project(pts, pos, focal, up, ASPECT))
    assert b[0] >= FREE.left - 1e-6 and b[2] <= FREE.right + 1e-6
    assert b[1] >= FREE.bottom - 1e-6 and b[3] <= FREE.top + 1e-6


def test_outline_coverage_of_a_square_seen_from_above():
    # A flat square seen straight down (orthographic in the limit of a far camera) fills a known share.
    x = np.linspace(-1, 1, 3)
    pts = surface_points(np.zeros((3, 3)), x, x)
    tri = grid_triangles(3, 3)
    up = np.array([0.0, 1.0, 0.0])
    d = 2 / (2 * np.tan(np.radians(15)))  # the square exactly fills the height
    width, area = outline_coverage(pts, tri, (0, 0, d), (0, 0, 0), up, 160, 80)
    assert width == pytest.approx(0.5, abs=0.02) and area == pytest.approx(0.5, abs=0.02)


def single_panel_scenes():
    scenes = []
    for path in sorted(SCENES_DIR.glob("*.toml")):
        scene = load_scene(path)
        if not scene.panels:
            scenes.append(path)
    return scenes


def test_every_single_panel_scene_fills_its_panel_at_its_camera():
    """For every single-panel scene in scenes/ at -q l, with the room its real overlay layout leaves: at the first,
    middle and last frame of its camera, the stand-in surface's projected outline stays inside the panel, touches
    no overlay box, and at the closest moment of the move fills the free rectangle in its limiting direction. The
    table printed (-s) compares the outline's share of the panel's width and area with the keyframes' fixed
    distances (which could also cut the surface at the panel's edge)."""
    from llstudio.pipeline.render import room_of
    from llstudio.renderer.layout import film_layouts

    rows = []
    for path in single_panel_scenes():
        scene = load_scene(path)
        zh = scene.scaling.z_scale * 2.0
        x, h = bowl(25, zh)
        pts, tri = surface_points(h, x, x), grid_triangles(25, 25)
        room = room_of(film_layouts(scene, 854, 480)[0])
        framing = Framing(hull_points(pts), ASPECT, room.free, room=room)
        fitted = camera_path(scene.camera.model_copy(update={"framing": "fit"}), 61, (0, 0, zh / 2), 2.0,
                             framing=framing)
        fixed = camera_path(scene.camera.model_copy(update={"framing": "distance"}), 61, (0, 0, zh / 2), 2.0)
        fills = []
        for f in (0, 30, 60):
            cov = outline_coverage(pts, tri, fitted.position[f], fitted.focal_point[f], fitted.up[f], 854, 480)
            before = outline_coverage(pts, tri, fixed.position[f], fixed.focal_point[f], fixed.up[f], 854, 480)
            rows.append((path.stem, f, before, cov))
            p = project(pts, fitted.position[f], fitted.focal_point[f], fitted.up[f], ASPECT)
            b = bounds(p)
            assert b[0] >= 0 and b[1] >= 0 and b[2] <= 1 and b[3] <= 1, (path.stem, f, b)
            outline = convex_outline(p)
            assert not any(polygon_hits_rect(outline, o) for o in room.obstacles), (path.stem, f)
            fills.append(max((b[2] - b[0]) / room.free.width, (b[3] - b[1]) / room.free.height))
        # The closest moment of the camera's move is the fit itself: the (grown) free rectangle filled to 96% in
        # its limiting direction, so at least that share of the layout's own free rectangle; keyframes further
        # out (ratio > 1) show the surface smaller.
        assert max(fills) >= 0.9 or scene.camera.dolly != 1.0 or len(scene.camera.keyframes) > 1, (path.stem, fills)
    assert len({r[0] for r in rows}) >= 8
    print("\nscene frame  before (width, area)  fitted (width, area)")
    for name, f, before, cov in rows:
        print(f"{name:28s} {f:3d}  {before[0]:.2f} {before[1]:.2f}  {cov[0]:.2f} {cov[1]:.2f}")


def test_the_free_rectangle_grows_beside_a_corner_title_but_never_onto_it():
    """A title in the top-left corner: a rectangle clear of it loses the whole top band, but a surface whose far
    corner rises in the middle can use part of it; the grown fit is larger and still misses the title."""
    title = FreeRect(0.0, 0.86, 0.45, 1.0)
    room = Room(FreeRect(0.02, 0.03, 0.98, 0.84), FreeRect(0.02, 0.03, 0.98, 0.97), (title,))
    x, h = bowl(13, 1.2)
    pts = surface_points(h, x, x)
    up = np.array([0.0, 0.0, 1.0])
    d = direction(-60, 45)  # seen from high up: the outline is tall, the height limits it
    t = room_to_grow(pts, d[None], up[None], ASPECT, room)
    assert 0.05 < t < 1.0
    grown, plain = [fit_camera(hull_points(pts), d, up, ASPECT, r) for r in (room.grown(t), room.free)]
    size = [np.ptp(project(pts, pos, foc, up, ASPECT), axis=0) for pos, foc in (grown, plain)]
    assert size[0][1] > 1.03 * size[1][1]
    assert not polygon_hits_rect(convex_outline(project(pts, *grown, up, ASPECT)), title)
    # growing all the way would put the surface under the title
    full = fit_camera(hull_points(pts), d, up, ASPECT, room.bounds)
    assert polygon_hits_rect(convex_outline(project(pts, *full, up, ASPECT)), title)


def test_polygon_hits_rect():
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert polygon_hits_rect(tri, FreeRect(0.1, 0.1, 0.2, 0.2))
    assert not polygon_hits_rect(tri, FreeRect(0.6, 0.6, 0.9, 0.9))  # beyond the hypotenuse, inside the bbox
    assert not polygon_hits_rect(tri, FreeRect(1.0, 0.0, 2.0, 1.0))  # touching an edge is no overlap
    assert polygon_hits_rect(tri, FreeRect(-1.0, -1.0, 2.0, 2.0))  # around it


def test_each_frame_is_fitted_to_the_surface_it_shows_and_never_cut():
    """A landscape that grows from a flat plateau into a deep bowl: fitted frame by frame (the fits to the captured
    steps blended like the surface), the early frames show the plateau larger than a fit to the whole film's
    envelope would, no frame cuts its surface, and a still camera stands still while the step is held."""
    from llstudio.config.scene import CameraSpec

    x, h = bowl(9, 0.9)
    growth = [0.05, 0.3, 0.7, 1.0]
    steps = [surface_points(g * h, x, x) for g in growth]
    n = 60
    position = np.clip(np.linspace(-0.2, 3.2, n), 0, 3)
    spec = CameraSpec()
    envelope = Framing(hull_points(np.concatenate(steps)), ASPECT)
    per_frame = Framing(envelope.points, ASPECT, steps=tuple(hull_points(s) for s in steps), position=position)
    a = camera_path(spec, n, (0, 0, 0.45), 2.0, fps=15, framing=envelope)
    b = camera_path(spec, n, (0, 0, 0.45), 2.0, fps=15, framing=per_frame)
    tri = grid_triangles(9, 9)
    assert (outline_coverage(steps[0], tri, b.position[0], b.focal_point[0], b.up[0], 854, 480)[1]
            > 1.2 * outline_coverage(steps[0], tri, a.position[0], a.focal_point[0], a.up[0], 854, 480)[1])
    for f in range(n):
        u = position[f]
        k = min(int(u), 2)
        shown = steps[k] + (u - k) * (steps[k + 1] - steps[k])
        bb = bounds(project(shown, b.position[f], b.focal_point[f], b.up[f], ASPECT))
        assert bb[0] >= 0 and bb[1] >= 0 and bb[2] <= 1 and bb[3] <= 1, (f, bb)
    # smooth: the distance never jumps from frame to frame
    dist = np.linalg.norm(b.position - b.focal_point, axis=1)
    assert np.abs(np.diff(dist)).max() < 0.05 * dist.mean()
    still = CameraSpec(keyframes=[{"at": 0.0, "azimuth": -60.0, "elevation": 28.0}], easing="none")
    c = camera_path(still, n, (0, 0, 0.45), 2.0, fps=15, framing=per_frame)
    held = np.flatnonzero(position == 0.0)
    assert len(held) > 3 and np.all(c.position[held] == c.position[held[0]])
