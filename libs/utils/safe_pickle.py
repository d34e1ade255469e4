"""Reads pickles without running their code: plain containers, numbers, strings and NumPy
arrays only (``safe_load``); every other global is refused with the file named.
"""
from __future__ import annotations

import _compat_pickle
import os
import pickle
from typing import Any, FrozenSet, Tuple

from .cli import UserError

__all__ = ["UnsafePickleError", "ALLOWED_GLOBALS", "safe_load", "load_error_reason"]

# (module, name) pairs a results / score pickle may reference. Containers, numbers, strings
# and bytes need no global at all; these are what NumPy arrays, dtypes and scalars, ordered
# dicts and (protocol <= 2) bytes reduce to. Each only builds data: none calls user code.
_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMPY_NUMERIC = ("numpy.core.numeric", "numpy._core.numeric")
ALLOWED_GLOBALS: FrozenSet[Tuple[str, str]] = frozenset(
    [(m, n) for m in _NUMPY_CORE for n in ("_reconstruct", "scalar")]
    + [(m, "_frombuffer") for m in _NUMPY_NUMERIC]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [("collections", "OrderedDict"), ("_codecs", "encode")]
    + [("builtins", n) for n in ("set", "frozenset", "bytearray", "complex", "slice")]
)


class UnsafePickleError(ValueError, UserError):
    """A pickle references a global outside :data:`ALLOWED_GLOBALS`, or is not a pickle."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: str) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (protocols 0-2), mapped as pickle's own fix_imports maps them
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module in ("numpy.dtypes", "numpy._core.dtypes") and name.endswith("DType"):
            return super().find_class(module, name)  # numpy 2's dtype classes
        raise UnsafePickleError(
            f"{self._path}: refused to load the global '{module}.{name}' (this reader "
            "accepts only plain containers, numbers, strings and NumPy arrays; the file may "
            "try to run code)")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._path}: refused a persistent reference {pid!r} "
                                "(not a plain data pickle)")


def safe_load(path: str) -> Any:
    """Unpickles ``path`` with the restricted unpickler.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: a refused global, or the file is empty / truncated / not a pickle
            (the message names the file).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file not found: '{path}'")
    if os.path.getsize(path) == 0:
        raise UnsafePickleError(f"{path}: the file is empty (expected a pickle)")
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, path).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
                KeyError, AttributeError, ImportError) as err:
            raise UnsafePickleError(f"{path}: not a readable pickle (truncated or corrupt: "
                                    f"{type(err).__name__}: {err})") from None


# boilerplate lines of torch.load's messages (the reason is on another line)
_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")


def load_error_reason(err: BaseException) -> str:
    """One line for a failed ``torch.load`` / ``np.load``: the informative first sentence of
    the message (torch's advice to retry without the weights-only guard left out), with its type."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(_TORCH_BOILERPLATE)] or lines
    text = lines[0].split(". ")[0].rstrip(".") if lines else ""
    text = text.replace("WeightsUnpickler error: ", "")
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
