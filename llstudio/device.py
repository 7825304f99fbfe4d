"""Resolve the compute device once, at the entry point; stages receive a ``torch.device`` and never pick one."""

from __future__ import annotations

from contextlib import contextmanager

from .errors import UsageError


def resolve_device(request: str = "auto"):
    """'auto' → CUDA when present, else CPU; 'cuda' without a GPU is an error that says so."""
    import torch

    if request == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if request == "cpu":
        return torch.device("cpu")
    if request.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(
                f"device '{request}' was asked for, but torch sees no CUDA GPU (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda}). Use --device cpu or 'auto'."
            )
        return torch.device(request)
    raise UsageError(f"unknown device '{request}': use auto, cpu or cuda")


@contextmanager
def exact_float32(device):
    """IEEE float32 products and convolutions on ``device`` while the block runs; previous settings restored after.

    On Ampere and later GPUs cuDNN runs float32 convolutions in TF32 by default (10-bit mantissa), and a user may
    have turned TF32 on for matrix products too: a landscape value would then differ from the forward pass at
    those weights by about 1e-3. The switches are global, so this is for single-threaded GPU work (capture on a
    GPU runs one worker). Other devices: nothing changes.
    """
    import torch

    if torch.device(device).type != "cuda":
        yield
        return
    b = torch.backends
    if hasattr(b.cudnn, "conv") and hasattr(b.cudnn.conv, "fp32_precision"):
        # torch >= 2.9: the per-backend precision settings (mixing them with allow_tf32 raises).
        knobs = [(b.cudnn.conv, "fp32_precision", "ieee"), (b.cuda.matmul, "fp32_precision", "ieee")]
    else:
        knobs = [(b.cudnn, "allow_tf32", False), (b.cuda.matmul, "allow_tf32", False)]
    before = [getattr(obj, name) for obj, name, _ in knobs]
    try:
        for obj, name, value in knobs:
            setattr(obj, name, value)
        yield
    finally:
        for (obj, name, _), value in zip(knobs, before):
            setattr(obj, name, value)
