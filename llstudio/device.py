"""Resolve the compute device once, at the entry point; stages receive a ``torch.device`` and never pick one."""

from __future__ import annotations

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
