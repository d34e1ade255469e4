"""How every entry point (train.py, eval.py, tools/*.py) ends: expected user errors as one
``error: ...`` message on stderr with exit code 1, a stop signal as ``interrupted: ...`` with
128 + the signal number, everything else with its traceback.
"""
from __future__ import annotations

import errno
import os
import signal
import sys
import warnings
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence

if TYPE_CHECKING:
    import argparse

from libs.core import ConfigError

from .interrupt import Interrupted

__all__ = ["UserError", "ERROR_EXIT_CODE", "DEBUG_ENV", "is_user_error", "debug_requested",
           "run_main", "add_debug_flag", "add_faithful_flag"]

ERROR_EXIT_CODE = 1
DEBUG_ENV = "ACTIONFORMER_DEBUG"
DEBUG_FLAG = "--debug"

# OS errors that are about the user's files or disk, not about the code
_USER_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
_USER_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class UserError(Exception):
    """Marker base of the expected errors of bad input (data set, checkpoint, device, loss).

    The project's error classes derive from it as well as from their builtin type
    (``CheckpointError(ValueError, UserError)``), so ``except ValueError`` keeps working.
    """


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is an expected error of the user's input (printed without traceback)."""
    if isinstance(err, (UserError, ConfigError, _USER_OS_ERRORS)):
        return True
    return isinstance(err, OSError) and err.errno in _USER_ERRNOS


def debug_requested(argv: Sequence[str]) -> bool:
    """``--debug`` among the arguments, or ``ACTIONFORMER_DEBUG`` set to 1 / true / yes."""
    env = os.environ.get(DEBUG_ENV, "").strip().lower()
    return DEBUG_FLAG in argv or env in ("1", "true", "yes", "on")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def _message(err: BaseException) -> str:
    text = str(err).strip()
    if isinstance(err, KeyError) and len(err.args) == 1:
        text = str(err.args[0])  # KeyError's str() adds quotes
    return text or type(err).__name__


def run_main(main: Callable[..., Optional[int]], argv: Optional[List[str]] = None) -> int:
    """Runs ``main(argv)`` and turns expected errors into ``error: <message>`` + exit code 1,
    and :class:`~libs.utils.interrupt.Interrupted` / ``KeyboardInterrupt`` into
    ``interrupted: <why>`` + 128 + the signal number.

    ``--debug`` is removed from the arguments before ``main`` sees them; with it (or with
    ``ACTIONFORMER_DEBUG=1``) expected errors are re-raised with their traceback. Unexpected
    exceptions always keep their traceback. ``main`` is called with the argument list.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [a for a in args if a != DEBUG_FLAG]
    if not debug:  # warnings as one line too (with --debug: Python's file:line form)
        warnings.formatwarning = _one_line_warning
    try:
        code = main(args)
    except Interrupted as err:  # a stop signal before anything could be saved
        if debug:
            raise
        print(f"interrupted: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted: SIGINT (Ctrl-C)", file=sys.stderr, flush=True)
        return 128 + signal.SIGINT
    except Exception as err:  # noqa: BLE001 - classified, re-raised when not expected
        if debug or not is_user_error(err):
            raise
        print(f"error: {_message(err)}", file=sys.stderr, flush=True)
        return ERROR_EXIT_CODE
    return 0 if code is None else int(code)


def add_debug_flag(parser: "argparse.ArgumentParser") -> None:
    """``--debug``: show the traceback of expected errors (read by :func:`run_main`)."""
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="show the full traceback of expected errors (also: "
                             f"{DEBUG_ENV}=1)")


def add_faithful_flag(parser: "argparse.ArgumentParser") -> None:
    """``--faithful``: the original's procedure (libs/utils/procedure.py)."""
    parser.add_argument("--faithful", action="store_true",
                        help="the original's procedure and arithmetic (default: the config's "
                             "'faithful' key, false)")
