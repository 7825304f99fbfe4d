"""What every capture stage needs to know, resolved once: :class:`CaptureContext`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config.scene import Scene
from ..device import resolve_device
from ..errors import UsageError
from ..files import FOLDER, writable_problem
from ..parallel import SINGLE, Group
from ..progress import Progress
from ..store.keys import capture_key
from ..store.store import CaptureDir, CaptureStore
from ..train.data import Dataset, load_dataset
from ..train.models import wants_images
from ..train.sources import check_source
from .checks import check_data, check_weight_refs, sample_indices
from .coordinates import zoom_scales


@dataclass(frozen=True)
class CaptureContext:
    """One capture's scene, device, dtype, data and store entry, passed from stage to stage. ``steps`` are the
    captured step numbers, ``scales`` (steps,) their zoom factors. ``group``: the processes that share the capture;
    only its root (rank 0, and the one process of :data:`~llstudio.parallel.SINGLE`) holds the store and its entry
    (``store`` and ``cdir`` are None on the other ranks)."""

    scene: Scene
    device: torch.device
    dtype: torch.dtype
    key: str
    store: Optional[CaptureStore]
    cdir: Optional[CaptureDir]
    use_cache: bool
    progress: Progress
    data: Dataset
    steps: list
    scales: np.ndarray
    group: Group = SINGLE

    @property
    def fixed(self) -> bool:
        return self.scene.directions.frame == "fixed"

    @property
    def per_sample(self) -> bool:
        return self.scene.capture.data == "samples"

    @property
    def one_plane(self) -> bool:
        """Whether one landscape (and one curvature map) serves every captured step: only when neither the grid's
        centre (fixed frame), the data (not mini-batches) nor its range (no zoom) changes between steps."""
        return self.fixed and self.scene.capture.data != "batch" and self.scene.grid.zoom == 1.0

    def cached(self, name: str, check=None) -> bool:
        """Whether the capture's store entry holds a sound ``name`` that may be reused (``check``: arrays → what is
        wrong with them, or None; a corrupt entry is reported, quarantined and so recomputed)."""
        return self.use_cache and self.cdir.read_arrays(name, check) is not None

    def source(self) -> str:
        return self.scene.source or "<scene>"


def open_context(scene: Scene, device, store: CaptureStore | None, use_cache: bool,
                 progress: Progress | None, group: Group = SINGLE) -> CaptureContext:
    """Resolve the device and dtype, load the data, and on the group's root only: check the cache location and,
    with the data, the model, the weights the scene names, its checkpoints and samples (a refused scene creates
    nothing), then open the capture's store entry (sweeping killed runs' temporary files, never a live run's)."""
    device = torch.device(device if device is not None else resolve_device(scene.capture.device))
    key = capture_key(scene, device.type)
    progress = progress or Progress("none")
    dtype = getattr(torch, scene.capture.dtype)
    cdir = None
    store = (store or CaptureStore()) if group.is_root else None
    if store is not None:
        check_cache(store.root)
    data = load_dataset(scene.data, wants_images(scene.model), scene.source or "<scene>")
    if store is not None:
        # Everything that can refuse the scene is checked before the store entry exists: a refused scene leaves
        # the cache as it was.
        check_with_data(scene, data, dtype)
        cdir = store.open(key, progress.log)
        cdir.sweep()
    steps = scene.captured_steps()
    return CaptureContext(scene, device, dtype, key, store, cdir, use_cache,
                          progress, data, steps, zoom_scales(steps, scene.grid.zoom), group)


def check_with_data(scene: Scene, data: Optional[Dataset] = None, dtype: Optional[torch.dtype] = None) -> None:
    """What can refuse a scene once its data are known (loading them is the first check: a missing dataset is exit
    3): its sizes fit the data, the model builds, the weights it names exist, its checkpoints fit, its samples are in the evaluation set."""
    data = data if data is not None else load_dataset(scene.data, wants_images(scene.model), scene.source or "<scene>")
    check_data(scene, data)
    dtype = dtype if dtype is not None else getattr(torch, scene.capture.dtype)
    model = check_weight_refs(scene, data, dtype)
    if scene.training.source is not None:
        check_source(scene, model)
    if scene.capture.data == "samples":
        sample_indices(scene, data)


def check_cache(root: Path) -> None:
    """The cache's folder must exist or be creatable, and take new files: a clear exit 2 before any work, not a
    traceback in the middle of it. Creates nothing."""
    problem = writable_problem(root, FOLDER)
    if problem:
        raise UsageError(f"the cache {str(root)!r} cannot be used: {problem}. Point LLSTUDIO_CACHE at a folder you "
                         "can write to (--no-cache does not avoid it: it recomputes everything and still writes the "
                         "cache)")
