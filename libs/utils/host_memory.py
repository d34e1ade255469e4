"""Host (CPU) memory reuse: the fast procedure keeps freed memory in the process.

PyTorch's CPU tensors come straight from the C library's ``malloc``. glibc hands blocks above
its mmap threshold (128 KiB at start, raised adaptively up to 32 MiB) to the kernel on every
``free`` and trims the top of its heap when much of it is free, so the next large tensor is
fresh memory again: every 4 KiB page of it is a page fault that the kernel must zero. On the
benchmark machine (a 2-core virtual machine) that costs ~2.4 us per page, 1.6 GB/s: a THUMOS
forward pass at T = 10,000 made ~530,000 page faults (~1.3 s of its 2.5 s), a training step of
two 2,304-step videos 40,000-330,000. PyTorch's GPU allocator caches freed blocks for the
same reason; on the CPU the allocator is glibc's, and :func:`keep_freed_memory` tells it to
keep what it has (no mmap'ed blocks, no trimming), so each size is faulted in once per
process. Arithmetic is unchanged (memory placement only); the cost is that the process keeps
its peak heap until it exits.

Only the entry points change this (``configure_process`` of the fast procedure, like the
oneDNN kernel cache); the faithful procedure keeps glibc's defaults, as the original's runs.
A user who set any ``MALLOC_*`` variable or a ``glibc.malloc`` tunable keeps their choice.
Other C libraries (macOS, musl) are left alone.
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory", "glibc_malloc_available"]

# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_TRIM_NEVER = 2 ** 31 - 1  # mallopt takes an int: trim only beyond 2 GiB free at the top

_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_",
                  "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl has no mallopt semantics like these
        return libc
    except (OSError, AttributeError):
        return None


def glibc_malloc_available() -> bool:
    """True when this process allocates with glibc's malloc (Linux with glibc)."""
    return _libc() is not None


def _user_chose() -> bool:
    return (any(name in os.environ for name in _USER_SETTINGS)
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""))


def keep_freed_memory() -> bool:
    """Makes glibc keep freed memory for reuse (module docstring); True when applied.

    False (nothing changed) off glibc, or when the user set ``MALLOC_*`` variables or
    ``GLIBC_TUNABLES`` malloc settings. Safe to call more than once.
    """
    libc = _libc()
    if libc is None or _user_chose():
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, _TRIM_NEVER))
