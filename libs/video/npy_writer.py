"""Writes a (T, C) float32 .npy row block by row block, so a long video's features never sit in
memory whole; the file appears atomically (via libs.utils.atomic) once complete."""
from __future__ import annotations

import os
import shutil

import numpy as np

from libs.utils.atomic import atomic_open

__all__ = ["NpyRowWriter"]


class NpyRowWriter:
    """Appends ``(n, C)`` blocks to a scratch file; ``close()`` writes ``path`` as a ``.npy``.

    Args:
        path: the ``.npy`` to write (replaced atomically by ``close``).
        dim: C, the width of every block.
    """

    def __init__(self, path: str, dim: int) -> None:
        self.path, self.dim, self.rows = path, int(dim), 0
        self._scratch = f"{path}.part{os.getpid()}"
        self._fh = open(self._scratch, "wb")

    def append(self, block: np.ndarray) -> None:
        """Adds the rows of a ``(n, dim)`` block (cast to float32)."""
        block = np.ascontiguousarray(block, dtype="<f4")
        if block.ndim != 2 or block.shape[1] != self.dim:
            raise ValueError(f"{self.path}: expected blocks of shape (n, {self.dim}), got "
                             f"{tuple(block.shape)}")
        self._fh.write(block.tobytes())
        self.rows += int(block.shape[0])

    def close(self) -> int:
        """Writes the ``.npy`` (header, then the rows) atomically; returns the number of rows."""
        self._fh.close()
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.rows, self.dim)}
        try:
            with atomic_open(self.path, "wb") as out, open(self._scratch, "rb") as rows:
                np.lib.format.write_array_header_1_0(out, header)
                shutil.copyfileobj(rows, out, 1 << 22)
        finally:
            os.remove(self._scratch)
        return self.rows

    def abort(self) -> None:
        """Drops what was appended; ``path`` is left as it was."""
        self._fh.close()
        if os.path.exists(self._scratch):
            os.remove(self._scratch)
