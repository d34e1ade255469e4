"""Run by tests/e2e/test_ddp_real.py under torchrun (2 gloo processes): real-model DDP steps.

Trains the real ``LocPointTransformer`` (tiny conformance config, drop path 0 so that every
process draws no random numbers in the forward pass) for two iterations with the engine's own
pieces, wired as train.py wires them: ``install_num_pos_reducer`` on the bare network,
``DistributedDataParallel``, ``make_optimizer`` / ``make_scheduler`` on the wrapper, the
learning rate multiplied by the world size, and ``train_one_epoch(..., global_num_pos=True)``
(docs/distributed.md, "Semantics"). Rank ``r`` trains on video ``r`` of the conformance
``tiny_inputs.pt``; the test compares with one process on the union batch of both videos.

Scenarios (one torchrun launch runs them all; the model is tiny): ``sgd`` (SGD with momentum,
no clipping: a wrong gradient scale changes the step), ``sgd_clip`` (train.py's global L2
clipping, applied after DDP's gradient all-reduce; at 0.5 because the union gradient norm is
about 0.85, so the default 1.0 would not clip), ``adamw_clip`` (the default optimizer AdamW
with clipping, at the tiny config's learning rate) and two negative controls that break the
DDP path on purpose, so the test shows it would catch the bug: ``sgd_no_reducer`` (the
positive count is not summed over processes) and ``sgd_no_grad_scale`` (the gradient is not
multiplied by the world size).

Usage: ``torchrun --nproc_per_node=2 ddp_real_worker.py CONFIG.yaml TINY_INPUTS.pt OUT.pt``.
Importable: :func:`load_scenario_config`, :func:`make_model`, :func:`train_steps` build the
single-process reference from the same pieces.
"""
from __future__ import annotations

import contextlib
import copy
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn

# opt overrides (no warm-up: the first step already moves the weights), clipping, breakage
SCENARIOS: Dict[str, Dict[str, Any]] = {
    "sgd": {"opt": {"type": "SGD", "momentum": 0.9, "learning_rate": 0.01},
            "clip": -1.0, "break": None},
    "sgd_clip": {"opt": {"type": "SGD", "momentum": 0.9, "learning_rate": 0.01},
                 "clip": 0.5, "break": None},
    "adamw_clip": {"opt": {"type": "AdamW", "learning_rate": 0.0001},
                   "clip": 0.5, "break": None},
    "sgd_no_reducer": {"opt": {"type": "SGD", "momentum": 0.9, "learning_rate": 0.01},
                       "clip": -1.0, "break": "reducer"},
    "sgd_no_grad_scale": {"opt": {"type": "SGD", "momentum": 0.9, "learning_rate": 0.01},
                          "clip": -1.0, "break": "grad_scale"},
}
NUM_STEPS = 2


def load_scenario_config(config_path: str, scenario: str) -> Dict[str, Any]:
    from libs.core import load_config
    cfg = load_config(config_path)
    cfg["opt"].update(SCENARIOS[scenario]["opt"])
    cfg["opt"].update({"warmup": False, "epochs": 10, "warmup_epochs": 0})
    cfg["train_cfg"]["clip_grad_l2norm"] = SCENARIOS[scenario]["clip"]
    return cfg


def make_model(cfg: Dict[str, Any]) -> nn.Module:
    from libs.modeling import make_meta_arch
    torch.manual_seed(0)
    return make_meta_arch(cfg["model_name"], **cfg["model"])


@contextlib.contextmanager
def _recording_train_step(record: List[Dict[str, Any]],
                          force_grad_scale: Optional[float]) -> Iterator[None]:
    """Wraps ``train_loop.train_step`` (looked up by name in ``train_one_epoch``): records the
    losses, the gradient scale and the final gradient norm of every step;
    ``force_grad_scale`` overrides the scale."""
    from libs.engine import train_loop
    original = train_loop.train_step

    def step(video_list, model, optimizer, scheduler, model_ema=None, clip_grad_l2norm=-1,
             grad_scale=1.0, clip_foreach=True):
        if force_grad_scale is not None:
            grad_scale = force_grad_scale
        losses = original(video_list, model, optimizer, scheduler, model_ema,
                          clip_grad_l2norm, grad_scale, clip_foreach=clip_foreach)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        # global L2 norm of the gradient the optimizer used (after any clipping)
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g)
                                                     for g in grads])).item()
        record.append({"grad_scale": grad_scale, "grad_norm": norm,
                       **{k: float(v.item()) for k, v in losses.items()}})
        return losses

    train_loop.train_step = step
    try:
        yield
    finally:
        train_loop.train_step = original


def train_steps(cfg: Dict[str, Any], model: nn.Module, batches: Sequence[List[Dict]],
                global_num_pos: bool = False,
                force_grad_scale: Optional[float] = None) -> List[Dict[str, Any]]:
    """``train_one_epoch`` over ``batches`` (a list of video lists) with the engine's optimizer
    and scheduler for ``cfg['opt']``; returns the recorded per-step losses."""
    from libs.engine import make_optimizer, make_scheduler, train_one_epoch
    optimizer = make_optimizer(model, cfg["opt"])
    scheduler = make_scheduler(optimizer, cfg["opt"], len(batches))
    record: List[Dict[str, Any]] = []
    with _recording_train_step(record, force_grad_scale):
        train_one_epoch(batches, model, optimizer, scheduler, 0,
                        clip_grad_l2norm=cfg["train_cfg"]["clip_grad_l2norm"],
                        print_freq=10 ** 6, max_epochs=1, global_num_pos=global_num_pos)
    return record


def _run_ddp_scenario(config_path: str, videos: List[Dict], scenario: str) -> Dict[str, Any]:
    from torch.nn.parallel import DistributedDataParallel

    from libs.engine.train_loop import install_num_pos_reducer
    from libs.utils import comm

    rank, world = comm.get_rank(), comm.get_world_size()
    cfg = load_scenario_config(config_path, scenario)
    cfg["opt"]["learning_rate"] *= world  # train.py's rule
    net = make_model(cfg)
    global_num_pos = install_num_pos_reducer(net)
    assert global_num_pos, "install_num_pos_reducer did not install the hook"
    brk = SCENARIOS[scenario]["break"]
    if brk == "reducer":
        net.num_pos_reducer = None  # negative control: per-process positive count
    model = DistributedDataParallel(net)
    batches = [[copy.deepcopy(videos[rank])] for _ in range(NUM_STEPS)]
    record = train_steps(cfg, model, batches, global_num_pos=global_num_pos,
                         force_grad_scale=1.0 if brk == "grad_scale" else None)
    params = {k: v.detach().clone() for k, v in net.state_dict().items()}
    all_params = comm.all_gather_object(params)
    return {"params": params,
            "replicas_equal": all(torch.equal(p[k], params[k])
                                  for p in all_params for k in params),
            "loss_normalizer": comm.all_gather_object(net.loss_normalizer),
            "steps": comm.all_gather_object(record)}


def main(config_path: str, inputs_path: str, out_path: str) -> None:
    from libs.utils import comm

    torch.set_num_threads(1)
    comm.init_distributed(torch.device("cpu"))
    if comm.get_world_size() != 2:
        raise RuntimeError("run with torchrun --nproc_per_node=2")
    videos = torch.load(inputs_path, weights_only=True)["videos"]
    results = {name: _run_ddp_scenario(config_path, videos, name) for name in SCENARIOS}
    if comm.is_main_process():
        torch.save(results, out_path)
    comm.barrier()
    comm.destroy_distributed()


if __name__ == "__main__":
    main(*sys.argv[1:4])
