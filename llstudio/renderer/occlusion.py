"""Ambient occlusion of the surface: basins darker than ridges, as light from an overcast sky would leave them.

Screen-space ambient occlusion (VTK's SSAO pass) costs several full-screen passes a frame on a software renderer.
A loss surface is a height field on a regular grid, so each vertex's openness to the sky is cheap to compute on
the grid itself (horizon-based occlusion): in each of eight directions, the highest angle at which the terrain
within ``reach`` rises above the vertex; the vertex sees the sky above all those horizons. The per-vertex factor
goes to the shader as an attribute that scales the ambient and diffuse colours (specular highlights stay: a wet
basin still shines). Nothing about the values changes: colours, heights and contour levels are the same.
"""

from __future__ import annotations

import numpy as np

# The eight directions on the grid.
_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))

_VERTEX_DEC = "//VTK::Normal::Dec\nin float llOcclusion;\nout float llOcclusionVC;"
_VERTEX_IMPL = "//VTK::Normal::Impl\n  llOcclusionVC = llOcclusion;"
_FRAGMENT_DEC = "//VTK::Normal::Dec\nin float llOcclusionVC;"
# After the colour (and the contour lines mixed into it), before the lights use it.
_FRAGMENT_IMPL = "//VTK::Normal::Impl\n  ambientColor *= llOcclusionVC;\n  diffuseColor *= llOcclusionVC;"


def _steps(reach: int) -> np.ndarray:
    """The distances (grid steps) at which the horizon is sampled: every step up to 4, then spread geometrically
    to ``reach`` (at most a dozen in all: a 201-wide grid would otherwise cost 30 ms a frame)."""
    far = np.round(np.geomspace(4, reach, 8)).astype(int) if reach > 4 else np.array([], dtype=int)
    return np.unique(np.concatenate([np.arange(1, min(reach, 4) + 1), far]))


def openness(z: np.ndarray, dx: float, dy: float, reach: int) -> np.ndarray:
    """(nx, ny) share of the sky each vertex of the height field ``z`` (nx, ny) sees, 0 … 1: one minus the mean,
    over eight directions, of the sine of the horizon's elevation within ``reach`` grid steps (0 where the terrain
    nowhere rises above the vertex), sampled at :func:`_steps`. ``dx``, ``dy``: the grid spacing in the units of ``z``."""
    nx, ny = z.shape
    pad = np.pad(z, reach, mode="edge")
    total = np.zeros_like(z, dtype=np.float64)
    for di, dj in _DIRECTIONS:
        best = np.zeros_like(z, dtype=np.float64)  # tangent of the horizon's elevation
        for s in _steps(reach):
            i0, j0 = reach + s * di, reach + s * dj
            rise = pad[i0:i0 + nx, j0:j0 + ny] - z
            np.maximum(best, rise / (s * np.hypot(di * dx, dj * dy)), out=best)
        total += best / np.sqrt(1.0 + best * best)  # sin(atan(t))
    return 1.0 - total / len(_DIRECTIONS)


def occlusion_factor(z: np.ndarray, extent: float, strength: float) -> np.ndarray:
    """(nx, ny) what the surface's ambient and diffuse colours are multiplied by: 1 on open ground, down to
    1 - ``strength`` where the sky is fully hidden. ``extent``: the side of the square the grid fills (display
    units, as ``z``); the horizon is searched over a fifth of it."""
    nx, ny = z.shape
    if nx < 3 or ny < 3 or strength <= 0:
        return np.ones_like(z, dtype=np.float64)
    dx, dy = extent / (nx - 1), extent / (ny - 1)
    reach = max(2, int(round(0.2 * (max(nx, ny) - 1))))
    return 1.0 - strength * (1.0 - openness(z, dx, dy, reach))


class OcclusionShading:
    """Occlusion on the surface ``actor`` of ``grid``: an 'occlusion' point array, updated with the heights, read
    by the actor's shader."""

    def __init__(self, plotter, actor, grid, extent: float, strength: float):
        self.grid, self.extent, self.strength = grid, extent, strength
        grid["occlusion"] = np.ones(grid.n_points)
        # The surface's mapper (a vtkDataSetMapper) hands the drawing to a polygon mapper it makes on its first
        # render; that one maps arrays to shader attributes.
        mapper = actor.mapper
        if hasattr(mapper, "GetPolyDataMapper"):
            if mapper.GetPolyDataMapper() is None:
                plotter.ren_win.Render()
            mapper = mapper.GetPolyDataMapper()
        mapper.MapDataArrayToVertexAttribute("llOcclusion", "occlusion", 0, -1)  # 0: point data
        sp = actor.GetShaderProperty()
        sp.AddVertexShaderReplacement("//VTK::Normal::Dec", True, _VERTEX_DEC, False)
        sp.AddVertexShaderReplacement("//VTK::Normal::Impl", True, _VERTEX_IMPL, False)
        sp.AddFragmentShaderReplacement("//VTK::Normal::Dec", True, _FRAGMENT_DEC, False)
        sp.AddFragmentShaderReplacement("//VTK::Normal::Impl", True, _FRAGMENT_IMPL, False)

    def update(self, z: np.ndarray) -> None:
        """Recompute the factor for heights ``z`` (nx, ny) (display units)."""
        self.grid["occlusion"] = occlusion_factor(z, self.extent, self.strength).ravel(order="F")
