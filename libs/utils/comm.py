"""Process-group helpers for torchrun / DistributedDataParallel, safe without ``torch.distributed``.

The original has no multi-process support (docs/reference.md §9 item 4: ``nn.DataParallel`` with a
list-of-dicts batch only works on one device). Every helper below works when the process group
is not initialised (world size 1, rank 0), so single-process code paths need no branches.
:func:`init_distributed` starts the group only under torchrun (env ``WORLD_SIZE`` > 1): NCCL on
GPUs, gloo on CPU.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional

import torch
import torch.distributed as dist

__all__ = ["is_dist_avail_and_initialized", "get_world_size", "get_rank", "get_local_rank",
           "is_main_process", "launched_with_torchrun", "init_distributed",
           "destroy_distributed", "barrier", "all_reduce_sum", "all_gather_object",
           "broadcast_object"]


def is_dist_avail_and_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if is_dist_avail_and_initialized() else 1


def get_rank() -> int:
    return dist.get_rank() if is_dist_avail_and_initialized() else 0


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0)) if is_dist_avail_and_initialized() else 0


def is_main_process() -> bool:
    return get_rank() == 0


def launched_with_torchrun() -> bool:
    """True when the environment describes more than one process (torchrun sets these)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_distributed(device: torch.device) -> bool:
    """Initialises the default process group from the torchrun environment.

    Args:
        device: this process's device (from ``libs.utils.device.resolve_device``): CUDA → NCCL
            (and the device becomes the current CUDA device), anything else → gloo.

    Returns:
        True when a process group is (now) initialised, False for a single process.
    """
    if is_dist_avail_and_initialized():
        return True
    if not launched_with_torchrun():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return True


def destroy_distributed() -> None:
    """Waits for every process, then destroys the process group (no-op in one process).

    The barrier matters: a process that tears down gloo while another still works (rank 0
    saving or evaluating) can abort at exit ("terminate called without an active exception").
    """
    if is_dist_avail_and_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if get_world_size() > 1:
        dist.barrier()


def _backend_device() -> torch.device:
    # NCCL only reduces CUDA tensors; gloo reduces CPU tensors
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(value: float) -> float:
    """Sum of a Python number over all processes (the value itself without a process group).

    Reduced in float64 so that integer counts (e.g. the number of positive points) stay exact.
    """
    if get_world_size() == 1:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_backend_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.item()


def all_gather_object(obj: Any) -> List[Any]:
    """List of ``obj`` from every rank, in rank order (``[obj]`` without a process group)."""
    if get_world_size() == 1:
        return [obj]
    out: List[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (``obj`` itself without a process group)."""
    if get_world_size() == 1:
        return obj
    box: List[Optional[Any]] = [obj if get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]
