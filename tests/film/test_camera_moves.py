"""Named camera moves on top of keyframes (orbit, dolly, crane, follow the minimiser). Pure numpy units."""

from __future__ import annotations

import numpy as np
import pytest

from llstudio.film.camera import camera_path, film_time, follow_track
from llstudio.film.geometry import to_display
from llstudio.config.scene import CameraSpec

FOCAL = np.array([0.0, 0.0, 0.5])
KEYS = [dict(at=0.0, azimuth=-60.0, elevation=30.0, distance=2.5),
        dict(at=0.5, azimuth=0.0, elevation=20.0, distance=2.0),
        dict(at=1.0, azimuth=40.0, elevation=35.0, distance=2.4)]


def spherical(az, el, d, focal=FOCAL):
    az, el = np.radians(az), np.radians(el)
    return focal + d * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def path(n=201, easing="none", track=None, fps=30.0, **moves):
    return camera_path(CameraSpec(keyframes=KEYS, easing=easing, **moves), n, FOCAL, 1.0, track, fps)


def assert_smooth(x: np.ndarray, ratio=0.1):
    """No velocity jumps: frame-to-frame changes of velocity stay small next to the velocity itself."""
    v = np.diff(x, axis=0)
    a = np.diff(v, axis=0)
    speed = np.linalg.norm(v, axis=1).max()
    assert speed > 0
    assert np.linalg.norm(a, axis=1).max() < ratio * speed


def test_no_moves_pass_through_keyframes():
    p = path(orbit=0.0, dolly=1.0, crane=0.0, follow=0.0)
    for key in KEYS:
        f = int(round(key["at"] * 200))
        np.testing.assert_allclose(p.position[f], spherical(key["azimuth"], key["elevation"], key["distance"]),
                                   atol=1e-9)


@pytest.mark.parametrize("easing", ["none", "in_out"])
def test_moves_ride_on_the_keyframes(easing):
    p = path(easing=easing, orbit=360.0, dolly=0.5, crane=20.0)
    tau = film_time(201, easing)
    for key in KEYS:
        f = int(np.argmin(np.abs(tau - key["at"])))
        t = tau[f]
        expected = spherical(key["azimuth"] + 360.0 * t, key["elevation"] + 20.0 * t, key["distance"] * 0.5 ** t)
        if abs(t - key["at"]) < 1e-12:
            np.testing.assert_allclose(p.position[f], expected, atol=1e-9)
    # the dolly: the last distance is half the last keyframe's
    assert np.linalg.norm(p.position[-1] - p.focal_point[-1]) == pytest.approx(0.5 * KEYS[-1]["distance"])


@pytest.mark.parametrize("easing", ["none", "in_out"])
def test_moves_are_continuous(easing):
    p = path(easing=easing, orbit=360.0, dolly=0.6, crane=30.0)
    assert_smooth(p.position)
    assert np.all(np.isfinite(p.up))


def test_orbit_turns_around():
    p = camera_path(CameraSpec(keyframes=[dict(at=0.0, azimuth=0.0, elevation=30.0)], orbit=360.0, easing="none"),
                    361, FOCAL, 1.0)
    off = p.position - p.focal_point
    angle = np.unwrap(np.arctan2(off[:, 1], off[:, 0]))
    assert angle[-1] - angle[0] == pytest.approx(2 * np.pi)
    assert np.all(np.diff(angle) > 0)


def test_crane_is_clipped_below_the_pole():
    p = camera_path(CameraSpec(keyframes=[dict(at=0.0, azimuth=0.0, elevation=80.0)], crane=60.0), 50, FOCAL, 1.0)
    off = p.position - p.focal_point
    el = np.degrees(np.arcsin(off[:, 2] / np.linalg.norm(off, axis=1)))
    assert el.max() == pytest.approx(89.0)


def test_follow_tracks_the_marker_smoothly():
    n = 240
    # The marker jumps from one point to another halfway (a captured step arriving): the camera must not.
    track = np.zeros((n, 2))
    track[n // 2:] = [0.6, -0.4]
    p = path(n=n, track=track, fps=30.0, follow=1.0, follow_smoothing=0.5)
    np.testing.assert_allclose(p.focal_point[:, 2], FOCAL[2])  # the height does not bob
    np.testing.assert_allclose(p.focal_point[0, :2], [0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(p.focal_point[-1, :2], [0.6, -0.4], atol=1e-3)
    assert_smooth(p.focal_point, ratio=0.15)
    # the camera keeps its spherical offset from the moving focal point
    plain = path(n=n)
    np.testing.assert_allclose(p.position - p.focal_point, plain.position - plain.focal_point, atol=1e-12)


def test_follow_amount_and_no_smoothing():
    track = np.column_stack([np.linspace(-1, 1, 50), np.linspace(0.5, -0.5, 50)])
    full = follow_track(track, FOCAL, 1.0, 0.0)
    np.testing.assert_allclose(full[:, :2], track)
    half = follow_track(track, FOCAL, 0.5, 0.0)
    np.testing.assert_allclose(half[:, :2], 0.5 * track)
    assert camera_path(CameraSpec(follow=0.0), 50, FOCAL, 1.0, track).focal_point[:, :2].max() == 0.0


def test_to_display():
    ax = np.linspace(-0.5, 1.5, 5)
    np.testing.assert_allclose(to_display(ax, ax, 2.0), np.linspace(-1, 1, 5))
    np.testing.assert_allclose(to_display(np.array([0.3]), np.array([0.0]), 2.0), [0.0])  # a 1D capture's beta


@pytest.mark.parametrize("move", ["orbit", "dolly_in", "crane", "hero"])
def test_named_moves_bring_keyframes_that_change_the_view_meaningfully(move):
    from llstudio.config.scene import CameraSpec
    from llstudio.film.camera import Framing
    from llstudio.film.framing import hull_points, surface_points

    spec = CameraSpec(move=move)
    x = np.linspace(-1, 1, 9)
    X, Y = np.meshgrid(x, x, indexing="ij")
    pts = hull_points(surface_points(0.9 * (X**2 + Y**2) / 2, x, x))
    path = camera_path(spec, 40, (0, 0, 0.45), 2.0, framing=Framing(pts, 16 / 9))
    offset = path.position - path.focal_point
    dist = np.linalg.norm(offset, axis=1)
    el = np.degrees(np.arcsin(offset[:, 2] / dist))
    az = np.degrees(np.arctan2(offset[:, 1], offset[:, 0]))
    moved = {"orbit": abs(az[-1] - az[0]) >= 100, "dolly_in": dist[0] / dist[-1] >= 1.3,
             "crane": el[-1] - el[0] >= 35, "hero": el.max() <= 15 and dist[0] / dist[-1] >= 1.15}
    assert moved[move], (move, az[[0, -1]], el[[0, -1]], dist[[0, -1]])


def test_a_named_move_refuses_its_own_keyframes_and_fixed_distances():
    from llstudio.config.scene import scene_from_dict
    from llstudio.errors import SceneError

    from conftest import tiny_dict

    for camera, says in (({"move": "hero", "keyframes": [{"at": 0.0, "azimuth": 0.0}]}, "either move or keyframes"),
                         ({"move": "crane", "framing": "distance"}, "needs framing = 'fit'")):
        with pytest.raises(SceneError) as info:
            scene_from_dict(tiny_dict(camera=camera), source="bad.toml")
        assert info.value.exit_code == 2
        assert any(path == "camera" and says in msg for path, msg in info.value.problems), info.value.problems


@pytest.mark.parametrize("move", ["orbit", "dolly_in", "crane", "hero"])
def test_a_resolved_scene_with_a_move_loads_again(move):
    """The resolved dump (the sidecar's scene, a test's edited copy) holds the move and the keyframes it brought:
    it must validate again to the same camera."""
    from llstudio.config.scene import scene_from_dict

    from conftest import tiny_dict

    scene = scene_from_dict(tiny_dict(camera={"move": move}))
    again = scene_from_dict(scene.resolved_dump())
    assert again.camera == scene.camera and again.camera.move == move
