"""Run by tests/e2e/test_devices.py under ``torchrun --nproc_per_node=1``: DDP training steps
of the real model on one device, with the process group of that device (NCCL on a GPU, gloo
on the CPU), on the union batch of the two conformance training videos.

Usage: ``torchrun --nproc_per_node=1 ddp_device_worker.py CONFIG.yaml TINY_INPUTS.pt OUT.pt
DEVICE``. Saves per scenario the parameters (on the CPU) and the recorded steps.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e import ddp_real_worker as worker  # noqa: E402

SCENARIOS = ("sgd", "adamw_clip")


def run(config_path: str, videos, device: torch.device, scenario: str):
    cfg = worker.load_scenario_config(config_path, scenario)
    net = worker.make_model(cfg).to(device)
    ids = [device.index] if device.index is not None else None
    model = DistributedDataParallel(net, device_ids=ids)
    record = worker.train_steps(cfg, model, [[videos[0], videos[1]]] * worker.NUM_STEPS)
    return {"params": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "steps": record}


def main(config_path: str, inputs_path: str, out_path: str, device_name: str) -> None:
    from libs.utils.device import resolve_device, set_cuda_device
    device = resolve_device(device_name)
    set_cuda_device(device)
    dist.init_process_group(backend="gloo" if device.type == "cpu" else "nccl",
                            init_method="env://")
    videos = torch.load(inputs_path, weights_only=True)["videos"]
    results = {name: run(config_path, videos, device, name) for name in SCENARIOS}
    results["backend"] = dist.get_backend()
    torch.save(results, out_path)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:5])
