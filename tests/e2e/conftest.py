"""Fixtures for the end-to-end tests: a tiny THUMOS-style config on the conformance data."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def write_tiny_config(conformance_dir: Path, folder: Path, **opt_overrides) -> Path:
    """tiny_thumos.yaml with absolute data paths, 3 epochs (1 warm-up), batch 1, no workers."""
    with open(conformance_dir / "tiny_thumos.yaml") as f:
        cfg = yaml.load(f, Loader=yaml.FullLoader)
    data = conformance_dir / "tiny_data"
    cfg["dataset"]["json_file"] = str(data / "annotations" / "tiny_thumos14.json")
    cfg["dataset"]["feat_folder"] = str(data / "i3d_features")
    cfg["opt"].update({"epochs": 2, "warmup_epochs": 1, "learning_rate": 0.001})
    cfg["opt"].update(opt_overrides)
    cfg["loader"] = {"batch_size": 1, "num_workers": 0}
    cfg["output_folder"] = str(folder / "ckpt")
    cfg["devices"] = ["cuda:0"]  # falls back to CPU here (one warning)
    suffix = "".join(f"_{v}" for v in opt_overrides.values())
    path = folder / f"tiny_e2e{suffix}.yaml"
    with open(path, "w") as f:
        yaml.dump(cfg, f)
    return path


def run_script(repo_root: Path, *args: str, timeout: int = 240, check: bool = True,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, *args], cwd=cwd or repo_root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc
