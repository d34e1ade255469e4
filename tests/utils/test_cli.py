"""run_main: expected errors as one ``error: ...`` line with exit code 1, ``--debug`` /
ACTIONFORMER_DEBUG re-raise them, unexpected exceptions keep their traceback."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest

from libs.core import ConfigError
from libs.engine.checkpoint import CheckpointError
from libs.engine.train_loop import NonFiniteLossError
from libs.datasets.validation import DatasetError
from libs.utils.cli import run_main
from libs.utils.device import DeviceError
from libs.utils.interrupt import Interrupted
from libs.utils.safe_pickle import UnsafePickleError


def _raising(err):
    def main(argv):
        main.argv = argv
        raise err
    return main


@pytest.mark.parametrize("err", [
    ConfigError("c.yaml: 'opt.lr' is not a key"), CheckpointError("'x.pth.tar' is empty"),
    DatasetError("ann.json: 1 segment(s) with end <= start"), DeviceError("--device: bad"),
    NonFiniteLossError("non-finite training loss at epoch 1"),
    UnsafePickleError("s.pkl: refused"), FileNotFoundError("checkpoint not found: 'a'"),
    OSError(errno.ENOSPC, "No space left on device")])
def test_expected_errors_are_one_line(err, capsys, monkeypatch):
    monkeypatch.delenv("ACTIONFORMER_DEBUG", raising=False)
    assert run_main(_raising(err), ["cfg.yaml"]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"error: {err}\n"


def test_debug_flag_and_variable_show_the_traceback(monkeypatch):
    monkeypatch.delenv("ACTIONFORMER_DEBUG", raising=False)
    main = _raising(ConfigError("bad"))
    with pytest.raises(ConfigError):
        run_main(main, ["cfg.yaml", "--debug"])
    assert main.argv == ["cfg.yaml"]  # the flag is not passed on
    monkeypatch.setenv("ACTIONFORMER_DEBUG", "1")
    with pytest.raises(ConfigError):
        run_main(main, ["cfg.yaml"])


@pytest.mark.parametrize("err", [ValueError("a bug"), KeyError("k"), AssertionError("x"),
                                 RuntimeError("y")])
def test_unexpected_errors_keep_their_traceback(err, monkeypatch):
    monkeypatch.delenv("ACTIONFORMER_DEBUG", raising=False)
    with pytest.raises(type(err)):
        run_main(_raising(err), [])


def test_warnings_print_as_one_line(repo_root):
    code = ("import sys, warnings\n"
            "from libs.utils.cli import run_main\n"
            "def main(argv):\n"
            "    warnings.warn(\"ann.json: 1 segment(s) start before 0 s\")\n"
            "    raise FileNotFoundError('annotation file not found: a.json')\n"
            "sys.exit(run_main(main))\n")
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    env.pop("ACTIONFORMER_DEBUG", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == ("warning: ann.json: 1 segment(s) start before 0 s\n"
                           "error: annotation file not found: a.json\n")


def test_interrupts_and_return_codes(capsys, monkeypatch):
    monkeypatch.delenv("ACTIONFORMER_DEBUG", raising=False)
    why = "received SIGTERM before the first training step: nothing to save"
    assert run_main(_raising(Interrupted(signal.SIGTERM, why)), []) == 128 + signal.SIGTERM
    assert capsys.readouterr().err == f"interrupted: {why}\n"
    assert run_main(_raising(KeyboardInterrupt()), []) == 130
    assert capsys.readouterr().err == "interrupted: SIGINT (Ctrl-C)\n"
    assert run_main(lambda argv: 3, []) == 3 and run_main(lambda argv: None, []) == 0
