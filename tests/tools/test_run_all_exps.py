"""tools/run_all_exps.sh runs the docs/reference.md §8.2 sequence (checked with a stand-in python).

The script is copied into a scratch "repository" whose .venv/bin/python only records its
arguments; `sleep` is replaced through PATH so the test does not wait 4 x 5 s.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["thumos_i3d", "epic_slowfast_verb", "epic_slowfast_noun", "anet_tsp"]

FAKE_PYTHON = """#!/bin/sh
echo "$@" >> "$CALLS"
echo "output of $2"
case "$*" in *"$FAIL_ON"*) exit 3 ;; esac
exit 0
"""


def _setup(tmp_path: Path):
    if shutil.which("bash") is None:
        pytest.skip("bash not available")
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "run_all_exps.sh", repo / "tools" / "run_all_exps.sh")
    (repo / ".venv" / "bin").mkdir(parents=True)
    py = repo / ".venv" / "bin" / "python"
    py.write_text(FAKE_PYTHON)
    py.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sleep = bin_dir / "sleep"
    sleep.write_text('#!/bin/sh\necho "sleep $*" >> "$CALLS"\n')
    sleep.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               CALLS=str(tmp_path / "calls.txt"), FAIL_ON="no-such-thing")
    return repo, env


def test_sequence_logs_and_sleeps(tmp_path):
    repo, env = _setup(tmp_path)
    # started from another folder: the script moves to the repository root itself
    proc = subprocess.run(["bash", str(repo / "tools" / "run_all_exps.sh")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    expected = []
    for name in NAMES:
        expected += [f"./train.py ./configs/{name}.yaml --output final",
                     f"./eval.py ./configs/{name}.yaml ./ckpt/{name}_final/",
                     "sleep 5"]
    assert calls == expected
    for name in NAMES:
        assert (repo / "ckpt" / f"{name}_log.txt").read_text() == \
            f"output of ./configs/{name}.yaml\n"
        assert (repo / "ckpt" / f"{name}_results.txt").read_text() == \
            f"output of ./configs/{name}.yaml\n"


def test_the_first_failure_stops_the_script(tmp_path):
    repo, env = _setup(tmp_path)
    env["FAIL_ON"] = "train.py ./configs/epic_slowfast_noun.yaml"
    proc = subprocess.run(["bash", str(repo / "tools" / "run_all_exps.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3  # the failing step's status, through the tee (pipefail)
    assert "stopped: training epic_slowfast_noun" in proc.stderr
    assert "epic_slowfast_noun_log.txt" in proc.stderr
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    # thumos and epic verb ran completely; nothing runs after the failing training
    assert calls[-1] == "./train.py ./configs/epic_slowfast_noun.yaml --output final"
    assert len(calls) == 2 * 3 + 1
    assert "all experiments done" not in proc.stdout


def test_bash_syntax():
    if shutil.which("bash") is None:
        pytest.skip("bash not available")
    proc = subprocess.run(["bash", "-n", str(ROOT / "tools" / "run_all_exps.sh")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
