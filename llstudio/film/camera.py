"""Camera keyframes → one camera pose per frame. Pure numpy: no pyvista here.

Keyframes are spherical coordinates (azimuth, elevation, distance, roll) around a focal point, at fractions of the
film. Between keyframes the coordinates follow a natural cubic spline (continuous velocity and acceleration) or
straight lines; 'in_out' easing slows the camera to rest at the start and the end of the film.

Named moves ride on top of the keyframes, as functions of the same eased film time (so they start and stop with
the keyframed motion and never add a velocity jump): ``orbit`` adds azimuth, ``crane`` elevation, ``dolly`` scales
the distance geometrically; ``follow`` slides the focal point (and the camera with it) towards a smoothed track of
the minimiser's marker.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d

from ..config.scene import CameraSpec
from .framing import DEFAULT_FREE, FreeRect, Room, fit_camera, room_to_grow
from .timeline import hermite_blend


@dataclass(frozen=True)
class CameraPath:
    """Per-frame camera: ``position``, ``focal_point`` and ``up``, each (F, 3)."""

    position: np.ndarray
    focal_point: np.ndarray
    up: np.ndarray

    def pose(self, frame: int) -> tuple[tuple, tuple, tuple]:
        return (tuple(self.position[frame]), tuple(self.focal_point[frame]), tuple(self.up[frame]))


def film_time(n_frames: int, easing: str) -> np.ndarray:
    """Fraction of the film (0 … 1) at each frame, eased."""
    tau = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    if easing == "in_out":
        tau = tau * tau * (3.0 - 2.0 * tau)
    return tau


def interpolate_keys(ats: np.ndarray, values: np.ndarray, tau: np.ndarray, kind: str) -> np.ndarray:
    """Interpolate ``values`` (K, D) given at ``ats`` (K,) at ``tau`` (F,); held constant outside [ats[0], ats[-1]]."""
    if len(ats) == 1:
        return np.repeat(values[:1], len(tau), axis=0)
    t = np.clip(tau, ats[0], ats[-1])
    if kind == "spline" and len(ats) >= 3:
        return CubicSpline(ats, values, axis=0, bc_type="natural")(t)
    return np.stack([np.interp(t, ats, values[:, d]) for d in range(values.shape[1])], axis=1)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of vectors v (F, 3) about unit axes (F, 3) by angles (F,) in radians."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + np.cross(axis, v) * s + axis * np.sum(axis * v, axis=1, keepdims=True) * (1 - c)


def follow_track(track: np.ndarray, base, amount: float, sigma_frames: float) -> np.ndarray:
    """Focal points (F, 3) that follow ``track`` (F, 2), the marker's display x, y per frame: smoothed by a
    Gaussian of ``sigma_frames`` (zero phase, so the camera does not lag), then blended from ``base`` (3,) by
    ``amount``. The height stays ``base``'s."""
    track = np.asarray(track, dtype=np.float64)
    if sigma_frames > 0 and len(track) > 1:
        track = gaussian_filter1d(track, sigma_frames, axis=0, mode="nearest")
    focal = np.broadcast_to(np.asarray(base, dtype=np.float64), (len(track), 3)).copy()
    focal[:, :2] += amount * (track - focal[:, :2])
    return focal


@dataclass(frozen=True)
class Framing:
    """What fitting the camera to a panel needs: the surface's display points (their convex hull is enough), the
    panel's ``aspect`` (width / height) and the ``free`` rectangle the overlays leave.

    ``points``: over the whole film. ``steps`` (K arrays), ``position`` (F,) and ``weights``: the points of every
    captured step, the fractional captured step each frame of the camera path shows, and the timeline's spline
    weights (:func:`llstudio.film.timeline.hermite_weights`); with them every frame is fitted to the surface it
    shows: the fits to the captured steps around it, blended like the surface itself (so the framing moves as
    smoothly as the surface, and stands still while a held step and a still camera do)."""

    points: np.ndarray
    aspect: float
    free: FreeRect = DEFAULT_FREE
    steps: tuple = ()
    position: Optional[np.ndarray] = None
    weights: Optional[tuple] = None
    room: Optional[Room] = None


# Frames at which a fitted camera is solved (at least; two per captured step when there are more); the poses
# between are interpolated (the fit is smooth in the camera's direction, which changes smoothly).
FIT_SAMPLES = 33


def camera_path(spec: CameraSpec, n_frames: int, focal_point, scale: float, track: np.ndarray | None = None,
                fps: float = 30.0, framing: Optional[Framing] = None) -> CameraPath:
    """Camera poses for ``n_frames`` frames around ``focal_point``; distances are in units of ``scale``.

    ``track`` (n_frames, 2): the marker's display x, y at each frame, followed when ``spec.follow`` > 0 (smoothed
    over ``spec.follow_smoothing`` seconds at ``fps``). ``framing``: with ``spec.framing`` = 'fit', the camera of
    every frame is fitted to the surface (see :func:`fitted_positions`).
    """
    keys = spec.keyframes
    ats = np.array([k.at for k in keys])
    vals = np.array([[k.azimuth, k.elevation, k.distance, k.roll] for k in keys], dtype=np.float64)
    tau = film_time(n_frames, spec.easing)
    az, el, dist, roll = interpolate_keys(ats, vals, tau, spec.interpolation).T
    az = az + spec.orbit * tau
    el = np.clip(el + spec.crane * tau, -89.0, 89.0)
    dist = np.maximum(dist * spec.dolly ** tau, 1e-3)
    azr, elr = np.radians(az), np.radians(el)
    offset = np.stack([np.cos(elr) * np.cos(azr), np.cos(elr) * np.sin(azr), np.sin(elr)], axis=1)
    if spec.follow > 0 and track is not None:
        focal = follow_track(track, focal_point, spec.follow, spec.follow_smoothing * fps)
    else:
        focal = np.broadcast_to(np.asarray(focal_point, dtype=np.float64), (n_frames, 3)).copy()
    # Up: world z made perpendicular to the view direction, then rolled about it.
    view = -offset
    up = np.array([0.0, 0.0, 1.0]) - view * view[:, 2:3]
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    up = _rotate(up, view, np.radians(roll))
    if framing is not None and spec.framing == "fit":
        following = spec.follow > 0 and track is not None
        framing = grown_framing(framing, offset, up, focal if following else None)
        position, focal = fitted_positions(offset, up, dist / dist.min(), framing,
                                           focal if following else None)
        return CameraPath(position, focal, up)
    position = focal + offset * (dist * scale)[:, None]
    return CameraPath(position, focal, up)


# Frames of the camera path at which the room a surface has beyond its free rectangle is measured.
ROOM_SAMPLES = 5


def grown_framing(framing: Framing, offset: np.ndarray, up: np.ndarray, centers=None) -> Framing:
    """``framing`` with its free rectangle grown into the room its panel leaves (see Room), as far as the whole
    film's surface, fitted from ROOM_SAMPLES directions of the camera's path, stays clear of every overlay."""
    if framing.room is None or not framing.room.obstacles and framing.room.bounds == framing.free:
        return framing
    pick = np.unique(np.round(np.linspace(0, len(offset) - 1, ROOM_SAMPLES)).astype(int))
    t = room_to_grow(framing.points, offset[pick], up[pick], framing.aspect, framing.room,
                     centers=None if centers is None else centers[pick])
    return dataclasses.replace(framing, free=framing.room.grown(t))


def fitted_positions(offset: np.ndarray, up: np.ndarray, ratio: np.ndarray, framing: Framing,
                     centers: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(position, focal point), (F, 3) each, of cameras looking along -``offset`` (F, 3) with ``up`` (F, 3) that
    frame ``framing``'s surface in its free rectangle (:func:`llstudio.film.framing.fit_camera`), then moved along
    their view by ``ratio`` (F,) of the fitted distance: the keyframes' distances and the dolly relative to their
    closest point in the film (ratio >= 1), so they move the camera by as much as they change the distance and the
    closest moment shows the fit itself (the surface never leaves its panel). ``centers`` (F, 3): points kept at
    the free rectangle's centre (a follow camera; the surface still fits inside).

    With the captured steps' points (see Framing) every frame is fitted to each captured step around it and the
    fits blended with the surface's own spline; otherwise the whole film's points are fitted at FIT_SAMPLES frames
    and splined between."""
    n = len(offset)
    if framing.steps and framing.position is not None:
        focal, dist = _per_step_fits(offset, up, framing, centers)
        return focal + offset * (dist * ratio)[:, None], focal
    samples = np.unique(np.round(np.linspace(0, n - 1, min(n, FIT_SAMPLES))).astype(int))
    focal_s, dist_s = [], []
    for f in samples:
        pos, foc = fit_camera(framing.points, offset[f], up[f], framing.aspect, framing.free,
                              center=None if centers is None else centers[f])
        focal_s.append(foc)
        dist_s.append(np.linalg.norm(pos - foc))
    focal_s, dist_s = np.array(focal_s), np.array(dist_s)
    if len(samples) >= 3:
        frames = np.arange(n)
        focal = CubicSpline(samples, focal_s, axis=0)(frames)
        dist = CubicSpline(samples, dist_s)(frames)
    else:
        focal = np.repeat(focal_s[:1], n, axis=0)
        dist = np.repeat(dist_s[:1], n)
    return focal + offset * (dist * ratio)[:, None], focal


def _per_step_fits(offset, up, framing: Framing, centers) -> tuple[np.ndarray, np.ndarray]:
    """(focal (F, 3), distance (F,)): every frame's fits to the captured steps its surface blends (at most four),
    blended with the timeline's weights; fits are shared between frames that look the same way."""
    k_n, n = len(framing.steps), len(offset)
    weights = framing.weights if framing.weights is not None else (np.zeros(max(k_n - 1, 0)),) * 2
    cache: dict = {}

    def fit(k: int, f: int) -> np.ndarray:
        key = (k, offset[f].tobytes(), up[f].tobytes(), None if centers is None else centers[f].tobytes())
        if key not in cache:
            pos, foc = fit_camera(framing.steps[k], offset[f], up[f], framing.aspect, framing.free,
                                  center=None if centers is None else centers[f])
            cache[key] = np.append(foc, np.linalg.norm(pos - foc))
        return cache[key]

    out = np.empty((n, 4))
    for f in range(n):
        u = float(framing.position[f])
        k = min(int(np.floor(u)), k_n - 1)
        s = u - k
        if s == 0.0 or k >= k_n - 1:
            out[f] = fit(k, f)
            continue
        data = np.full((k_n, 4), np.nan)
        for j in range(max(k - 1, 0), min(k + 3, k_n)):
            if j in (k, k + 1) or (j == k - 1 and weights[0][k]) or (j == k + 2 and weights[1][k]):
                data[j] = fit(j, f)
        out[f] = hermite_blend(data, k, s, weights)
    return out[:, :3], out[:, 3]


# A panel narrower than this width/height ratio moves its camera back (see panel_camera): the surface, seen at an
# angle, is wider than it is tall and would otherwise be cut at the panel's sides.
MIN_ASPECT = 1.2


def panel_camera(path: CameraPath, width: int, height: int) -> CameraPath:
    """The shared camera path as one panel of ``width`` x ``height`` sees it: the same directions, focal points and
    up vectors, with the distance multiplied by ``MIN_ASPECT / (width / height)`` when the panel is narrower than
    MIN_ASPECT, so that a tall panel shows the whole surface instead of cutting its sides (the view angle is
    vertical, so a narrow window sees less to the sides at the same distance)."""
    factor = max(1.0, MIN_ASPECT / (width / height))
    if factor == 1.0:
        return path
    position = path.focal_point + (path.position - path.focal_point) * factor
    return CameraPath(position, path.focal_point, path.up)
