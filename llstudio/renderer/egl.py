"""Which EGL device renders on which CUDA GPU: VTK picks its off-screen EGL device by its index in
``eglQueryDevicesEXT``'s list (``VTK_DEFAULT_EGL_DEVICE_INDEX``), torch by its CUDA index, and the two orders differ
(EGL lists every vendor's devices, Mesa's software one too, and ignores ``CUDA_VISIBLE_DEVICES``). NVIDIA's EGL
says which CUDA device an EGL device is (the ``EGL_NV_device_cuda`` extension); elsewhere the mapping is unknown.

ctypes on libEGL only: no VTK here, so that the mapping is known before any job's process starts its renderer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass, field
from typing import Optional

EGL_CUDA_DEVICE_NV = 0x323A  # EGL_NV_device_cuda
EGL_EXTENSIONS = 0x3055
MAX_DEVICES = 32


@dataclass(frozen=True)
class EGLMapping:
    """``egl`` CUDA index → EGL device index; ``known`` whether EGL said so (else an identity guess), ``note`` a
    line for ``llstudio doctor`` and the batch log."""

    egl: dict[int, int] = field(default_factory=dict)
    known: bool = False
    note: str = ""


def map_cuda_to_egl(cuda: list[int], egl_cuda: Optional[list[Optional[int]]]) -> EGLMapping:
    """The EGL device of each CUDA device in ``cuda``, from ``egl_cuda``: for each EGL device in EGL's order, the
    CUDA index it reports (None: not a CUDA device, e.g. Mesa's), or None when EGL's devices could not be listed.

    A CUDA device that no EGL device claims gets the EGL index equal to its CUDA index, with a warning in ``note``
    (VTK then renders on whatever device that is, perhaps another GPU or the CPU)."""
    if not cuda:
        return EGLMapping({}, True, "no CUDA GPU")
    claimed = {c: i for i, c in reversed(list(enumerate(egl_cuda or []))) if c is not None}
    if not claimed:
        why = ("EGL devices could not be listed" if egl_cuda is None else
               f"none of the {len(egl_cuda)} EGL device(s) is an NVIDIA one (no EGL_NV_device_cuda)")
        return EGLMapping({c: c for c in cuda}, False,
                          f"warning: {why}: which EGL device renders on which GPU is unknown; assuming EGL device i "
                          "is CUDA device i")
    egl = {c: claimed.get(c, c) for c in cuda}
    missing = [c for c in cuda if c not in claimed]
    note = ", ".join(f"CUDA {c} → EGL {egl[c]}" for c in cuda)
    if missing:
        note += (f"; warning: no EGL device reports CUDA device(s) {', '.join(map(str, missing))}: assumed EGL "
                 "index = CUDA index for them")
    return EGLMapping(egl, not missing, note)


def _libegl():
    name = ctypes.util.find_library("EGL") or "libEGL.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def egl_cuda_devices() -> Optional[list[Optional[int]]]:
    """For each EGL device in EGL's order (VTK's device index), the CUDA device index it reports, or None for a
    device that is not a CUDA one; None when libEGL or its device enumeration is missing.

    NVIDIA's driver reports the CUDA index as this process's CUDA runtime numbers it (after
    ``CUDA_VISIBLE_DEVICES``), so ask in the process whose CUDA indices are mapped."""
    lib = _libegl()
    if lib is None:
        return None
    lib.eglGetProcAddress.restype = ctypes.c_void_p
    lib.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    lib.eglQueryString.restype = ctypes.c_char_p
    lib.eglQueryString.argtypes = [ctypes.c_void_p, ctypes.c_int]
    query_devices = lib.eglGetProcAddress(b"eglQueryDevicesEXT")
    query_attrib = lib.eglGetProcAddress(b"eglQueryDeviceAttribEXT")
    query_device_string = lib.eglGetProcAddress(b"eglQueryDeviceStringEXT")
    if not query_devices:
        return None
    devices_fn = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                                  ctypes.POINTER(ctypes.c_int))(query_devices)
    devices = (ctypes.c_void_p * MAX_DEVICES)()
    n = ctypes.c_int(0)
    if not devices_fn(MAX_DEVICES, devices, ctypes.byref(n)):
        return None
    attrib_fn = (ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_ssize_t))
                 (query_attrib) if query_attrib else None)
    string_fn = (ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)(query_device_string)
                 if query_device_string else None)
    return [_cuda_index(devices[i], attrib_fn, string_fn) for i in range(n.value)]


def _cuda_index(device, attrib_fn, string_fn) -> Optional[int]:
    # Ask only devices that advertise the extension: an unknown attribute sets an EGL error on others.
    if attrib_fn is None or string_fn is None:
        return None
    extensions = string_fn(device, EGL_EXTENSIONS) or b""
    if b"EGL_NV_device_cuda" not in extensions.split():
        return None
    value = ctypes.c_ssize_t(-1)
    if not attrib_fn(device, EGL_CUDA_DEVICE_NV, ctypes.byref(value)) or value.value < 0:
        return None
    return int(value.value)


def cuda_egl_mapping(cuda: list[int]) -> EGLMapping:
    """The EGL device of each of ``cuda`` (CUDA indices of this process), as far as this machine's EGL can say."""
    try:
        listed = egl_cuda_devices()
    except (OSError, AttributeError, ValueError):  # a libEGL without these entry points
        listed = None
    return map_cuda_to_egl(cuda, listed)
