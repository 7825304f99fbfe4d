"""Exports (npz, vts + pvd, h5, ply): each format read back with its own reader and compared with the capture;
the command line; atomic writes."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from llstudio.output import export as ex
from llstudio.errors import MissingDependency, UsageError


def grid_points(cap) -> np.ndarray:
    """(nx*ny, 2) (alpha, beta) in pyvista's StructuredGrid point order (Fortran order of the (nx, ny) arrays)."""
    X, Y = np.meshgrid(cap.alphas, cap.betas, indexing="ij")
    return np.c_[X.ravel(order="F"), Y.ravel(order="F")]


def leftovers(directory) -> list[str]:
    """Temporary files atomic_write would leave behind (hidden, '.part')."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or ".part" in p.name)


@pytest.fixture(scope="module")
def nonsquare(tiny_capture):
    """The tiny capture cut to a 5x3 grid, with a NaN and an inf: catches transposes and unfilled values."""
    loss = tiny_capture.loss[:, :, :3].copy()
    loss[1, 0, 2] = np.nan
    loss[2, 4, 0] = np.inf
    return dataclasses.replace(tiny_capture, betas=tiny_capture.betas[:3].copy(), loss=loss)


# ------------------------------------------------------------------------------------------------- npz


def test_npz_reads_back_equal(tiny_capture, tmp_path):
    (path,) = ex.export(tiny_capture, "npz", tmp_path)
    assert path == tmp_path / "tiny.npz"
    cap = tiny_capture
    with np.load(path, allow_pickle=False) as z:
        for name in ("alphas", "betas", "loss", "steps", "center_loss", "train_loss"):
            np.testing.assert_array_equal(z[name], getattr(cap, name), err_msg=name)
        assert z["loss"].shape == (len(cap.steps), len(cap.alphas), len(cap.betas))
        for i, d in enumerate(cap.directions, start=1):
            for n, v in d.items():
                np.testing.assert_array_equal(z[f"d{i}/{n}"], v.numpy())
        for k, weights in enumerate(cap.centers):
            for n, v in weights.items():
                np.testing.assert_array_equal(z[f"center/{k}/{n}"], v.numpy())
        for name in ("plane_path", "explained_variance"):  # carried only when the capture has them
            if getattr(cap, name, None) is not None:
                np.testing.assert_array_equal(z[name], getattr(cap, name))
        assert str(z["capture_key"]) == cap.key
        assert json.loads(str(z["scene"]))["grid"]["resolution"] == 5
    assert leftovers(tmp_path) == []


def test_npz_keeps_nan_where_not_finite(nonsquare, tmp_path):
    (path,) = ex.export_npz(nonsquare, tmp_path)
    with np.load(path) as z:
        np.testing.assert_array_equal(z["loss"], nonsquare.loss)  # NaN compares equal here
        assert z["loss"].shape == (len(nonsquare.steps), 5, 3)


# ------------------------------------------------------------------------------------------------- vts


@pytest.mark.parametrize("which", ["tiny_capture", "nonsquare"])
def test_vts_reads_back_with_pyvista(which, request, tmp_path):
    import pyvista as pv

    cap = request.getfixturevalue(which)
    paths = ex.export(cap, "vts", tmp_path)
    assert [p.suffix for p in paths] == [".vts"] * len(cap.steps) + [".pvd"]
    scaled = ex.scaled_values(cap)
    nx, ny = len(cap.alphas), len(cap.betas)
    for k, path in enumerate(paths[:-1]):
        assert path.name == f"tiny_step_{cap.steps[k]:07d}.vts"
        g = pv.read(path)
        assert g.n_points == nx * ny
        assert tuple(g.dimensions) == (nx, ny, 1)
        np.testing.assert_array_equal(g["loss"], cap.loss[k].ravel(order="F"))
        np.testing.assert_allclose(g.points[:, :2], grid_points(cap))
        np.testing.assert_allclose(g.points[:, 2], scaled[k].ravel(order="F"))
        np.testing.assert_array_equal(g["scaled_loss"], scaled[k].ravel(order="F"))
        assert np.all(np.isfinite(g.points))
        assert int(g.field_data["step"][0]) == cap.steps[k]
    # the point of loss[k, i, j] is (alphas[i], betas[j]), whatever the storage order
    g = pv.read(paths[0])
    i, j = nx - 1, 1
    idx = int(np.argmin(np.hypot(g.points[:, 0] - cap.alphas[i], g.points[:, 1] - cap.betas[j])))
    assert g["loss"][idx] == cap.loss[0, i, j]


def test_pvd_lists_every_step(tiny_capture, tmp_path):
    import pyvista as pv

    paths = ex.export_vts(tiny_capture, tmp_path)
    pvd = paths[-1]
    assert pvd.name == "tiny.pvd"
    root = ET.parse(pvd).getroot()
    assert root.tag == "VTKFile" and root.get("type") == "Collection"
    sets = root.findall("./Collection/DataSet")
    assert [int(s.get("timestep")) for s in sets] == list(tiny_capture.steps)
    assert [s.get("file") for s in sets] == [p.name for p in paths[:-1]]  # relative names
    assert all((tmp_path / s.get("file")).exists() for s in sets)
    reader = pv.get_reader(pvd)
    assert list(reader.time_values) == [float(s) for s in tiny_capture.steps]


# ------------------------------------------------------------------------------------------------- h5


@pytest.mark.parametrize("which", ["tiny_capture", "nonsquare"])
def test_h5_reads_back_with_h5py(which, request, tmp_path):
    h5py = pytest.importorskip("h5py")
    cap = request.getfixturevalue(which)
    paths = ex.export(cap, "h5", tmp_path)
    assert paths[0].name == "tiny_directions.h5"
    assert [p.name for p in paths[1:]] == [f"tiny_step_{s:07d}.h5" for s in cap.steps]
    for k, path in enumerate(paths[1:]):
        with h5py.File(path, "r") as f:
            x, y, z = f["xcoordinates"][:], f["ycoordinates"][:], f["train_loss"][:]
            np.testing.assert_array_equal(x, cap.alphas)
            np.testing.assert_array_equal(y, cap.betas)
            # Li et al.'s convention: train_loss pairs with meshgrid(x, y) ('xy'): z[j, i] at (x[i], y[j])
            assert z.shape == (len(y), len(x))
            np.testing.assert_array_equal(z, cap.loss[k].T)
            X, Y = np.meshgrid(x, y)
            i, j = len(x) - 1, 1
            assert (X[j, i], Y[j, i]) == (cap.alphas[i], cap.betas[j])
            assert z[j, i] == cap.loss[k, i, j] or (np.isnan(z[j, i]) and np.isnan(cap.loss[k, i, j]))
            assert f["dir_file"][()].decode() == "tiny_directions.h5"
            assert "train_acc" not in f
            assert int(f.attrs["step"]) == cap.steps[k]
    with h5py.File(paths[0], "r") as f:
        for group, d in zip(("xdirection", "ydirection"), cap.directions):
            assert list(f[group]) == list(d)  # the model's parameter order
            for n, v in d.items():
                np.testing.assert_array_equal(f[group][n][:], v.numpy())


def test_h5_without_h5py_says_how_to_install(tiny_capture, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py → ImportError
    with pytest.raises(MissingDependency, match=r"pip install"):
        ex.export(tiny_capture, "h5", tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------- ply


@pytest.mark.parametrize("which", ["tiny_capture", "nonsquare"])
def test_ply_reads_back_with_pyvista(which, request, tmp_path):
    import matplotlib
    import pyvista as pv

    cap = request.getfixturevalue(which)
    paths = ex.export(cap, "ply", tmp_path)
    assert [p.name for p in paths] == [f"tiny_step_{s:07d}.ply" for s in cap.steps]
    nx, ny = len(cap.alphas), len(cap.betas)
    width = max(cap.alphas[-1] - cap.alphas[0], cap.betas[-1] - cap.betas[0])
    top = cap.scene.scaling.z_scale * width
    unit = ex.normalized_values(cap)
    cmap = matplotlib.colormaps[cap.scene.look.colormap]
    heights = []
    for k, path in enumerate(paths):
        m = pv.read(path)
        assert m.n_points == nx * ny
        assert m.n_cells == 2 * (nx - 1) * (ny - 1) and m.is_all_triangles
        assert "RGB" in m.point_data and m["RGB"].dtype == np.uint8 and m["RGB"].shape == (nx * ny, 3)
        z = m.points[:, 2]
        assert np.all(np.isfinite(z))
        assert z.min() >= -1e-6 and z.max() <= top * (1 + 1e-6)
        heights.append(z)
        # each vertex: its height and colour are those of its (alpha, beta) grid point
        i = np.abs(m.points[:, 0][:, None] - cap.alphas[None, :]).argmin(axis=1)
        j = np.abs(m.points[:, 1][:, None] - cap.betas[None, :]).argmin(axis=1)
        assert len(set(zip(i, j))) == nx * ny
        np.testing.assert_allclose(z, unit[k][i, j] * top, rtol=1e-5, atol=1e-6)
        expected = np.rint(cmap(unit[k][i, j])[:, :3] * 255).astype(np.uint8)
        np.testing.assert_array_equal(m["RGB"], expected)
    # film-wide range: the lowest point of the whole capture is at 0, the highest at the top
    allz = np.concatenate(heights)
    assert allz.min() == pytest.approx(0.0, abs=1e-6) and allz.max() == pytest.approx(top, rel=1e-6)


# ------------------------------------------------------------------------------------------------- api


def test_unknown_format_is_a_usage_error(tiny_capture, tmp_path):
    with pytest.raises(UsageError, match="unknown export format 'obj'"):
        ex.export(tiny_capture, "obj", tmp_path)
    assert set(ex.EXPORTERS) == set(ex.FORMATS)


def test_export_does_not_import_torch_at_module_level():
    code = "import sys, llstudio.output.export; print('torch' in sys.modules, 'pyvista' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------------- atomic


def test_failure_half_way_leaves_no_temporary_file(tiny_capture, tmp_path, monkeypatch):
    import pyvista as pv

    real_save = pv.StructuredGrid.save
    calls = []

    def save_then_die(self, filename, *a, **k):
        calls.append(filename)
        if len(calls) == 2:  # the second step: half a file, then the failure
            with open(filename, "wb") as f:
                f.write(b"<VTKFile half")
            raise OSError("disk full")
        return real_save(self, filename, *a, **k)

    monkeypatch.setattr(pv.StructuredGrid, "save", save_then_die)
    with pytest.raises(OSError, match="disk full"):
        ex.export_vts(tiny_capture, tmp_path)
    assert leftovers(tmp_path) == []
    # the first step's file is whole; the failed one and the index (written last) are absent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_step_0000000.vts"]
    assert pv.read(tmp_path / "tiny_step_0000000.vts").n_points == 25


def test_interrupt_leaves_no_temporary_file(tiny_capture, tmp_path, monkeypatch):
    def savez_then_interrupt(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(ex.np, "savez", savez_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        ex.export_npz(tiny_capture, tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------- cli








