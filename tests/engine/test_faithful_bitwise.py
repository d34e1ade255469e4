"""``train.py --faithful`` against the original's own checkpoints of 4 training steps
(conformance ``tiny_train/``: epoch_002 ... epoch_004, CPU, 2 threads), and the default
procedure's distance from them.

The run follows tiny_train/README.md: ``tiny_train/`` and ``tiny_data/`` copied side by side,
``python train.py tiny_train4.yaml --output x -p 1 -c 1 [--faithful]`` run from the copy in a
fresh process with 2 torch threads (the original's first run in a process: TorchScript state).
``--faithful`` itself caps the CPU kernels at AVX2, the ISA of the original's reference runs
(the variables are removed from the child's environment so that train.py has to do it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch

from tests._assets import REPO_ROOT, conformance_path

EPOCHS = (2, 3, 4)
KEYS = ("state_dict", "state_dict_ema")


def _train(tmp: Path, name: str, *flags: str) -> Path:
    work = tmp / name
    shutil.copytree(conformance_path("tiny_train"), work / "tiny_train")
    shutil.copytree(conformance_path("tiny_data"), work / "tiny_data")
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2",
               PYTHONPATH=str(REPO_ROOT))
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        env.pop(name, None)
    cmd = [sys.executable, str(REPO_ROOT / "train.py"), "tiny_train4.yaml", "--output", name,
           "-p", "1", "-c", "1", *flags]
    run = subprocess.run(cmd, cwd=work / "tiny_train", env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return work / "tiny_train" / "ckpt" / f"tiny_train4_{name}"


def _max_diff(folder: Path) -> Dict[Tuple[int, str], Tuple[float, int]]:
    """(epoch, key) -> (max |ours - original|, number of tensors not bitwise equal)."""
    out = {}
    for epoch in EPOCHS:
        want = torch.load(conformance_path("tiny_train") / f"epoch_{epoch:03d}.pth.tar")
        got = torch.load(folder / f"epoch_{epoch:03d}.pth.tar")
        for key in KEYS:
            assert list(got[key]) == list(want[key])
            diffs = [(got[key][k].float() - v.float()).abs().max().item()
                     for k, v in want[key].items()]
            unequal = sum(not torch.equal(got[key][k], v) for k, v in want[key].items())
            out[epoch, key] = (max(diffs), unequal)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny_train")
    return {"faithful": _max_diff(_train(tmp, "faithful", "--faithful")),
            "fast": _max_diff(_train(tmp, "fast"))}


def test_faithful_training_is_bitwise_the_originals(runs):
    assert all(unequal == 0 and diff == 0.0 for diff, unequal in runs["faithful"].values()), \
        runs["faithful"]


def test_default_training_is_within_1e_6_of_the_originals(runs):
    assert all(diff <= 1e-6 for diff, _ in runs["fast"].values()), runs["fast"]
