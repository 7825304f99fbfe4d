"""Framing: where the camera stands so that the surface fills its panel. Pure numpy: no pyvista here.

The camera is VTK's perspective camera (a vertical view angle, square pixels). :func:`project` maps display points
to normalised panel coordinates (x to the right, y up, 0 … 1 across the panel), as the renderer will draw them;
:func:`fit_camera` keeps a viewing direction and finds the camera position and focal point that fit the surface's
points into a :class:`FreeRect`, the part of the panel the overlays leave free, as large as ``fill`` allows and
centred in it; :func:`outline_coverage` measures what the surface's projected outline covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

# VTK's default vertical view angle, which the renderer keeps.
VIEW_ANGLE = 30.0


@dataclass(frozen=True)
class FreeRect:
    """The part of a panel the surface may fill, in fractions of the panel: x from the left, y from the bottom."""

    left: float
    bottom: float
    right: float
    top: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.top - self.bottom

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.left + self.right) / 2, (self.bottom + self.top) / 2])


# The bands the overlays take today (renderer/text.py): the title line at the top (a 2.5% margin and a line of
# VTK's font size 1/42 of the height, which pyvista doubles: to about 8% of the height) and the step/loss line at
# the bottom (a 2.5% margin and a line at 0.8 of that size), with a little air.
DEFAULT_FREE = FreeRect(0.02, 0.085, 0.98, 0.90)


def free_rect(titled: bool, info: bool = True) -> FreeRect:
    """The default free rectangle of a panel with (or without) a title line and an info line."""
    return FreeRect(DEFAULT_FREE.left, DEFAULT_FREE.bottom if info else 0.03, DEFAULT_FREE.right,
                    DEFAULT_FREE.top if titled else 0.97)


@dataclass(frozen=True)
class Room:
    """Where a panel's surface may go: the ``free`` rectangle its overlays leave (always safe), and beyond it the
    panel less its margins (``bounds``) wherever no overlay box (``obstacles``, grown by the margin) lies. A
    surface's outline is no rectangle: its far corner may rise beside a title that sits in a corner, into room a
    rectangle clear of every box cannot use. All in fractions of the panel, y up."""

    free: FreeRect
    bounds: FreeRect
    obstacles: tuple[FreeRect, ...] = ()

    def grown(self, t: float) -> FreeRect:
        """The free rectangle moved ``t`` of the way (0 … 1) to the bounds on every side."""
        f, b = self.free, self.bounds
        return FreeRect(f.left + t * (b.left - f.left), f.bottom + t * (b.bottom - f.bottom),
                        f.right + t * (b.right - f.right), f.top + t * (b.top - f.top))


def convex_outline(xy: np.ndarray) -> np.ndarray:
    """(K, 2) the convex hull of 2D points (N, 2), counter-clockwise; the points themselves when degenerate."""
    try:
        return xy[ConvexHull(xy).vertices]
    except (QhullError, ValueError):
        return xy


def polygon_hits_rect(poly: np.ndarray, rect: FreeRect) -> bool:
    """Whether the convex polygon (K, 2) and the rectangle share any area (separating axes: the rectangle's two and
    the polygon's edge normals)."""
    if (poly[:, 0].max() <= rect.left or poly[:, 0].min() >= rect.right or poly[:, 1].max() <= rect.bottom
            or poly[:, 1].min() >= rect.top):
        return False
    corners = np.array([[rect.left, rect.bottom], [rect.right, rect.bottom], [rect.right, rect.top],
                        [rect.left, rect.top]])
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        normal = np.array([b[1] - a[1], a[0] - b[0]])
        p, c = poly @ normal, corners @ normal
        if c.min() >= p.max() - 1e-12 or c.max() <= p.min() + 1e-12:
            return False
    return True


def room_to_grow(points, directions, ups, aspect: float, room: Room, fill: float = 0.96, centers=None,
                 iterations: int = 7) -> float:
    """How far (0 … 1) the free rectangle can grow towards the room's bounds (:meth:`Room.grown`) while the
    surface's outline, fitted into it from every direction in ``directions`` (D, 3) with ``ups`` (D, 3) (and kept
    on ``centers`` (D, 3) if given), touches no obstacle: the least over the directions, by bisection."""
    hull = hull_points(points)
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        t = (lo + hi) / 2
        rect = room.grown(t)
        ok = True
        for i, (d, u) in enumerate(zip(directions, ups)):
            c = None if centers is None else centers[i]
            pos, foc = fit_camera(hull, d, u, aspect, rect, fill, center=c)
            outline = convex_outline(project(hull, pos, foc, u, aspect))
            if not np.all(np.isfinite(outline)) or any(polygon_hits_rect(outline, o) for o in room.obstacles):
                ok = False
                break
        lo, hi = (t, hi) if ok else (lo, t)
    return lo


def camera_axes(direction, up) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(right, true up, forward) unit vectors of a camera looking along -``direction`` (``direction`` points from
    the focal point to the camera) with ``up`` made perpendicular to the view."""
    back = np.asarray(direction, dtype=np.float64)
    back = back / np.linalg.norm(back)
    u = np.asarray(up, dtype=np.float64) - back * np.dot(up, back)
    u = u / np.linalg.norm(u)
    return np.cross(u, back), u, -back


def project(points, position, focal, up, aspect: float, view_angle: float = VIEW_ANGLE) -> np.ndarray:
    """(N, 2) normalised panel coordinates of display points (N, 3) seen from ``position`` towards ``focal`` with
    ``up``, in a panel of ``aspect`` = width / height; points behind the camera come out at infinity."""
    right, u, fwd = camera_axes(np.asarray(position, float) - np.asarray(focal, float), up)
    rel = np.asarray(points, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    depth = rel @ fwd
    t = np.tan(np.radians(view_angle) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (rel @ right) / np.where(depth > 1e-9, depth, np.nan) / (t * aspect)
        y = (rel @ u) / np.where(depth > 1e-9, depth, np.nan) / t
    out = np.column_stack([(x + 1) / 2, (y + 1) / 2])
    return np.where(np.isfinite(out), out, np.inf)


def hull_points(points) -> np.ndarray:
    """The vertices of the convex hull of display points (N, 3): a perspective projection's extremes lie on them,
    so fitting them fits every point. All points when they are too few or flat for a hull."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    try:
        return pts[ConvexHull(pts).vertices]
    except (QhullError, ValueError):
        return pts


def fit_camera(points, direction, up, aspect: float, free: FreeRect = DEFAULT_FREE, fill: float = 0.96,
               view_angle: float = VIEW_ANGLE, center=None) -> tuple[np.ndarray, np.ndarray]:
    """(position, focal point) of a camera looking along -``direction`` (from the focal point to the camera) with
    ``up``, in a panel of ``aspect`` = width / height, as close as it can stand while every display point (N, 3)
    projects into the middle ``fill`` of the ``free`` rectangle (its width and height scaled by ``fill`` about its
    centre): the points fill that rectangle's width or its height, and are centred along the other.

    ``center`` (3,): a point to keep at the free rectangle's centre instead of centring the points (a camera that
    follows the marker); the camera then stands back as far as it must for every point to stay inside. Pass the
    points' :func:`hull_points` when fitting the same points many times: the result is the same, and faster.

    In the camera's frame (right, up, back) a point (x, y, z) seen from a camera at (cx, cy, cz) projects to
    x' = (x - cx) / ((cz - z) k) in normalised device coordinates, with k = tan(view angle / 2) times the aspect
    (for y, without it). Keeping every x' within [lo, hi] for some cx needs, for every pair of points i, j,
    x_i - x_j <= k (hi (cz - z_i) - lo (cz - z_j)): the closest camera is
    cz = (max(x + k hi z) - min(x + k lo z)) / (k (hi - lo)), and cx the middle of the interval left there.
    With ``center`` at (xc, zc), cx = xc - m k (cz - zc) (m the rectangle's middle), and each point bounds cz
    from below on its own.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    right, u, fwd = camera_axes(direction, up)
    back = -fwd
    origin = pts.mean(axis=0)
    rel = pts - origin
    z = rel @ back
    t = np.tan(np.radians(view_angle) / 2)
    # The target rectangle in normalised device coordinates (-1 … 1).
    centre = free.center
    half = np.array([fill * free.width / 2, fill * free.height / 2])
    lo, hi, mid = 2 * (centre - half) - 1, 2 * (centre + half) - 1, 2 * centre - 1
    scales = (t * aspect, t)
    c_rel = None if center is None else np.asarray(center, dtype=np.float64) - origin
    coords = [rel @ right, rel @ u]
    # The camera stays in front of every point.
    cz = float(z.max()) + 1e-6 * (float(np.ptp(pts, axis=0).max()) or 1.0)
    for axis in (0, 1):
        x, k = coords[axis], scales[axis]
        if c_rel is None:
            need = (np.max(x + k * hi[axis] * z) - np.min(x + k * lo[axis] * z)) / (k * (hi[axis] - lo[axis]))
        else:
            a = x - c_rel @ (right if axis == 0 else u)
            zc = c_rel @ back
            upper = (a - mid[axis] * k * zc + hi[axis] * k * z) / ((hi[axis] - mid[axis]) * k)
            lower = (-a + mid[axis] * k * zc - lo[axis] * k * z) / ((mid[axis] - lo[axis]) * k)
            need = max(upper.max(), lower.max())
        cz = max(cz, float(need))
    shift = []
    for axis, axis_vec in ((0, right), (1, u)):
        x, k = coords[axis], scales[axis]
        if c_rel is None:
            a, b = np.max(x - hi[axis] * k * (cz - z)), np.min(x - lo[axis] * k * (cz - z))
            shift.append((a + b) / 2)
        else:
            shift.append(float(c_rel @ axis_vec - mid[axis] * k * (cz - c_rel @ back)))
    position = origin + right * shift[0] + u * shift[1] + back * cz
    # The focal point: on the view axis, as deep as the points' middle.
    focal = position - back * (cz - float(np.median(z)))
    return position, focal


def outline_coverage(points, triangles, position, focal, up, width: int, height: int,
                     view_angle: float = VIEW_ANGLE, cells: int = 160) -> tuple[float, float]:
    """(share of the panel's width, share of its area) the surface's projected outline covers: the triangles
    (T, 3) of display points (N, 3) rasterised onto a grid of ``cells`` columns (and as many rows as keep the
    cells square), clipped to the panel. The width share is the outline's horizontal extent inside the panel."""
    aspect = width / height
    p = project(points, position, focal, up, aspect, view_angle)
    nx, ny = cells, max(1, int(round(cells / aspect)))
    xs, ys = (np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny
    mask = np.zeros((ny, nx), dtype=bool)
    tri = p[np.asarray(triangles)]
    finite = np.all(np.isfinite(tri), axis=(1, 2))
    for a, b, c in tri[finite]:
        x0, x1 = max(min(a[0], b[0], c[0]), 0.0), min(max(a[0], b[0], c[0]), 1.0)
        y0, y1 = max(min(a[1], b[1], c[1]), 0.0), min(max(a[1], b[1], c[1]), 1.0)
        if x0 > x1 or y0 > y1:
            continue
        i0, i1 = int(np.floor(x0 * nx - 0.5)), int(np.ceil(x1 * nx - 0.5))
        j0, j1 = int(np.floor(y0 * ny - 0.5)), int(np.ceil(y1 * ny - 0.5))
        i0, j0 = max(i0, 0), max(j0, 0)
        gx, gy = np.meshgrid(xs[i0:i1 + 1], ys[j0:j1 + 1])
        d = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
        if abs(d) < 1e-15:
            continue
        l1 = ((b[1] - c[1]) * (gx - c[0]) + (c[0] - b[0]) * (gy - c[1])) / d
        l2 = ((c[1] - a[1]) * (gx - c[0]) + (a[0] - c[0]) * (gy - c[1])) / d
        inside = (l1 >= 0) & (l2 >= 0) & (l1 + l2 <= 1)
        mask[j0:j1 + 1, i0:i1 + 1] |= inside
    cols = np.flatnonzero(mask.any(axis=0))
    width_share = (cols[-1] - cols[0] + 1) / nx if len(cols) else 0.0
    return float(width_share), float(mask.mean())


def grid_triangles(nx: int, ny: int) -> np.ndarray:
    """(2 (nx-1) (ny-1), 3) triangles of an nx x ny grid of points numbered i * ny + j (C order of (nx, ny))."""
    idx = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    return np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])


def surface_points(heights, xs, ys) -> np.ndarray:
    """(nx ny, 3) display points of a height field ``heights`` (nx, ny) over display axes ``xs`` (nx,), ``ys``
    (ny,), numbered as :func:`grid_triangles` numbers them."""
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    return np.column_stack([X.ravel(), Y.ravel(), np.asarray(heights, dtype=np.float64).ravel()])


__all__ = ["DEFAULT_FREE", "FreeRect", "Room", "VIEW_ANGLE", "camera_axes", "convex_outline", "fit_camera",
           "free_rect", "grid_triangles", "hull_points", "outline_coverage", "polygon_hits_rect", "project",
           "room_to_grow", "surface_points"]
