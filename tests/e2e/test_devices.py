"""GPU-only end-to-end checks (skipped cleanly without a GPU): a training run against the
original's checkpoints, evaluation against the CPU's mAP, and DDP with NCCL on one GPU
against one plain process. The CPU versions of these checks are test_faithful_bitwise.py,
test_train_eval.py and test_ddp_real.py; the stage-by-stage conformance runs on every
device in tests/conformance. Helpers take the device so that they run on the CPU as well.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests._assets import REPO_ROOT, asset_path
from tests.e2e import ddp_device_worker, ddp_real_worker as worker
from tests.e2e.conftest import run_script, write_tiny_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.cuda]


def train_tiny(tmp: Path, device: torch.device) -> Path:
    """train.py on the original's tiny_train4.yaml (4 epochs, one step each) on ``device``."""
    work = tmp / f"train_{device.type}"
    shutil.copytree(asset_path("conformance/tiny_train"), work / "tiny_train")
    shutil.copytree(asset_path("conformance/tiny_data"), work / "tiny_data")
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, str(REPO_ROOT / "train.py"), "tiny_train4.yaml", "--output", "dev",
           "-p", "1", "-c", "1", "--device", str(device)]
    run = subprocess.run(cmd, cwd=work / "tiny_train", env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return work / "tiny_train" / "ckpt" / "tiny_train4_dev"


def max_diff_to_original(folder: Path) -> float:
    """Largest |ours - original| over the state_dict / EMA of epochs 2-4."""
    worst = 0.0
    for epoch in (2, 3, 4):
        want = torch.load(asset_path("conformance/tiny_train") / f"epoch_{epoch:03d}.pth.tar")
        got = torch.load(folder / f"epoch_{epoch:03d}.pth.tar")
        for key in ("state_dict", "state_dict_ema"):
            assert list(got[key]) == list(want[key])
            worst = max([worst] + [(got[key][k].float().cpu() - v.float()).abs().max().item()
                                   for k, v in want[key].items()])
    return worst


def test_training_on_the_gpu_follows_the_originals_checkpoints(gpu_device, tmp_path):
    assert max_diff_to_original(train_tiny(tmp_path, gpu_device)) <= 1e-5


def eval_map_lines(tmp: Path, device: torch.device) -> list:
    """The mAP lines eval.py prints for the perturbed conformance checkpoint on ``device``."""
    cfg = write_tiny_config(asset_path("conformance"), tmp)
    ckpt = asset_path("conformance/tiny_thumos_perturbed") / "epoch_000.pth.tar"
    proc = run_script(REPO_ROOT, "eval.py", str(cfg), str(ckpt), "--device", str(device))
    assert "All done!" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if re.search(r"mAP", line)]
    assert lines, proc.stdout[-2000:]
    return lines


def test_evaluation_on_the_gpu_gives_the_cpu_map(gpu_device, tmp_path):
    assert eval_map_lines(tmp_path, gpu_device) == eval_map_lines(tmp_path, torch.device("cpu"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_one_process(tmp: Path, device: torch.device) -> dict:
    """ddp_device_worker.py under torchrun with one process on ``device``."""
    cfg = write_tiny_config(asset_path("conformance"), tmp)
    out = tmp / "ddp.pt"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1",
           f"--master_port={_free_port()}", "--master_addr=127.0.0.1",
           ddp_device_worker.__file__, str(cfg), str(asset_path("conformance/tiny_inputs.pt")),
           str(out), str(device)]
    proc = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"cfg": cfg, **torch.load(out, weights_only=True)}


def assert_ddp_equals_plain_cpu_process(result: dict, backend: str) -> None:
    assert result["backend"] == backend
    videos = torch.load(asset_path("conformance/tiny_inputs.pt"), weights_only=True)["videos"]
    for scenario in ddp_device_worker.SCENARIOS:
        cfg = worker.load_scenario_config(str(result["cfg"]), scenario)
        model = worker.make_model(cfg)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        ref = worker.train_steps(cfg, model, [[videos[0], videos[1]]] * worker.NUM_STEPS)
        got = result[scenario]
        for step, want in zip(got["steps"], ref):
            assert step["final_loss"] == pytest.approx(want["final_loss"], rel=1e-5)
        for k, v in model.state_dict().items():
            torch.testing.assert_close(got["params"][k], v, atol=1e-5, rtol=0, msg=k)
        assert any(not torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_ddp_with_nccl_on_one_gpu_equals_one_plain_process(gpu_device, tmp_path):
    assert_ddp_equals_plain_cpu_process(ddp_one_process(tmp_path, gpu_device), "nccl")
