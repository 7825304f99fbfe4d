"""Replacing layers of a model by their capture versions, by name, in place.

BatchNorm, dropout and wide linear layers are each swapped for a capture layer (``batchnorm``, ``dropout``,
``shared_linear``) that keeps the parameter and buffer names of the layer it replaces, so directions, centres and
buffers map onto the swapped model unchanged. This module is the one walk they share: find the layers, then set
each replacement on its parent under the same attribute name; and the way their shared state object is set for
one block of work.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

from torch import nn


def modules_of_type(model: nn.Module, kind) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every module of ``model`` that is an instance of ``kind`` (a type or a tuple of
    types), in the order of ``model.named_modules()``."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kind)]


def swap_modules(model: nn.Module, names: Sequence[str],
                 make: Callable[[str, nn.Module], nn.Module]) -> list[tuple[str, nn.Module]]:
    """Replace each module of ``model`` called one of ``names``, in that order, by ``make(name, module)``.

    Returns ``(name, new module)`` in the same order. A ``make`` that raises leaves the modules before it swapped.
    """
    swapped = []
    for name in names:
        new = make(name, model.get_submodule(name))
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, new)
        swapped.append((name, new))
    return swapped


@contextlib.contextmanager
def setting(state: object, attr: str, value: Any) -> Iterator[None]:
    """``state.attr = value`` inside the block (a capture state's phase or masks); the previous value afterwards."""
    before = getattr(state, attr)
    setattr(state, attr, value)
    try:
        yield
    finally:
        setattr(state, attr, before)
