"""DDP on CPU (gloo, 2 processes via torchrun): steps equal single-process union-batch steps."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from tests.engine import ddp_step_worker as worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_step_equals_single_process_union_batch(tmp_path, repo_root):
    out = tmp_path / "ddp.pt"
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", "--master_addr=127.0.0.1",
           str(repo_root / "tests" / "engine" / "ddp_step_worker.py"), str(out)]
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)

    from libs.engine.lr_schedulers import LinearWarmupCosineAnnealingLR
    from libs.engine.train_loop import train_step
    model = worker.make_model()
    opt = worker.make_optimizer(model)
    sched = LinearWarmupCosineAnnealingLR(opt, 2, 10)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(2):
        train_step(worker.union_batch(), model, opt, sched, clip_grad_l2norm=-1)
    assert ddp["loss_normalizer"] == model.loss_normalizer
    for k, v in model.state_dict().items():
        assert not torch.equal(v, start[k])  # the step did move the weights
        assert torch.allclose(ddp["params"][k], v, atol=1e-6, rtol=0), k
