"""``train_one_epoch`` (docs/reference.md §7.3), split into a step helper and a log helper.

Per iteration (:func:`train_step`): ``zero_grad(set_to_none=True)``, forward (the model returns
``{'cls_loss', 'reg_loss', 'final_loss'}``), backward of ``final_loss``, optional global-L2
gradient clipping, ``optimizer.step()``, ``scheduler.step()`` (schedules are per iteration) and
the EMA update. Every ``print_freq`` iterations (not at 0) :func:`log_step` reads the losses
back, checks they are finite, feeds the meters, writes TensorBoard (``train/learning_rate``,
``train/all_losses``, ``train/final_loss`` at step ``epoch * num_iters + it``) and prints the
original's line with the LR and an ETA appended.

Additions (no number changes): a non-finite loss raises :class:`NonFiniteLossError` naming the
epoch, the first non-finite iteration, its losses and the video ids of its batch
(:class:`NonFiniteWatch` remembers them on the device every step and is read at the print
steps and once at the end of the epoch, where the loss is read back anyway); a
``should_stop`` callable lets the caller stop cleanly between iterations (SIGINT / SIGTERM);
an :class:`EpochResume` (``resume=``) resumes in the middle of an epoch.

DDP (torchrun): when ``global_num_pos`` is set, the model normalises its losses by the
positive count summed over all processes, so each process's loss is its share of the
union-batch loss; the gradient is multiplied by the world size before DDP averages it, which
makes one DDP step equal one single-process step on the union batch. Printed losses are summed
over the processes (the union-batch value). Without ``global_num_pos`` every process
normalises by its own count and DDP averages the gradients (losses printed as the mean).
"""
from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from libs.utils import AverageMeter, comm, synchronize
from libs.utils.cli import UserError
from libs.utils.host_memory import release_excess_memory

from .amp import MixedPrecision
from .checkpoint import restore_rng_state
from .wrapping import unwrap_model

__all__ = ["NonFiniteLossError", "NonFiniteWatch", "clip_grad_norm", "train_step", "log_step",
           "train_one_epoch", "install_num_pos_reducer", "EpochResult", "EpochResume",
           "StepOptions"]


class NonFiniteLossError(FloatingPointError, UserError):
    """A training loss became NaN or infinite."""


def install_num_pos_reducer(model: nn.Module) -> bool:
    """Makes the model sum its positive count over processes (DDP); True when installed.

    Uses the model attribute ``num_pos_reducer`` (a callable ``float -> float`` applied to the
    batch's positive count before it updates ``loss_normalizer``). Returns False in a single
    process or when the model has no such attribute.
    """
    net = unwrap_model(model)
    if comm.get_world_size() == 1 or not hasattr(net, "num_pos_reducer"):
        return False
    net.num_pos_reducer = comm.all_reduce_sum
    return True


def clip_grad_norm(parameters, max_norm: float, foreach: bool = True) -> torch.Tensor:
    """``clip_grad_norm_`` with the foreach kernels where the device has them (PyTorch uses
    them by default only on accelerators): the same per-tensor norms, total norm and scaling
    as the per-tensor loop, bit for bit (tested), in one call each. ``foreach=False``: PyTorch's
    default (the original's call; the per-tensor loop on the CPU)."""
    parameters = [p for p in parameters if p.grad is not None]
    if not foreach:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    try:
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=True)
    except RuntimeError:  # raised before any gradient is touched
        return torch.nn.utils.clip_grad_norm_(parameters, max_norm)


class NonFiniteWatch:
    """Remembers the first step whose losses were not finite, on the loss's device and
    without a host read; :meth:`check` reads it where the losses are read back anyway.

    Per step it keeps (as tensors) the first bad iteration and its loss values, and on the
    host the video ids of the batches since the last check.
    """

    def __init__(self) -> None:
        self.first: Optional[torch.Tensor] = None   # () int64, -1 while all are finite
        self.values: Optional[torch.Tensor] = None  # the losses of the first bad step
        self.keys: Sequence[str] = ()
        self.videos: Dict[int, list] = {}

    def update(self, losses: Mapping[str, torch.Tensor], it: int,
               video_list: Sequence[Mapping]) -> None:
        stacked = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
        if self.first is None:
            self.keys = tuple(losses)
            self.first = torch.full((), -1, dtype=torch.long, device=stacked.device)
            self.values = torch.zeros_like(stacked)
        new = (self.first < 0) & ~torch.isfinite(stacked).all()
        self.first = torch.where(new, self.first.new_full((), it), self.first)
        self.values = torch.where(new, stacked, self.values)
        self.videos[it] = [str(v.get("video_id", "?")) if isinstance(v, Mapping) else "?"
                           for v in video_list]

    def check(self, curr_epoch: int) -> None:
        """Raises :class:`NonFiniteLossError` when a step since the start was not finite
        (on any process under DDP); then forgets the video ids seen so far."""
        if self.first is None:
            return
        it = int(self.first.item())
        anywhere = it >= 0
        if comm.get_world_size() > 1:
            anywhere = comm.all_reduce_sum(1.0 if it >= 0 else 0.0) > 0
        if anywhere:
            if it < 0:
                raise NonFiniteLossError(
                    f"non-finite training loss at epoch {curr_epoch} on another process "
                    "(training stopped; the last checkpoint written is still valid)")
            values = dict(zip(self.keys, self.values.tolist()))
            raise NonFiniteLossError(
                f"non-finite training loss at epoch {curr_epoch}, iteration {it}: {values}; "
                f"videos of the batch: {self.videos.get(it, ['?'])} (training stopped; the "
                "last checkpoint written is still valid)")
        self.videos.clear()


def train_step(video_list: Sequence[Mapping], model: nn.Module,
               optimizer: torch.optim.Optimizer, scheduler: Any,
               model_ema: Optional[nn.Module] = None, clip_grad_l2norm: float = -1,
               grad_scale: float = 1.0, clip_foreach: bool = True,
               amp: Optional[MixedPrecision] = None) -> Dict[str, torch.Tensor]:
    """One optimisation step on a batch (a list of video dicts); returns the loss dict.
    ``clip_foreach``: see :func:`clip_grad_norm` (the procedure's ``foreach_clip``);
    ``amp``: opt-in mixed precision (amp.py; the model autocasts, this scales the loss)."""
    optimizer.zero_grad(set_to_none=True)
    losses = model(video_list)
    loss = losses["final_loss"] if grad_scale == 1.0 else losses["final_loss"] * grad_scale
    if amp is None:
        loss.backward()
    else:
        amp.backward(loss)
        amp.unscale(optimizer)
    if clip_grad_l2norm > 0.0:
        clip_grad_norm(model.parameters(), clip_grad_l2norm, foreach=clip_foreach)
    if amp is None:
        optimizer.step()
    else:
        amp.step(optimizer)
    scheduler.step()
    if model_ema is not None:
        model_ema.update(unwrap_model(model))
    release_excess_memory()  # the fast procedure's kept host memory stays bounded
    return losses


def _read_losses(losses: Mapping[str, torch.Tensor], curr_epoch: int, it: int,
                 reduce: str) -> Dict[str, float]:
    values = {k: float(v.item()) for k, v in losses.items()}
    if comm.get_world_size() > 1 and reduce != "none":
        world = comm.get_world_size()
        values = {k: comm.all_reduce_sum(v) / (1 if reduce == "sum" else world)
                  for k, v in values.items()}
    if not all(math.isfinite(v) for v in values.values()):
        raise NonFiniteLossError(
            f"non-finite training loss at epoch {curr_epoch}, iteration {it}: {values} "
            "(training stopped; the last checkpoint written is still valid)")
    return values


def log_step(values: Mapping[str, float], meters: Dict[str, AverageMeter],
             batch_time: AverageMeter, lr: float, curr_epoch: int, it: int, num_iters: int,
             remaining_iters: int, tb_writer: Any = None) -> str:
    """Feeds the meters, writes TensorBoard and returns the printed line."""
    for key, value in values.items():
        meters.setdefault(key, AverageMeter()).update(value)
    global_step = curr_epoch * num_iters + it
    if tb_writer is not None:
        tb_writer.add_scalar("train/learning_rate", lr, global_step)
        tb_writer.add_scalars("train/all_losses",
                              {k: m.val for k, m in meters.items() if k != "final_loss"},
                              global_step)
        tb_writer.add_scalar("train/final_loss", meters["final_loss"].val, global_step)
    block1 = f"Epoch: [{curr_epoch:03d}][{it:05d}/{num_iters:05d}]"
    block2 = f"Time {batch_time.val:.2f} ({batch_time.avg:.2f})"
    final = meters["final_loss"]
    block3 = f"Loss {final.val:.2f} ({final.avg:.2f})\n"
    block4 = "".join(f"\t{k} {m.val:.2f} ({m.avg:.2f})"
                     for k, m in meters.items() if k != "final_loss")
    eta = datetime.timedelta(seconds=int(batch_time.avg * max(remaining_iters, 0)))
    return "\t".join([block1, block2, block3, block4, f"LR {lr:.3e}", f"ETA {eta}"])


class EpochResult(dict):
    """``completed`` iterations of this call, ``interrupted`` flag, last ``lr``."""


@dataclass
class EpochResume:
    """Where a mid-epoch resume starts: the batches already trained in the epoch
    (``skip_iters``, drawn from the loader and discarded) and the RNG state at the
    interruption (``rng_state``, see checkpoint.py), restored into ``generator`` (the
    loader's) once the last skipped batch is drawn."""

    skip_iters: int = 0
    rng_state: Optional[Mapping[str, Any]] = None
    generator: Optional[torch.Generator] = None

    def skips(self, it: int) -> bool:
        """Whether batch ``it`` was trained before the interruption; restores the RNG state
        after drawing the last such batch."""
        if it >= self.skip_iters:
            return False
        if it == self.skip_iters - 1 and self.rng_state is not None:
            restore_rng_state(self.rng_state, self.generator)
        return True


@dataclass
class StepOptions:
    """What every :func:`train_step` of an epoch is given besides the batch and the model."""

    model_ema: Optional[nn.Module] = None
    clip_grad_l2norm: float = -1
    grad_scale: float = 1.0
    clip_foreach: bool = True
    amp: Optional[MixedPrecision] = None

    def run(self, video_list: Sequence[Mapping], model: nn.Module,
            optimizer: torch.optim.Optimizer, scheduler: Any) -> Dict[str, torch.Tensor]:
        """One :func:`train_step` (looked up by name, so a test may wrap it)."""
        return train_step(video_list, model, optimizer, scheduler, self.model_ema,
                          self.clip_grad_l2norm, self.grad_scale, clip_foreach=self.clip_foreach,
                          amp=self.amp)


class _EpochLog:
    """The print steps of one epoch: timing, loss read-back, meters, TensorBoard, the line."""

    def __init__(self, model: nn.Module, curr_epoch: int, num_iters: int, print_freq: int,
                 max_epochs: Optional[int], reduce: str, tb_writer: Any) -> None:
        self.curr_epoch, self.num_iters, self.print_freq = curr_epoch, num_iters, print_freq
        self.total_epochs = max_epochs if max_epochs is not None else curr_epoch + 1
        self.reduce = reduce
        self.main = comm.is_main_process()
        self.tb_writer = tb_writer if self.main else None
        self.device = next(unwrap_model(model).parameters()).device
        self.batch_time = AverageMeter()
        self.meters: Dict[str, AverageMeter] = {}
        self.start = 0.0  # set once the epoch's 'started' line is printed

    def due(self, it: int) -> bool:
        """Whether iteration ``it`` is a print step (every ``print_freq``, not at 0)."""
        return it != 0 and it % self.print_freq == 0

    def step(self, it: int, losses: Mapping[str, torch.Tensor], watch: NonFiniteWatch,
             lr: float) -> None:
        """Reads the losses back (checking they are finite), logs and prints them."""
        synchronize(self.device)
        self.batch_time.update((time.time() - self.start) / self.print_freq)
        self.start = time.time()
        watch.check(self.curr_epoch)
        values = _read_losses(losses, self.curr_epoch, it, self.reduce)
        remaining = (self.total_epochs - self.curr_epoch) * self.num_iters - (it + 1)
        line = log_step(values, self.meters, self.batch_time, lr, self.curr_epoch, it,
                        self.num_iters, remaining, self.tb_writer)
        if self.main:
            print(line, flush=True)


def train_one_epoch(train_loader: Any, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, curr_epoch: int, model_ema: Optional[nn.Module] = None,
                    clip_grad_l2norm: float = -1, tb_writer: Any = None, print_freq: int = 20,
                    *, max_epochs: Optional[int] = None,
                    should_stop: Optional[Callable[[], bool]] = None,
                    resume: Optional[EpochResume] = None, global_num_pos: bool = False,
                    clip_foreach: bool = True,
                    amp: Optional[MixedPrecision] = None) -> EpochResult:
    """Trains one epoch.

    Args:
        train_loader: yields batches (lists of video dicts); ``len()`` iterations per epoch.
        model: the network or its DDP wrapper, returning the loss dict in train mode.
        optimizer, scheduler: stepped every iteration.
        curr_epoch: 0-based epoch index.
        model_ema: updated after every step.
        clip_grad_l2norm: global L2 clipping threshold (<= 0: off).
        tb_writer: TensorBoard ``SummaryWriter`` or None (None on non-main processes).
        print_freq: log every N iterations (not at 0).
        max_epochs: last epoch (exclusive) for the ETA.
        should_stop: polled after every step; True ends the epoch early (interrupted).
        resume: a mid-epoch resume (:class:`EpochResume`); None starts at iteration 0.
        global_num_pos: the model sums the positive count over processes (see module doc).
        clip_foreach: foreach gradient clipping (the procedure's ``foreach_clip``).
        amp: opt-in mixed precision (amp.py), None for float32.

    Returns:
        :class:`EpochResult` with ``completed`` (iterations done in this epoch, including the
        skipped ones), ``interrupted`` and ``lr``.

    Raises:
        NonFiniteLossError: a loss read back at a print step or at the end is NaN / inf.
    """
    world = comm.get_world_size()
    options = StepOptions(model_ema, clip_grad_l2norm,
                          float(world) if (global_num_pos and world > 1) else 1.0, clip_foreach,
                          amp)
    resume = resume if resume is not None else EpochResume()
    model.train()
    log = _EpochLog(model, curr_epoch, len(train_loader), print_freq, max_epochs,
                    "sum" if global_num_pos else "mean", tb_writer)
    if log.main:
        print(f"\n[Train]: Epoch {curr_epoch:d} started")
    log.start = time.time()
    losses: Optional[Dict[str, torch.Tensor]] = None
    watch = NonFiniteWatch()
    completed, interrupted = resume.skip_iters, False
    for it, video_list in enumerate(train_loader):
        if resume.skips(it):
            continue
        losses = options.run(video_list, model, optimizer, scheduler)
        watch.update(losses, it, video_list)
        completed = it + 1
        if log.due(it):
            log.step(it, losses, watch, scheduler.get_last_lr()[0])
        if should_stop is not None and _stop_everywhere(should_stop()):
            interrupted = completed < log.num_iters
            break
    return _finish_epoch(losses, watch, curr_epoch, completed, interrupted, scheduler)


def _finish_epoch(losses: Optional[Dict[str, torch.Tensor]], watch: NonFiniteWatch,
                  curr_epoch: int, completed: int, interrupted: bool,
                  scheduler: Any) -> EpochResult:
    """Checks the last losses (before the caller writes a checkpoint), prints the epoch's
    last line unless interrupted, and returns the :class:`EpochResult`."""
    if losses is not None:
        watch.check(curr_epoch)
        _read_losses(losses, curr_epoch, completed - 1, "none")
    lr = scheduler.get_last_lr()[0]
    if comm.is_main_process() and not interrupted:
        print(f"[Train]: Epoch {curr_epoch:d} finished with lr={lr:.8f}\n")
    return EpochResult(completed=completed, interrupted=interrupted, lr=lr)


def _stop_everywhere(flag: bool) -> bool:
    # under DDP all processes must leave the loop at the same iteration
    if comm.get_world_size() == 1:
        return flag
    return comm.all_reduce_sum(1.0 if flag else 0.0) > 0
