"""Run by tests/engine/test_ddp_cpu.py under torchrun (2 gloo processes): one DDP step.

Each rank trains on its half of a fixed union batch; rank 0 saves the parameters to argv[1].
Also importable: :func:`make_model` and :func:`union_batch` build the same pieces for the
single-process reference.
"""
from __future__ import annotations

import sys

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel


class ToyPosModel(nn.Module):
    """Loss normalised like the real model: EMA of the positive count, with the
    ``num_pos_reducer`` hook applied to the count before the EMA update."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)
        self.loss_normalizer = 10.0
        self.num_pos_reducer = None

    def forward(self, video_list):
        x = torch.stack([v["feats"] for v in video_list])            # (B, 4)
        pos = torch.stack([v["pos"] for v in video_list])             # (B,)
        num_pos = pos.sum().item()
        if self.num_pos_reducer is not None:
            num_pos = self.num_pos_reducer(num_pos)
        self.loss_normalizer = 0.9 * self.loss_normalizer + 0.1 * max(num_pos, 1)
        per_item = (self.lin(x).squeeze(-1) - pos) ** 2
        cls_loss = per_item.sum() / self.loss_normalizer
        reg_loss = (per_item * pos).sum() / self.loss_normalizer
        return {"cls_loss": cls_loss, "reg_loss": reg_loss, "final_loss": cls_loss + reg_loss}


def make_model():
    torch.manual_seed(0)
    return ToyPosModel()


def union_batch():
    g = torch.Generator().manual_seed(1)
    return [{"feats": torch.randn(4, generator=g), "pos": torch.tensor(float(i % 3 == 0))}
            for i in range(6)]


def make_optimizer(model):
    # SGD: unlike Adam, its step is not invariant to a wrong gradient scale
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.05)


def main(out_path: str) -> None:
    from libs.engine.lr_schedulers import LinearWarmupCosineAnnealingLR
    from libs.engine.train_loop import install_num_pos_reducer, train_step
    from libs.utils import comm

    comm.init_distributed(torch.device("cpu"))
    rank, world = comm.get_rank(), comm.get_world_size()
    model = make_model()
    assert install_num_pos_reducer(model)
    ddp = DistributedDataParallel(model)
    opt = make_optimizer(model)
    sched = LinearWarmupCosineAnnealingLR(opt, 2, 10)
    batch = union_batch()
    shard = batch[rank * len(batch) // world:(rank + 1) * len(batch) // world]
    for _ in range(2):  # step 0 runs with LR 0 (warm-up), step 1 with the base LR
        train_step(shard, ddp, opt, sched, clip_grad_l2norm=-1, grad_scale=float(world))
    if rank == 0:
        torch.save({"params": {k: v.detach().clone() for k, v in model.state_dict().items()},
                    "loss_normalizer": model.loss_normalizer}, out_path)
    comm.destroy_distributed()


if __name__ == "__main__":
    main(sys.argv[1])
