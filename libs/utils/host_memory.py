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
its peak heap, bounded by :func:`release_excess_memory` (called after every training step and
evaluation batch): freed memory beyond the larger of 4 GiB and twice the bytes in use goes back.

Only the entry points change this (``configure_process`` of the fast procedure, like the
oneDNN kernel cache); the faithful procedure keeps glibc's defaults, as the original's runs.
A user who set any ``MALLOC_*`` variable or a ``glibc.malloc`` tunable keeps their choice.
Other C libraries (macOS, musl) are left alone.
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Optional

__all__ = ["keep_freed_memory", "glibc_malloc_available", "release_excess_memory",
           "kept_free_bytes"]

# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_TRIM_NEVER = 2 ** 31 - 1  # mallopt takes an int: trim only beyond 2 GiB free at the top
MIN_KEPT_FREE = 4 << 30  # freed bytes kept at least before release_excess_memory returns them
_kept = False  # keep_freed_memory() applied in this process


class _MallInfo2(ctypes.Structure):  # glibc >= 2.33
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_",
                  "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")


@functools.lru_cache(maxsize=None)
def _libc():
    """glibc with the prototypes used here, or None (looked up once per process)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: musl has no mallopt semantics like these
    except (OSError, AttributeError):
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    return libc


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
    global _kept
    _kept = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, _TRIM_NEVER))
    return _kept


def _mallinfo():
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    return libc.mallinfo2()


def kept_free_bytes() -> Optional[int]:
    """Bytes glibc holds freed for reuse (``mallinfo2().fordblks``), or None off glibc 2.33+."""
    info = _mallinfo()
    return None if info is None else int(info.fordblks)


def release_excess_memory(limit: Optional[int] = None) -> bool:
    """Gives freed memory back to the kernel (``malloc_trim``) when more than ``limit`` bytes
    are kept (default: the larger of 4 GiB and twice the bytes in use); True when it did.

    Kept memory is reused for the next batch of the same or a smaller size, but with lengths
    that vary from batch to batch the heap fragments and its free part grows slowly (THUMOS
    training, random lengths 300-2,304: resident 3.3 GiB after 10 steps, 5.1 GiB after 150);
    the training step and the evaluation loop call this after every batch to bound it.
    A no-op unless :func:`keep_freed_memory` was applied in this process.
    """
    if not _kept:
        return False
    info = _mallinfo()
    if info is None:
        return False
    if limit is None:
        limit = max(MIN_KEPT_FREE, 2 * int(info.uordblks))
    if info.fordblks <= limit:
        return False
    _libc().malloc_trim(ctypes.c_size_t(0))
    return True
