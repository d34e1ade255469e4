"""StopRequest with real signals sent to this process, one phase at a time: start-up ends at
once, training asks to stop after the step, a second SIGINT stops at once, and a signal while
a checkpoint is written waits until the file is complete."""
from __future__ import annotations

import collections
import os
import signal

import pytest
import torch

from libs.engine.checkpoint import atomic_save
from libs.utils.interrupt import (FINISHED, SAVING, STARTUP, TRAINING, Interrupted,
                                  StopRequest)


@pytest.fixture
def stop():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    req = StopRequest(announce=False)
    req.install()
    yield req
    for s, h in saved.items():
        signal.signal(s, h)


def _send(signum):
    os.kill(os.getpid(), signum)  # the handler runs before the next bytecode returns


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_startup_signal_ends_at_once(stop, signum):
    assert stop.phase == STARTUP
    with pytest.raises(Interrupted, match="before the first training step: nothing to "
                                          "save") as err:
        _send(signum)
        for _ in range(1000):  # (a signal is handled between bytecodes)
            pass
    assert err.value.exit_code == 128 + signum


def test_training_first_signal_asks_then_second_sigint_stops(stop):
    stop.set_phase(TRAINING)
    _send(signal.SIGTERM)
    assert stop.signum == signal.SIGTERM and stop.phase == TRAINING
    _send(signal.SIGTERM)  # a second SIGTERM: still stopping after the step
    assert stop.signum == signal.SIGTERM
    with pytest.raises(Interrupted, match="a second SIGINT stopped training at once: "
                                          "nothing saved"):
        _send(signal.SIGINT)
        for _ in range(1000):
            pass


def test_polling_commits_to_saving_and_defers_later_signals(stop, tmp_path):
    stop.set_phase(TRAINING)
    assert stop() is False
    _send(signal.SIGINT)
    assert stop() is True and stop.phase == SAVING  # the loop breaks, the save follows
    path = tmp_path / "interrupted.pth"

    class SignalsWhileSaved:  # torch.save pickles it: a signal arrives mid-write
        def __reduce__(self):
            _send(signal.SIGINT)
            _send(signal.SIGTERM)
            return (collections.OrderedDict, ())

    atomic_save({"w": torch.ones(3), "x": SignalsWhileSaved()}, str(path))
    assert path.exists() and not list(tmp_path.glob("*.tmp*"))
    assert torch.load(path, weights_only=True)["w"].tolist() == [1.0, 1.0, 1.0]
    assert stop.signum == signal.SIGINT  # the first signal decides the exit code


def test_saving_context_restores_the_phase(stop):
    stop.set_phase(TRAINING)
    with stop.saving():
        assert stop.phase == SAVING
        _send(signal.SIGINT)  # deferred: no exception
        _send(signal.SIGINT)
    assert stop.phase == TRAINING and stop() is True


def test_finished_phase_only_tells(stop):
    stop.set_phase(FINISHED)
    _send(signal.SIGINT)
    _send(signal.SIGINT)
    assert stop.signum == signal.SIGINT
