"""Integrity of cache files: every file carries a checksum of its own contents, and a file that fails to read or
verify is moved aside (quarantined) so that the pipeline recomputes it, never fatal.

Where the checksum lives: inside the file it covers. An npz holds one more array, ``__sha256__``, the sha256 of
the other arrays (names, dtypes, shapes and bytes, in name order); ``manifest.json`` holds ``manifest_sha256``,
the sha256 of its other fields as canonical JSON. A file and its checksum are then written by one
``atomic_write`` (one rename), so two processes that write the same file can never leave one's data beside the
other's checksum, as a sidecar ``.sha256`` or a list of checksums in the manifest could. A file without a
checksum (written before there were any) is unverified but read as before, so existing caches stay valid and no
cache key changes.

A corrupt file is moved to ``.quarantine/NAME.<time>.<pid>`` in its own directory (kept for a bug report;
``llstudio cache clear`` removes it with the entry) and reported once, with what was wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import CacheError

CHECKSUM = "__sha256__"
MANIFEST_CHECKSUM = "manifest_sha256"
QUARANTINE = ".quarantine"

# What every kind of npz in a store entry holds at least (see store.py's layout and codec.py).
REQUIRED = {"step": ("loss", "finite", "center_loss"), "curv": ("curv_min", "curv_max", "done", "converged"),
            "trajectory": ("steps", "train_loss", "batches"), "directions": ("alphas", "betas", "path", "updates"),
            "plane": ("loss",), "run": ("center_loss",)}
# The manifest's fields that every version has written with these types (others are free); a manifest without a
# checksum (written before there were any) is still checked against them, so well-formed JSON of the wrong shape
# is not read as a capture's record.
MANIFEST_FIELDS = {"key": str, "scene": str, "sections": dict, "steps": list, "scales": list, "runs": list,
                   "device": str, "dtype": str, "format": int}

_warned: set[tuple] = set()  # the files this process reported (path, inode, mtime, size): each once


class CorruptEntry(CacheError):
    """A cache file that cannot be read or fails its checksum or layout check."""

    def __init__(self, path: Path | str, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: corrupt cache file ({reason}); run 'llstudio cache verify' to repair the cache, "
                         "or render with --no-cache")


def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of name → array: each array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        v = np.ascontiguousarray(arrays[k])
        h.update(json.dumps([k, v.dtype.str, list(v.shape)]).encode())
        h.update(v.tobytes())
    return h.hexdigest()


def with_checksum(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    arrays = {k: np.asarray(v) for k, v in arrays.items() if k != CHECKSUM}
    return {**arrays, CHECKSUM: np.array(arrays_sha256(arrays))}


def _why(path: Path, exc: BaseException) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        size = f"{path.stat().st_size} bytes"
    except OSError:
        head, size = b"", "size unknown"
    if head != b"PK\x03\x04":  # not even the start of a zip archive: numpy's own message would mislead
        return f"not an npz file, {size} starting {head!r}"
    return f"truncated or damaged, {size}: {type(exc).__name__}: {exc}"


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an npz, verified against its checksum (when it has one). Raises FileNotFoundError when it is
    missing and :class:`CorruptEntry` when it cannot be read or does not match its checksum."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # BadZipFile (truncation, bad CRC), zlib.error, ValueError (bad header), EOFError...
        raise CorruptEntry(path, _why(Path(path), exc)) from None
    stored = arrays.pop(CHECKSUM, None)
    if stored is not None and str(stored) != arrays_sha256(arrays):
        raise CorruptEntry(path, "checksum mismatch: its contents changed after it was written")
    return arrays


def _manifest_sha256(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def manifest_text(manifest: dict) -> str:
    """manifest.json's text: the fields plus their checksum."""
    body = json.loads(json.dumps({k: v for k, v in manifest.items() if k != MANIFEST_CHECKSUM}))  # as read back
    return json.dumps({**body, MANIFEST_CHECKSUM: _manifest_sha256(body)}, indent=2, sort_keys=True)


def parse_manifest(path: Path, text: str) -> dict:
    """The manifest's fields (without its checksum); raises :class:`CorruptEntry` for bad JSON, JSON that is not
    an object, or a checksum mismatch."""
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise CorruptEntry(path, f"not JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise CorruptEntry(path, f"not a JSON object but {type(manifest).__name__}")
    stored = manifest.pop(MANIFEST_CHECKSUM, None)
    if stored is not None and stored != _manifest_sha256(manifest):
        raise CorruptEntry(path, "checksum mismatch: its contents changed after it was written")
    problem = manifest_shape_problem(manifest)
    if problem:
        raise CorruptEntry(path, f"wrong shape: {problem}")
    return manifest


def manifest_shape_problem(manifest: dict) -> Optional[str]:
    """What is wrong with the fields of a parsed manifest, or None: it names its capture (``key``) and each known
    field has its type (``steps`` a list of whole numbers)."""
    if "key" not in manifest:
        return "no 'key' field"
    for name, kind in MANIFEST_FIELDS.items():
        value = manifest.get(name, kind())
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"'{name}' is {type(value).__name__}, expected {kind.__name__}"
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in manifest.get("steps", [])):
        return "'steps' holds something other than whole numbers"
    return None


def kind_of(name: str) -> Optional[str]:
    """The kind of an npz file name (step, curv, trajectory, directions, plane, run), or None."""
    m = re.match(r"^(step|curv|trajectory|directions|plane|run)(?:_.+)?\.npz$", name)
    return m[1] if m else None


def layout_problem(name: str, arrays: dict, shape: Optional[tuple] = None) -> Optional[str]:
    """What is wrong with the arrays of cache file ``name`` (keys its kind must have; with ``shape``, the grid
    shape a step, plane or curvature map must have), or None."""
    kind = kind_of(name)
    missing = [k for k in REQUIRED.get(kind, ()) if k not in arrays]
    if missing:
        return f"wrong keys: {', '.join(missing)} missing"
    grids = {"step": ("loss", "finite"), "plane": ("loss",), "curv": ("curv_min", "curv_max", "done", "converged")}
    for k in grids.get(kind, ()):
        got = tuple(arrays[k].shape)
        want = shape or tuple(arrays[grids[kind][0]].shape)
        if got != tuple(want):
            return f"wrong shape: {k} is {got}, expected {tuple(want)}"
    if kind == "trajectory":
        n = len(arrays["steps"])
        if not all(any(k.startswith(f"w{i}/") for k in arrays) for i in range(n)):
            return f"wrong keys: not the weights of all {n} captured steps"
    return None


def quarantine(path: Path) -> Optional[Path]:
    """Move a corrupt file aside, to ``.quarantine/`` in its directory; its new path, or None when it could not be
    moved (then it is removed, if that can be done)."""
    path = Path(path)
    target = path.parent / QUARANTINE / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.{os.getpid()}"
    try:
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
        return target
    except FileNotFoundError:  # already moved by another process
        return None
    except OSError:
        try:
            path.unlink()
        except OSError:
            pass
        return None


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def discard(path: Path, reason: str, log: Optional[Callable[[str], None]] = None) -> Optional[Path]:
    """Quarantine a corrupt file and say so, once per file (a file that cannot be moved is not reported again while
    it stays the same)."""
    try:
        st = os.stat(path)
        seen = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        seen = (str(path),)
    moved = quarantine(path) if Path(path).exists() else None
    if seen not in _warned:
        _warned.add(seen)
        where = f"moved to {moved}" if moved else "removed" if not Path(path).exists() else "could not be moved"
        again = "it is rebuilt from the scene" if Path(path).name == "manifest.json" else "it is recomputed"
        (log or _stderr)(f"warning: corrupt cache file {path} ({reason}); {where}, {again}")
    return moved


@dataclass(frozen=True)
class Finding:
    """One problem ``llstudio cache verify`` found: the file, what was wrong, and where it went (None: not
    repaired)."""

    path: Path
    problem: str
    moved: Optional[Path]
    repaired: bool


def _repair(path: Path, problem: str) -> Finding:
    moved = quarantine(path)
    return Finding(path, problem, moved, not path.exists())


def verify_dir(d: Path, capture: bool = True) -> tuple[int, list[Finding]]:
    """Check every file of one store entry (a capture, or with ``capture`` False a training run), quarantining the
    corrupt ones; (number of files checked, findings). Step and plane grids must have the shape of the axes in
    directions.npz; curvature maps must all have one shape."""
    d = Path(d)
    findings, checked, loaded = [], 0, {}
    man = d / "manifest.json"
    if capture and man.exists():
        checked += 1
        try:
            parse_manifest(man, man.read_text(errors="replace"))
        except CorruptEntry as exc:
            findings.append(_repair(man, exc.reason))
    for p in sorted(d.glob("*.npz")):
        if p.name.startswith("."):
            continue
        checked += 1
        try:
            arrays = load_npz(p)
        except FileNotFoundError:
            continue
        except CorruptEntry as exc:
            findings.append(_repair(p, exc.reason))
            continue
        problem = layout_problem(p.name, arrays)
        if problem:
            findings.append(_repair(p, problem))
        else:
            loaded[p.name] = arrays
    findings += _cross_check(d, loaded)
    return checked, findings


def _cross_check(d: Path, loaded: dict) -> list[Finding]:
    """Grids whose shape is not the capture's (a step file of another resolution, say)."""
    out = []
    if "directions.npz" in loaded:
        z = loaded["directions.npz"]
        shape = (len(z["alphas"]), len(z["betas"]))
        for name, arrays in loaded.items():
            if kind_of(name) in ("step", "plane"):
                problem = layout_problem(name, arrays, shape)
                if problem:
                    out.append(_repair(d / name, problem))
    curv = {n: tuple(a["curv_min"].shape) for n, a in loaded.items() if kind_of(n) == "curv"}
    if curv:
        common = max(set(curv.values()), key=list(curv.values()).count)
        out += [_repair(d / n, f"wrong shape: {s}, the other curvature maps are {common}")
                for n, s in curv.items() if s != common]
    return out
