"""Atomic file writes (in core, so every layer may use them): a temporary file beside the
target, then ``os.replace``; :func:`write_json_atomic` for the JSON files the tools write.

A reader never sees a half-written file, and a crash mid-write leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import IO, Any, Iterator, Optional

__all__ = ["atomic_open", "write_json_atomic"]


@contextmanager
def atomic_open(path: str, mode: str = "w", encoding: str = "utf-8") -> Iterator[IO]:
    """Opens a temporary file for writing that replaces ``path`` when the block succeeds.

    Args:
        path: the file to (re)write.
        mode: ``"w"`` (text, ``encoding``) or ``"wb"`` (binary).

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    tmp = f"{path}.tmp{os.getpid()}"
    kwargs = {"encoding": encoding} if mode == "w" else {}
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(data: Any, path: str, indent: Optional[int] = None) -> None:
    """``json.dump(data)`` into ``path`` through :func:`atomic_open`, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump(data, f, indent=indent)
