"""The recorder for a user's own training loop, and the reading back of what it (or a folder of checkpoints) holds.

A script trains its model its own way and calls the recorder once per update::

    rec = llstudio.Recorder("runs/my_run", model, every=10)
    for step, (x, y) in enumerate(loader):
        ...                                        # forward, backward, optimizer step: the script's own
        rec.step(step, loss=loss, batch=(x, y))    # after the update; batch only for mini-batch ('earthquake') films
    rec.close()

A recording is a folder: ``recording.json`` (the parameter and buffer names and shapes, ``every``, whether it was
closed) and ``chunk_<n>.npz`` files (numbered in the order written), each holding the captured steps since the
previous chunk as one flat row of weights per step (``steps`` (k,), ``weights`` (k, P), ``buffers`` (k, Q)), the
mini-batch losses of the updates in between (``loss_steps``, ``loss``) and optionally the recorded
mini-batches (``batch_steps``, ``bx<i>``, ``by<i>``). Each file is written whole or not at all
(``files.atomic_write``), so a killed script leaves complete chunks only; running the script again into the same
folder resumes the recording after its last complete step (steps it has already are skipped).

The overhead is kept small by doing almost nothing per update: a loss is kept as it is given (a tensor is not
synchronised with ``.item()``), the weights are copied only at sampled steps (one concatenation into one flat row
and one copy to the CPU), and the rows are written in chunks, every ``flush_seconds`` or when ``flush_mb`` are
held. ``benchmarks/recorder.py`` measures it.

``[training] source`` in a scene films such a folder, or a folder of ``torch.save`` state dicts named by step
(``step_100.pt``, ``00100.pth``), read with ``weights_only=True``: :func:`read_source`.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..files import atomic_write, sweep_temp_files

MANIFEST = "recording.json"
FORMAT = "llstudio-recording"
CHUNK = re.compile(r"^chunk_(\d+)\.npz$")
CHECKPOINT = re.compile(r"^(?:.*?)(\d+)\.(?:pt|pth)$")

Batch = tuple  # (x, y): tensors or arrays of the mini-batch of one update


def _float_items(named) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in named if v.is_floating_point()]


class Recorder:
    """Records a model's weights during the user's own training loop, for a scene's ``[training] source``.

    ``path``: the recording's folder (created). ``model``: the torch module being trained. ``every``: record the
    weights after every ``every``-th update (step 0, the weights when the recorder is made, is always recorded,
    and the last step at :meth:`close`). ``batches``: keep the mini-batch that follows each recorded step
    (passed as ``batch=(x, y)``), for ``capture.data = 'batch'``. ``flush_seconds`` and ``flush_mb``: how often
    the recorded rows are written (a kill loses at most that much). ``overwrite``: start afresh in a folder that
    holds a finished recording (otherwise that is refused, and an unfinished one is resumed).

    Step numbers: ``step(i)`` is called after update ``i`` (0 for the first update, as ``enumerate`` counts), so
    the weights it sees are those after ``i + 1`` updates: recorded as step ``i + 1``, as a scene counts steps.
    """

    def __init__(self, path: Union[str, Path], model: torch.nn.Module, every: int = 10, batches: bool = True,
                 flush_seconds: float = 10.0, flush_mb: float = 256.0, overwrite: bool = False):
        if every < 1:
            raise ValueError(f"every must be a positive number of updates, got {every}")
        self.path, self.model, self.every = Path(path), model, int(every)
        self.keep_batches, self.flush_seconds, self.flush_bytes = batches, flush_seconds, flush_mb * 2**20
        self._params = list(model.named_parameters())
        self._buffers = _float_items(model.named_buffers())
        self._rows: list[tuple[int, torch.Tensor, Optional[torch.Tensor]]] = []
        self._losses: list[tuple[int, object]] = []
        self._batches: list[tuple[int, Batch]] = []
        self._held, self._last_flush, self._closed = 0, time.monotonic(), False
        self._last_update: Optional[int] = None
        self._last_batch: Optional[Batch] = None
        self.resumed_from = self._open(overwrite)
        if self.resumed_from is None:
            self._snapshot(0)

    # ------------------------------------------------------------------------------------------------ opening

    def _layout(self) -> dict:
        return {"format": FORMAT, "version": 1, "every": self.every,
                "parameters": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in self._params],
                "buffers": [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in self._buffers]}

    def _open(self, overwrite: bool) -> Optional[int]:
        """Create the folder, or resume an unfinished recording in it: the last step it holds (None when new)."""
        self.path.mkdir(parents=True, exist_ok=True)
        sweep_temp_files(self.path)  # a killed writer's partial chunk
        old = _read_manifest(self.path)
        if old is not None and (overwrite or old.get("format") != FORMAT):
            if old.get("format") != FORMAT and not overwrite:
                raise FileExistsError(f"{self.path} holds a {MANIFEST} that is not an llstudio recording")
            for p in self.path.glob("chunk_*.npz"):
                p.unlink()
            old = None
        if old is not None:
            if old.get("closed"):
                raise FileExistsError(f"{self.path} holds a finished recording; pass overwrite=True to record "
                                      "afresh, or record into another folder")
            mine = self._layout()
            if [old.get(k) for k in ("every", "parameters", "buffers")] != [mine[k] for k in
                                                                           ("every", "parameters", "buffers")]:
                raise ValueError(f"{self.path} holds an unfinished recording of another model or 'every' "
                                 f"({old.get('every')}); record into another folder or pass overwrite=True")
        self._write_manifest(closed=False)
        chunks = [p for p in self.path.iterdir() if CHUNK.match(p.name)]
        self._next_chunk = 1 + max((int(CHUNK.match(p.name).group(1)) for p in chunks), default=0)
        steps = []
        for p in chunks:
            with np.load(p, allow_pickle=False) as z:
                steps += z["steps"].tolist()
        return max(steps) if steps else None

    def _write_manifest(self, closed: bool, last_step: Optional[int] = None) -> None:
        doc = {**self._layout(), "closed": closed, "last_step": last_step}
        atomic_write(self.path / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1)))

    # -------------------------------------------------------------------------------------------- per update

    def step(self, step: int, loss=None, batch: Optional[Batch] = None) -> None:
        """Call after update ``step`` (counted from 0). ``loss``: its mini-batch loss (a float, or a tensor: kept
        without synchronising a GPU). ``batch``: its mini-batch ``(x, y)``, kept at sampled steps only."""
        if self._closed:
            raise RuntimeError("the recorder is closed")
        u = int(step)
        self._last_update = u
        if self.resumed_from is not None and u + 1 <= self.resumed_from:
            return  # a resumed script passing steps the recording already holds
        if loss is not None:
            self._losses.append((u, loss.detach() if isinstance(loss, torch.Tensor) else float(loss)))
        if batch is not None and self.keep_batches:
            self._last_batch = batch
            if u % self.every == 0:  # the update that follows recorded step u
                self._keep_batch(u, batch)
        if (u + 1) % self.every == 0:
            self._snapshot(u + 1)
        if self._held >= self.flush_bytes or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def _keep_batch(self, u: int, batch: Batch) -> None:
        x, y = (t.detach().to("cpu", copy=True) if isinstance(t, torch.Tensor) else np.array(t) for t in batch)
        self._batches.append((u, (x, y)))
        self._held += x.numel() * x.element_size() if isinstance(x, torch.Tensor) else x.nbytes

    def _snapshot(self, s: int) -> None:
        """The weights (and floating buffers) now, as one flat row each: one concatenation and one copy."""
        with torch.no_grad():
            w = torch.cat([p.detach().reshape(-1) for _, p in self._params]).to("cpu", copy=True)
            b = (torch.cat([v.detach().reshape(-1) for _, v in self._buffers]).to("cpu", copy=True)
                 if self._buffers else None)
        self._rows.append((s, w, b))
        self._held += w.numel() * w.element_size() + (0 if b is None else b.numel() * b.element_size())

    # ------------------------------------------------------------------------------------------------ writing

    def flush(self) -> None:
        """Write what is held as one chunk file (atomically)."""
        self._last_flush = time.monotonic()
        if not self._rows and not self._losses and not self._batches:
            return
        steps = [s for s, _, _ in self._rows]
        arrays = {"steps": np.array(steps, dtype=np.int64)}
        if self._rows:
            arrays["weights"] = torch.stack([w for _, w, _ in self._rows]).numpy()
            if self._buffers:
                arrays["buffers"] = torch.stack([b for _, _, b in self._rows]).numpy()
        if self._losses:
            arrays["loss_steps"] = np.array([u for u, _ in self._losses], dtype=np.int64)
            # A tensor loss is read here, once per chunk, rather than synchronising a GPU at every update.
            arrays["loss"] = np.array([float(v) for _, v in self._losses], dtype=np.float64)
        if self._batches:
            arrays["batch_steps"] = np.array([u for u, _ in self._batches], dtype=np.int64)
            for i, (_, (x, y)) in enumerate(self._batches):
                arrays[f"bx{i}"], arrays[f"by{i}"] = np.asarray(x), np.asarray(y)

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        atomic_write(self.path / f"chunk_{self._next_chunk:06d}.npz", write)
        self._next_chunk += 1
        self._rows, self._losses, self._batches, self._held = [], [], [], 0

    def close(self) -> None:
        """Record the last step (the weights now, after the last update) and its mini-batch, write everything and
        mark the recording finished."""
        if self._closed:
            return
        last = 0 if self._last_update is None else self._last_update + 1
        if self.resumed_from is None or last > self.resumed_from:
            if last % self.every:
                self._snapshot(last)
            if self._last_batch is not None and (last - 1) % self.every:
                self._keep_batch(last - 1, self._last_batch)  # the batch the final step's landscape is measured on
        self.flush()
        self._write_manifest(closed=True, last_step=last)
        self._closed = True

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # an error in the loop: keep what was recorded, resumable, but do not mark it finished
            self.flush()


def _read_manifest(path: Path) -> Optional[dict]:
    try:
        return json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


# -------------------------------------------------------------------------------------------------- reading


@dataclass
class Recorded:
    """What a source folder holds. ``steps`` (K,) increasing; ``weights[k]`` / ``buffers[k]`` name → tensor at
    ``steps[k]``; ``loss`` update index → mini-batch loss; ``batches`` update index → (x, y) arrays; ``kind``
    'recording' or 'checkpoints'; ``files`` the files read (for the cache key)."""

    kind: str
    steps: list
    weights: list
    buffers: list
    loss: dict = field(default_factory=dict)
    batches: dict = field(default_factory=dict)
    closed: bool = True


class SourceError(ValueError):
    """A source folder that cannot be filmed: the message says what is wrong and what to do."""


def source_files(path: Path) -> list[Path]:
    """The files a source folder's numbers are in, in a fixed order: its manifest and chunks, or its checkpoints."""
    if not path.is_dir():
        raise SourceError(f"{str(path)!r} is not a folder: give the folder an llstudio.Recorder wrote, or a folder "
                          "of torch.save(model.state_dict(), 'step_<N>.pt') checkpoints (a relative path is "
                          "relative to the scene file)")
    if (path / MANIFEST).is_file():
        return [path / MANIFEST] + sorted((p for p in path.iterdir() if CHUNK.match(p.name)),
                                          key=lambda p: int(CHUNK.match(p.name).group(1)))
    files = sorted((p for p in path.iterdir() if CHECKPOINT.match(p.name)), key=lambda p: _ckpt_step(p))
    if not files:
        raise SourceError(f"{str(path)!r} holds neither a recording ({MANIFEST}) nor checkpoints named by step "
                          "('step_100.pt', '00100.pth')")
    return files


def _ckpt_step(p: Path) -> int:
    return int(CHECKPOINT.match(p.name).group(1))


def read_source(path: Path, steps: Optional[list] = None) -> Recorded:
    """Read a recording or a checkpoint folder; only ``steps`` (all when None) are kept. Raises SourceError."""
    files = source_files(path)
    if files[0].name == MANIFEST:
        return _read_recording(path, files[1:], steps)
    wanted = set(steps) if steps is not None else None
    out = Recorded("checkpoints", [], [], [])
    for p in files:
        s = _ckpt_step(p)
        if (wanted is not None and s not in wanted) or s in out.steps:
            continue
        state = _load_state(p)
        out.steps.append(s)
        out.weights.append(state)
        out.buffers.append({})
    return out


def recorded_steps(path: Path) -> list[int]:
    """Every step a source folder holds, increasing (reads only the chunks' step lists)."""
    files = source_files(path)
    if files[0].name != MANIFEST:
        return sorted({_ckpt_step(p) for p in files})
    out = set()
    for p in files[1:]:
        with np.load(p, allow_pickle=False) as z:
            out.update(int(s) for s in z["steps"])
    return sorted(out)


def _load_state(p: Path) -> dict:
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, AttributeError, TypeError) as exc:
        raise SourceError(f"checkpoint {str(p)!r} cannot be read with torch.load(weights_only=True) (tensors only, "
                          f"never pickled objects): {str(exc).splitlines()[0]}") from None
    for k in ("state_dict", "model"):  # torch.save({'model': model.state_dict(), 'optimizer': ...}) is common
        if isinstance(state, dict) and isinstance(state.get(k), dict):
            state = state[k]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SourceError(f"checkpoint {str(p)!r} is not a state dict (name → tensor): save it with "
                          "torch.save(model.state_dict(), path)")
    return state


def _read_recording(path: Path, chunks: list[Path], steps: Optional[list]) -> Recorded:
    doc = _read_manifest(path)
    if doc is None or doc.get("format") != FORMAT:
        raise SourceError(f"{str(path / MANIFEST)!r} is not an llstudio recording's manifest")
    wanted = set(steps) if steps is not None else None
    out = Recorded("recording", [], [], [], closed=bool(doc.get("closed")))
    found = {}
    for p in chunks:
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as exc:
            raise SourceError(f"chunk {str(p)!r} of the recording cannot be read ({exc}); delete it and record "
                              "those steps again") from None
        for i, s in enumerate(arrays["steps"].tolist()):
            if (wanted is None or s in wanted) and s not in found:
                found[s] = (arrays["weights"][i], arrays["buffers"][i] if "buffers" in arrays else None)
        for u, v in zip(arrays.get("loss_steps", []), arrays.get("loss", [])):
            out.loss.setdefault(int(u), float(v))
        for i, u in enumerate(arrays.get("batch_steps", [])):
            out.batches.setdefault(int(u), (arrays[f"bx{i}"], arrays[f"by{i}"]))
    for s in sorted(found):
        w, b = found[s]
        out.steps.append(s)
        out.weights.append(_unflatten(w, doc["parameters"]))
        out.buffers.append(_unflatten(b, doc["buffers"]) if b is not None else {})
    return out


def _unflatten(row: np.ndarray, layout: list) -> dict:
    out, at = {}, 0
    t = torch.from_numpy(np.ascontiguousarray(row))
    for name, shape, dtype in layout:
        n = math.prod(shape)
        out[name] = t[at:at + n].reshape(shape).to(getattr(torch, dtype)).clone()
        at += n
    return out
