"""Camera keyframes → one camera pose per frame. Pure numpy: no pyvista here.

Keyframes are spherical coordinates (azimuth, elevation, distance, roll) around a focal point, at fractions of the
film. Between keyframes the coordinates follow a natural cubic spline (continuous velocity and acceleration) or
straight lines; 'in_out' easing slows the camera to rest at the start and the end of the film.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import CameraSpec


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
        from scipy.interpolate import CubicSpline

        return CubicSpline(ats, values, axis=0, bc_type="natural")(t)
    return np.stack([np.interp(t, ats, values[:, d]) for d in range(values.shape[1])], axis=1)


def _rotate(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of vectors v (F, 3) about unit axes (F, 3) by angles (F,) in radians."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + np.cross(axis, v) * s + axis * np.sum(axis * v, axis=1, keepdims=True) * (1 - c)


def camera_path(spec: CameraSpec, n_frames: int, focal_point, scale: float) -> CameraPath:
    """Camera poses for ``n_frames`` frames around ``focal_point``; distances are in units of ``scale``."""
    keys = spec.keyframes
    ats = np.array([k.at for k in keys])
    vals = np.array([[k.azimuth, k.elevation, k.distance, k.roll] for k in keys], dtype=np.float64)
    tau = film_time(n_frames, spec.easing)
    az, el, dist, roll = interpolate_keys(ats, vals, tau, spec.interpolation).T
    el = np.clip(el, -89.0, 89.0)
    dist = np.maximum(dist, 1e-3)
    azr, elr = np.radians(az), np.radians(el)
    offset = np.stack([np.cos(elr) * np.cos(azr), np.cos(elr) * np.sin(azr), np.sin(elr)], axis=1)
    focal = np.broadcast_to(np.asarray(focal_point, dtype=np.float64), (n_frames, 3)).copy()
    position = focal + offset * (dist * scale)[:, None]
    # Up: world z made perpendicular to the view direction, then rolled about it.
    view = -offset
    up = np.array([0.0, 0.0, 1.0]) - view * view[:, 2:3]
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    up = _rotate(up, view, np.radians(roll))
    return CameraPath(position, focal, up)
