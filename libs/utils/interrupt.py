"""SIGINT / SIGTERM during training: what each signal does in each phase of a run, so that
any moment either ends with ``interrupted.pth`` or with a message saying why not.

Phases (set by train.py): ``startup`` (config, data, model, resume: nothing to save, the
signal ends the run at once), ``training`` (the first signal asks to stop after the current
step; a second SIGINT stops at once without saving), ``saving`` (a checkpoint is being
written: further signals wait until the write finished), ``finished`` (after the last epoch).
"""
from __future__ import annotations

import contextlib
import os
import signal
from typing import Iterator, Optional

__all__ = ["Interrupted", "StopRequest", "ignore_stop_signals", "STARTUP", "TRAINING",
           "SAVING", "FINISHED"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STARTUP, TRAINING, SAVING, FINISHED = "startup", "training", "saving", "finished"


class Interrupted(BaseException):
    """A stop signal ended the run without a checkpoint; ``str()`` says why.

    A BaseException (as KeyboardInterrupt), so no ``except Exception`` on the way swallows it.
    """

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)


def _name(signum: int) -> str:
    return signal.Signals(signum).name


def _say(text: str) -> None:
    # os.write, not print: the handler may run while the main code is inside print()
    # (a re-entrant buffered write raises RuntimeError)
    try:
        os.write(1, (text + "\n").encode())
    except OSError:
        pass


def ignore_stop_signals() -> None:
    """For data-loader workers: SIGINT / SIGTERM are the main process's to handle (a Ctrl-C
    reaches the whole process group; the main process stops the workers itself)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


class StopRequest:
    """The handler of SIGINT / SIGTERM for train.py; callable: "stop after this step?".

    Args:
        announce: print the messages (rank 0 under DDP).
    """

    def __init__(self, announce: bool = True) -> None:
        self.signum: Optional[int] = None
        self.phase = STARTUP
        self.announce = announce
        self._pid = os.getpid()

    def install(self) -> None:
        """Installs the handler for both signals (also over an inherited SIG_IGN, e.g. a
        background job of a non-interactive shell, where SIGINT would be ignored)."""
        self._pid = os.getpid()
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """Phase ``saving`` for the duration of a checkpoint write, then the previous one."""
        before, self.phase = self.phase, SAVING
        try:
            yield
        finally:
            self.phase = before

    def _handle(self, signum: int, frame) -> None:
        if os.getpid() != self._pid:
            return  # a forked data-loader worker before its init: the main process decides
        first = self.signum is None
        if first:
            self.signum = signum
        if self.phase == STARTUP:
            raise Interrupted(signum, f"received {_name(signum)} before the first training "
                                      "step: nothing to save")
        if self.phase == SAVING:
            self._tell(f"\n=> received {_name(signum)}: finishing the checkpoint write "
                       "first")
        elif self.phase == FINISHED:
            self._tell(f"\n=> received {_name(signum)}: training has finished, exiting")
        elif first:
            self._tell(f"\n=> received {_name(signum)}: saving a checkpoint after this "
                       "iteration")
        elif signum == signal.SIGINT:
            raise Interrupted(signum, "a second SIGINT stopped training at once: nothing "
                                      "saved (the last epoch checkpoint written is intact)")
        else:
            self._tell(f"\n=> received {_name(signum)} again: already stopping after this "
                       "iteration")

    def _tell(self, text: str) -> None:
        if self.announce:
            _say(text)

    def __call__(self) -> bool:
        """True once a signal arrived; from then on the run is committed to saving (a second
        signal waits for the write)."""
        if self.signum is not None and self.phase == TRAINING:
            self.phase = SAVING
        return self.signum is not None
