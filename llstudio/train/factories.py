"""Functions a scene names as 'package.module:function' (a model factory, a data factory): the only user code a
scene can make llstudio run. Only the named module is imported; every failure is a scene error on the key that
named it."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable, NoReturn

from ..errors import SceneError


def fail(source: str, key: str, msg: str) -> NoReturn:
    raise SceneError(source, [(key, msg)])


def import_callable(ref: str, key: str, source: str = "<scene>") -> Callable:
    """Import ``package.module`` of ``ref`` ('package.module:function', the function possibly dotted) and return
    the function. A module that cannot be imported, a missing attribute or one that is not callable is a
    :class:`SceneError` on ``key`` saying what was tried."""
    module_name, _, attr = ref.partition(":")
    _working_directory_importable()
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error raised while the user's module is imported
        fail(source, key, f"cannot import module '{module_name}' ({type(exc).__name__}: {exc}); it must be "
             "importable from the working directory or PYTHONPATH")
    for part in attr.split("."):
        if not hasattr(obj, part):
            fail(source, key, f"module '{module_name}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    if not callable(obj):
        fail(source, key, f"'{ref}' is not callable")
    return obj


def _working_directory_importable() -> None:
    """Put the working directory on the import path, last, as ``python -m llstudio`` has it first: the ``llstudio``
    command's script does not, so a factory module beside the scene would be found by one and not the other."""
    cwd = os.getcwd()
    if not {cwd, ""} & set(sys.path):
        sys.path.append(cwd)
