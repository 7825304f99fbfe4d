"""Camera path: keyframes in spherical coordinates → one pose per frame. Pure numpy units."""

from __future__ import annotations

import numpy as np
import pytest

from llstudio.film.camera import camera_path, film_time, interpolate_keys
from llstudio.config.scene import CameraSpec

FOCAL = np.array([0.1, -0.2, 0.5])
SCALE = 2.0
KEYS = [
    dict(at=0.0, azimuth=-60.0, elevation=35.0, distance=2.5),
    dict(at=0.25, azimuth=0.0, elevation=20.0, distance=2.0),
    dict(at=0.5, azimuth=30.0, elevation=25.0, distance=2.2, roll=15.0),
    dict(at=1.0, azimuth=80.0, elevation=40.0, distance=2.4),
]


def spherical(key: dict) -> np.ndarray:
    """Where the camera of a keyframe is, computed independently of llstudio.film.camera."""
    az, el = np.radians(key["azimuth"]), np.radians(key["elevation"])
    d = key["distance"] * SCALE
    return FOCAL + d * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])


def path(keys=KEYS, n=21, interpolation="spline", easing="none"):
    spec = CameraSpec(keyframes=keys, interpolation=interpolation, easing=easing)
    return camera_path(spec, n, FOCAL, SCALE)


def test_film_time():
    np.testing.assert_allclose(film_time(5, "none"), [0, 0.25, 0.5, 0.75, 1.0])
    eased = film_time(101, "in_out")
    assert eased[0] == 0.0 and eased[-1] == 1.0 and eased[50] == pytest.approx(0.5)
    assert np.all(np.diff(eased) > 0)
    # at rest at both ends: the first and last steps are much smaller than the middle one
    d = np.diff(eased)
    assert d[0] < 0.05 * d[50] and d[-1] < 0.05 * d[50]
    np.testing.assert_array_equal(film_time(1, "in_out"), [0.0])


@pytest.mark.parametrize("interpolation", ["spline", "linear"])
def test_path_passes_through_its_keyframes(interpolation):
    # 21 frames, easing none: frame f is at film time f / 20, so 'at' 0, 0.25, 0.5, 1 are frames 0, 5, 10, 20.
    p = path(interpolation=interpolation)
    assert p.position.shape == p.focal_point.shape == p.up.shape == (21, 3)
    for key in KEYS:
        f = int(round(key["at"] * 20))
        np.testing.assert_allclose(p.position[f], spherical(key), rtol=0, atol=1e-9)
        np.testing.assert_allclose(p.focal_point[f], FOCAL)


def test_pose_tuple():
    p = path()
    pos, foc, up = p.pose(10)
    assert len(pos) == len(foc) == len(up) == 3
    np.testing.assert_allclose(pos, spherical(KEYS[2]), atol=1e-9)


@pytest.mark.parametrize("easing", ["none", "in_out"])
def test_spline_has_no_velocity_jumps(easing):
    p = path(n=201, easing=easing)
    v = np.diff(p.position, axis=0)
    a = np.diff(v, axis=0)
    speed, jerk = np.linalg.norm(v, axis=1), np.linalg.norm(a, axis=1)
    assert speed.max() > 0
    assert jerk.max() < 0.1 * speed.max(), (jerk.max(), speed.max())


def test_linear_has_velocity_kinks_that_the_spline_smooths():
    """The same check must be able to fail: straight segments turn abruptly at keyframes."""
    lin = path(n=201, interpolation="linear")
    v = np.diff(lin.position, axis=0)
    a = np.diff(v, axis=0)
    assert np.linalg.norm(a, axis=1).max() > 0.2 * np.linalg.norm(v, axis=1).max()


def test_in_out_easing_starts_and_ends_at_rest():
    p = path(n=201, easing="in_out")
    speed = np.linalg.norm(np.diff(p.position, axis=0), axis=1)
    assert speed[0] < 0.05 * speed.max() and speed[-1] < 0.05 * speed.max()
    np.testing.assert_allclose(p.position[0], spherical(KEYS[0]), atol=1e-9)
    np.testing.assert_allclose(p.position[-1], spherical(KEYS[-1]), atol=1e-9)


@pytest.mark.parametrize("interpolation", ["spline", "linear"])
@pytest.mark.parametrize("easing", ["none", "in_out"])
def test_up_is_unit_and_perpendicular_to_view(interpolation, easing):
    keys = KEYS + []
    keys[1] = dict(keys[1], roll=-40.0)
    keys[3] = dict(keys[3], elevation=85.0, roll=180.0)
    p = path(keys=keys, n=61, interpolation=interpolation, easing=easing)
    view = p.focal_point - p.position
    view /= np.linalg.norm(view, axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(p.up, axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.sum(p.up * view, axis=1), 0.0, atol=1e-9)


def test_roll_rotates_up_about_the_view():
    flat = path(keys=[dict(at=0.0, azimuth=20.0, elevation=30.0)], n=3)
    rolled = path(keys=[dict(at=0.0, azimuth=20.0, elevation=30.0, roll=90.0)], n=3)
    # no roll: up points upward, in the vertical plane of the view
    assert flat.up[0, 2] > 0.5
    view = (flat.focal_point - flat.position)[0]
    assert abs(np.dot(np.cross(view, [0, 0, 1.0]), flat.up[0])) < 1e-9
    # 90 degrees of roll: up is horizontal and perpendicular to the unrolled up
    assert abs(rolled.up[0, 2]) < 1e-9
    assert abs(np.dot(rolled.up[0], flat.up[0])) < 1e-9
    np.testing.assert_allclose(rolled.position, flat.position)


def test_distance_is_in_units_of_scale():
    p = path(keys=[dict(at=0.0, azimuth=10.0, elevation=10.0, distance=1.5)], n=4)
    np.testing.assert_allclose(np.linalg.norm(p.position - p.focal_point, axis=1), 1.5 * SCALE)


def test_single_keyframe_is_a_still_camera():
    p = path(keys=[dict(at=0.3, azimuth=45.0, elevation=30.0)], n=7)
    np.testing.assert_allclose(p.position, np.repeat(p.position[:1], 7, axis=0))
    np.testing.assert_allclose(p.position[0], spherical(dict(azimuth=45.0, elevation=30.0, distance=2.6)),
                               atol=1e-9)


def test_held_before_first_and_after_last_keyframe():
    keys = [dict(at=0.2, azimuth=0.0, elevation=20.0), dict(at=0.6, azimuth=90.0, elevation=30.0)]
    p = path(keys=keys, n=11)
    for f in (0, 1, 2):
        np.testing.assert_allclose(p.position[f], spherical(dict(keys[0], distance=2.6)), atol=1e-9)
    for f in (6, 8, 10):
        np.testing.assert_allclose(p.position[f], spherical(dict(keys[1], distance=2.6)), atol=1e-9)


def test_interpolate_keys_linear_and_spline_agree_at_keys():
    ats = np.array([0.0, 0.5, 1.0])
    vals = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 3.0]])
    for kind in ("spline", "linear"):
        np.testing.assert_allclose(interpolate_keys(ats, vals, ats, kind), vals, atol=1e-12)
    np.testing.assert_allclose(interpolate_keys(ats, vals, np.array([0.25]), "linear"), [[1.0, 0.5]])


def test_single_frame_film():
    p = path(n=1)
    assert p.position.shape == (1, 3)
    np.testing.assert_allclose(p.position[0], spherical(KEYS[0]), atol=1e-9)


def test_azimuth_places_camera_as_documented():
    # CameraKey.azimuth: 0 puts the camera on the +alpha side, 90 on the +beta side (looking back at the focus).
    p0 = path(keys=[dict(at=0.0, azimuth=0.0, elevation=30.0)], n=1)
    off0 = p0.position[0] - p0.focal_point[0]
    assert off0[0] > 0 and abs(off0[1]) < 1e-9
    p90 = path(keys=[dict(at=0.0, azimuth=90.0, elevation=30.0)], n=1)
    off90 = p90.position[0] - p90.focal_point[0]
    assert off90[1] > 0 and abs(off90[0]) < 1e-9
