"""``python -m libs.collect_env`` runs and reports the versions and the NMS backend."""
from __future__ import annotations

import os
import subprocess
import sys

import torch

from libs.ops import extension_available


def test_collect_env_reports_backend(repo_root):
    env = dict(os.environ, ACTIONFORMER_NMS_BACKEND="torch")
    out = subprocess.run([sys.executable, "-m", "libs.collect_env"], cwd=repo_root,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" : ", 1) for line in out.stdout.splitlines() if " : " in line)
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert lines["PyTorch"].startswith(torch.__version__)
    assert lines["NMS backend"] == "torch"
    assert lines["ACTIONFORMER_NMS_BACKEND"] == "torch"
    built = lines["C++ NMS extension libs.ops._C built"]
    assert built.startswith("yes" if extension_available() else "no")
    for name in ("numpy", "pandas", "Python", "Accelerators"):
        assert lines[name]
