"""Captures → files for other tools: ParaView (vts), the Li et al. HDF5 layout (h5), numpy (npz), Blender (ply).

Each exporter takes a :class:`llstudio.landscape.result.Capture` and a directory and returns the paths it wrote, in
order. ``<name>`` is the scene's name (its file's stem); ``<step>`` is a training step number, zero-padded to 7
digits. Every file is written to a temporary name beside it and renamed when complete (``files.atomic_write``), so
an interrupted export leaves no half-written file; multi-file exports write their index file (``.pvd``) last.

``npz`` — one file ``<name>.npz`` (``numpy.load``; no pickles):

    alphas (nx,), betas (ny,)      the grid axes (of the first captured step, in a zoom film)
    loss (steps, nx, ny)           raw loss, 'ij' indexing: loss[k, i, j] at (alphas[i] * scales[k],
                                   betas[j] * scales[k]); NaN where not finite
    steps (steps,)                 the captured training steps
    scales (steps,)                each captured step's zoom (grid.zoom), what its axes are multiplied by; ones
                                   without zoom
    center_loss (steps,)           the loss at each captured step's own weights
    train_loss (training steps,)   the mini-batch loss of every training step
    d1/<param>, d2/<param>         the two directions, one array per model parameter (e.g. ``d1/0.weight``)
    center/<k>/<param>             the weights at captured step index k (k = 0 … steps-1, not the step number);
                                   in the 'fixed' frame the grid is centred on one plane centre, not on these
    plane_path (steps, 2)          when the capture has it: each captured step's (alpha, beta) on the plane
    explained_variance (2,)        when the capture has it ('pca' directions)
    hessian_eigenvalues (2,)       when the capture has it ('hessian' directions)
    curvature_alphas (cx,),        with [capture.curvature]: the curvature grid's axes (same range, coarser)
    curvature_betas (cy,)
    curv_min, curv_max,            (steps, cx, cy) min/max Hessian eigenvalue and |curv_min / curv_max|, 'ij'
    convexity                      indexing, NaN where not finite or not converged
    sample_loss (steps, S, nx, ny) per-sample captures (capture.data = 'samples'): each sample's own landscape;
                                   ``loss`` is their mean
    sample_center_loss (steps, S)  per-sample captures: each sample's loss at the captured step's weights
    sample_indices (S,)            per-sample captures: the samples' positions in the fixed evaluation subset
    capture_key, scene, frame      0-d strings: the cache key, the resolved scene as JSON, the directions frame

``vts`` — per captured step ``<name>_step_<step>.vts`` (a VTK structured grid, ParaView and pyvista read it) with
points (alpha, beta, z), the step's own coordinates (``alphas * scales[k]`` in a zoom film), z the scaled loss
(``scaling``: clip, log10; non-finite values replaced by the highest finite loss of the capture, as in the film);
point arrays ``loss`` (raw, NaN where not finite) and ``scaled_loss`` (= z); field data ``step``, ``center_loss``
and ``scale``. ``<name>.pvd`` lists them as a time series, the time of each file being its training step: open it
in ParaView to step through training. With curvature maps,
``<name>_curvature_step_<step>.vts`` (flat, z = 0, on the curvature grid) holds point arrays ``curv_min``,
``curv_max`` and ``convexity`` and field data ``step`` and ``scale``, listed in ``<name>_curvature.pvd``.

``h5`` — the layout of the reference implementation of Li et al. (github.com/tomgoldstein/loss-landscape), per
captured step ``<name>_step_<step>.h5``:

    xcoordinates (nx,), ycoordinates (ny,)
    train_loss (ny, nx)            train_loss[j, i] is the loss at (xcoordinates[i], ycoordinates[j])
    dir_file                       name of the directions file (a string, as in Li et al.)

``train_loss`` follows the reference code's convention, which pairs it with ``numpy.meshgrid(xcoordinates,
ycoordinates)`` ('xy' indexing; see its plot_2D.py and h52vtp.py): it is llstudio's (nx, ny) grid transposed,
so that the reference plotting scripts draw it the right way round. (The reference allocates (nx, ny) but fills
it in that 'xy' order, which is the same thing for the square grids it is used with.) Non-finite values are NaN.
``train_acc`` is left out: llstudio captures the loss only. The attributes ``step`` and ``center_loss`` are
llstudio additions, as are, with curvature maps, ``curv_xcoordinates`` (cx,), ``curv_ycoordinates`` (cy,) and
``curv_min``, ``curv_max``, ``convexity`` (cy, cx) in the same 'xy' layout. In a zoom film (``grid.zoom``)
``xcoordinates`` and ``ycoordinates`` (and the ``curv_`` ones) stay the base axes, those of the first captured
step, in every file, so the files share one layout; the attribute ``scale`` (every file has it, 1.0 without
zoom) is what they are multiplied by for that step: ``train_loss[j, i]`` is the loss at
``(xcoordinates[i] * scale, ycoordinates[j] * scale)``. The reference's plotting scripts ignore it and label
every step with the base axes. ``<name>_directions.h5`` holds the groups ``xdirection`` and ``ydirection`` (d1,
d2) with one dataset per parameter name, in the model's order, where the reference stores an anonymous list
("0", "1", ...).
Needs the optional dependency h5py (``pip install 'llstudio[h5]'``).

A 1D capture (``grid.dimensions = 1``) has ``betas = [0.0]`` and ``loss`` (steps, nx, 1) in npz; its vts grids are
one point wide (a curve ParaView draws as a line); its h5 files follow the reference's 1D layout: ``train_loss``
(nx,) and no ``ycoordinates`` (and no ``ydirection`` in the directions file). ply refuses it (no surface).
``npz`` also holds, for every training run (``runs``, primary first), ``run/<name>/plane_path`` (steps, 2),
``run/<name>/center_loss`` (steps,), ``run/<name>/train_loss`` and ``run/<name>/updates`` (steps, 2), and
``run_names``.

``ply`` — per captured step ``<name>_step_<step>.ply``, a triangulated surface (binary PLY, for Blender): vertex
(alpha, beta, h) at the step's own coordinates (times its zoom), h the scaled loss normalised as in the film,
``(v - vmin) / (vmax - vmin) * z_scale * width`` (vmin, vmax over the whole capture, or over each step when
``scaling.range = "frame"``; width the larger side of the step's grid, so every step has the film's proportions),
and per-vertex RGB colours from the scene's ``look.colormap`` at that same normalised value (with
``look.color_by = "convexity"``: from ``look.convexity_colormap`` at the convexity ratio, as in the film; grey where
it is unknown).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import MissingDependency, UsageError
from ..files import atomic_write
from ..film.film import surface_colors
from ..film.timeline import fill_nonfinite, scale_loss
from ..renderer.backend import structured_grid, triangulated_surface

FORMATS = ("vts", "h5", "npz", "ply")


# ----------------------------------------------------------------------------------------------- helpers


def _np(v) -> np.ndarray:
    """A torch tensor (or anything array-like) as a numpy array."""
    if hasattr(v, "detach"):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def _step_file(capture, step, suffix: str) -> str:
    return f"{capture.scene.name}_step_{int(step):07d}{suffix}"


def scaled_values(capture) -> np.ndarray:
    """(steps, nx, ny) scaled loss as the film shows it: non-finite values → the highest finite loss, then the
    scene's clip and log."""
    filled, _ = fill_nonfinite(np.asarray(capture.loss, dtype=np.float64))
    return scale_loss(filled, capture.scene.scaling)


def normalized_values(capture, values: np.ndarray | None = None) -> np.ndarray:
    """(steps, nx, ny) in [0, 1]: the scaled loss normalised over the capture (or per step with scaling.range =
    'frame'), the value that sets the film's heights and colours."""
    v = scaled_values(capture) if values is None else values
    if capture.scene.scaling.range == "frame":
        lo = v.min(axis=(1, 2), keepdims=True)
        hi = v.max(axis=(1, 2), keepdims=True)
    else:
        lo, hi = v.min(), v.max()
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, (v - lo) / np.where(span > 0, span, 1.0), 0.0)


def _h5py():
    try:
        import h5py
    except ImportError:
        raise MissingDependency("the h5 export needs h5py: pip install 'llstudio[h5]' (or pip install h5py)") from None
    return h5py


def require(fmt: str) -> None:
    """Raise before any work if ``fmt`` is unknown or its optional dependency is missing."""
    if fmt not in EXPORTERS:
        raise UsageError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "h5":
        _h5py()


# ----------------------------------------------------------------------------------------------- npz


def export_npz(capture, directory: Path | str) -> list[Path]:
    """All the capture's arrays in one ``<name>.npz`` (layout in the module docstring)."""
    directory = Path(directory)
    arrays: dict[str, np.ndarray] = {
        "alphas": np.asarray(capture.alphas), "betas": np.asarray(capture.betas), "loss": np.asarray(capture.loss),
        "steps": np.asarray(capture.steps), "scales": np.asarray(capture.scales),
        "center_loss": np.asarray(capture.center_loss),
        "train_loss": np.asarray(capture.train_loss),
    }
    d1, d2 = capture.directions
    arrays.update({f"d1/{n}": _np(v) for n, v in d1.items()})
    arrays.update({f"d2/{n}": _np(v) for n, v in d2.items()})
    for k, weights in enumerate(capture.centers):
        arrays.update({f"center/{k}/{n}": _np(v) for n, v in weights.items()})
    # Fields a capture may carry (the fixed frame's projected path, PCA's explained variance).
    for name in ("plane_path", "explained_variance", "hessian_eigenvalues", "curvature_alphas", "curvature_betas",
                 "curv_min", "curv_max", "convexity", "sample_loss", "sample_center_loss", "sample_indices"):
        v = getattr(capture, name, None)
        if v is not None:
            arrays[name] = np.asarray(v)
    for run in getattr(capture, "runs", None) or []:
        for name in ("plane_path", "center_loss", "train_loss", "updates"):
            arrays[f"run/{run.name}/{name}"] = np.asarray(getattr(run, name))
    if getattr(capture, "runs", None):
        arrays["run_names"] = np.array([r.name for r in capture.runs])
    arrays["capture_key"] = np.array(str(capture.key))
    arrays["scene"] = np.array(json.dumps(capture.scene.resolved_dump(), sort_keys=True))
    arrays["frame"] = np.array(str(getattr(capture, "frame", "follow")))

    path = directory / f"{capture.scene.name}.npz"

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays)

    atomic_write(path, write)
    return [path]


# ----------------------------------------------------------------------------------------------- vts


def _pvd(entries: list[tuple[int, str]]) -> bytes:
    """A ParaView Collection (.pvd): one DataSet per (timestep, relative file name)."""
    root = ET.Element("VTKFile", type="Collection", version="0.1", byte_order="LittleEndian")
    coll = ET.SubElement(root, "Collection")
    for step, name in entries:
        ET.SubElement(coll, "DataSet", timestep=str(int(step)), group="", part="0", file=name)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _save_series(directory: Path, pvd_name: str, grids) -> list[Path]:
    """Write each (step, file name, pyvista grid) of ``grids`` atomically, then the ``pvd_name`` time series of
    them (last, so a .pvd never names a missing file); returns every path written."""
    written, entries = [], []
    for step, name, grid in grids:
        atomic_write(directory / name, lambda tmp, g=grid: g.save(tmp))
        written.append(directory / name)
        entries.append((int(step), name))
    text = _pvd(entries)
    atomic_write(directory / pvd_name, lambda tmp: Path(tmp).write_bytes(text))
    return written + [directory / pvd_name]


def export_vts(capture, directory: Path | str) -> list[Path]:
    """One ``.vts`` structured grid per captured step plus a ``<name>.pvd`` time series (written last)."""
    directory = Path(directory)
    scaled = scaled_values(capture)
    scales = capture.scales

    def grids():
        for k, step in enumerate(capture.steps):
            grid = structured_grid(capture.alphas, capture.betas, scaled[k], scales[k])
            grid.point_data["loss"] = np.asarray(capture.loss[k], dtype=np.float64).ravel(order="F")
            grid.point_data["scaled_loss"] = scaled[k].ravel(order="F")
            grid.field_data["step"] = np.array([int(step)])
            grid.field_data["center_loss"] = np.array([float(capture.center_loss[k])])
            grid.field_data["scale"] = np.array([scales[k]])
            yield step, _step_file(capture, step, ".vts"), grid

    return (_save_series(directory, f"{capture.scene.name}.pvd", grids())
            + _export_curvature_vts(capture, directory))


def _export_curvature_vts(capture, directory: Path) -> list[Path]:
    """The curvature maps as flat grids of their own (they live on a coarser grid than the loss)."""
    if getattr(capture, "curv_min", None) is None:
        return []
    convexity = capture.convexity
    scales = capture.scales
    flat = np.zeros((len(capture.curvature_alphas), len(capture.curvature_betas)))

    def grids():
        for k, step in enumerate(capture.steps):
            grid = structured_grid(capture.curvature_alphas, capture.curvature_betas, flat, scales[k])
            grid.point_data["curv_min"] = np.asarray(capture.curv_min[k], np.float64).ravel(order="F")
            grid.point_data["curv_max"] = np.asarray(capture.curv_max[k], np.float64).ravel(order="F")
            grid.point_data["convexity"] = np.asarray(convexity[k], np.float64).ravel(order="F")
            grid.field_data["step"] = np.array([int(step)])
            grid.field_data["scale"] = np.array([scales[k]])
            yield step, f"{capture.scene.name}_curvature_step_{int(step):07d}.vts", grid

    return _save_series(directory, f"{capture.scene.name}_curvature.pvd", grids())


# ----------------------------------------------------------------------------------------------- h5


def _is_1d(capture) -> bool:
    return capture.scene.grid.dimensions == 1


def export_h5(capture, directory: Path | str) -> list[Path]:
    """Li et al.'s surface files, one per captured step, and their directions file (layout in the module
    docstring). Raises MissingDependency without h5py."""
    h5py = _h5py()
    directory = Path(directory)
    dir_name = f"{capture.scene.name}_directions.h5"
    d1, d2 = capture.directions
    one_d = _is_1d(capture)

    def write_directions(tmp):
        with h5py.File(tmp, "w") as f:
            for group, d in (("xdirection", d1),) + (() if one_d else (("ydirection", d2),)):
                g = f.create_group(group, track_order=True)
                for n, v in d.items():
                    g.create_dataset(n, data=_np(v))
                g.attrs["parameters"] = list(d)

    atomic_write(directory / dir_name, write_directions)
    written = [directory / dir_name]
    x, y = np.asarray(capture.alphas, np.float64), np.asarray(capture.betas, np.float64)
    scales = capture.scales
    for k, step in enumerate(capture.steps):
        # (ny, nx), 'xy' indexing, as the reference code reads it with meshgrid(xcoordinates, ycoordinates); a 1D
        # capture is (nx,) without ycoordinates, the reference's 1D layout (its plot_1D.py).
        loss = np.ascontiguousarray(np.asarray(capture.loss[k], dtype=np.float64).T)
        if one_d:
            loss = loss[0]

        def write_step(tmp, loss=loss, step=step, k=k):
            with h5py.File(tmp, "w") as f:
                f["dir_file"] = dir_name
                f["xcoordinates"] = x
                if not one_d:
                    f["ycoordinates"] = y
                f["train_loss"] = loss
                f.attrs["step"] = int(step)
                f.attrs["center_loss"] = float(capture.center_loss[k])
                f.attrs["scale"] = float(scales[k])
                if getattr(capture, "curv_min", None) is not None:
                    f["curv_xcoordinates"] = np.asarray(capture.curvature_alphas, np.float64)
                    f["curv_ycoordinates"] = np.asarray(capture.curvature_betas, np.float64)
                    for key, v in (("curv_min", capture.curv_min), ("curv_max", capture.curv_max),
                                   ("convexity", capture.convexity)):
                        f[key] = np.ascontiguousarray(np.asarray(v[k], np.float64).T)

        name = _step_file(capture, step, ".h5")
        atomic_write(directory / name, write_step)
        written.append(directory / name)
    return written


# ----------------------------------------------------------------------------------------------- ply


def export_ply(capture, directory: Path | str) -> list[Path]:
    """One triangulated, vertex-coloured surface per captured step, scaled like the film (module docstring)."""
    # Imported here, not at the top: the CLI imports this module at start-up, and matplotlib and scipy (behind the
    # surface colours) would add most of a second to every command.
    import matplotlib

    if _is_1d(capture):
        raise UsageError(f"{capture.scene.name}: ply writes surfaces, and a 1D capture (grid.dimensions = 1) is a "
                         "curve; use --format npz, vts or h5")
    directory = Path(directory)
    scene = capture.scene
    cmap = matplotlib.colormaps[scene.look.colormap]
    alphas, betas = np.asarray(capture.alphas, float), np.asarray(capture.betas, float)
    width = float(max(alphas[-1] - alphas[0], betas[-1] - betas[0]))
    scales = capture.scales
    unit = normalized_values(capture)
    colour_values = unit
    if scene.look.color_by == "convexity" and getattr(capture, "curv_min", None) is not None:
        cmap = matplotlib.colormaps[scene.look.convexity_colormap].with_extremes(bad="#808080")
        colour_values = np.ma.masked_invalid(surface_colors(capture))
    written = []
    for k, step in enumerate(capture.steps):
        grid = structured_grid(alphas, betas, unit[k] * scene.scaling.z_scale * width * scales[k], scales[k])
        rgb = np.rint(cmap(colour_values[k].ravel(order="F"))[:, :3] * 255.0).astype(np.uint8)
        grid.point_data["colors"] = rgb
        # Point arrays travel through the filters, whatever order the surface's points end up in.
        mesh = triangulated_surface(grid)
        name = _step_file(capture, step, ".ply")
        atomic_write(directory / name, lambda tmp, m=mesh: m.save(tmp, texture="colors"))
        written.append(directory / name)
    return written


# ----------------------------------------------------------------------------------------------- entry


EXPORTERS: dict[str, Callable[..., list[Path]]] = {
    "vts": export_vts, "h5": export_h5, "npz": export_npz, "ply": export_ply,
}


def default_directory(scene) -> Path:
    """``renders/<scene name>_export`` under the working directory."""
    return Path("renders") / f"{scene.name}_export"


def export(capture, fmt: str, directory: Path | str) -> list[Path]:
    """Write ``capture`` in format ``fmt`` (one of :data:`FORMATS`) into ``directory``; returns the paths."""
    require(fmt)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return EXPORTERS[fmt](capture, directory)
