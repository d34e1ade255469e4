"""Per-iteration learning-rate schedules and ``make_scheduler`` (docs/reference.md §7.6).

The two warm-up schedulers reproduce the original's *chainable* (recursive) update: each
``step()`` derives the new LR from the current ``group['lr']``, which is what the original
computes and therefore what its checkpoints continue from. The closed form is used only when
``step(epoch)`` is called with an explicit position, as in the original; the two agree to
~1e-19.

File-format note: ``LRScheduler.state_dict()`` is the object's ``__dict__``, so the attribute
names ``warmup_epochs``, ``max_epochs``, ``warmup_start_lr`` and ``eta_min`` are stored in
every checkpoint. They are kept although ``warmup_epochs`` / ``max_epochs`` count
**iterations** (scheduler steps), not epochs: ``make_scheduler`` passes
``warmup_epochs * iters_per_epoch`` and ``(epochs + warmup_epochs) * iters_per_epoch``.
"""
from __future__ import annotations

import math
import warnings
from bisect import bisect_right
from collections import Counter
from typing import List, Mapping, Optional, Sequence

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR

__all__ = ["LinearWarmupCosineAnnealingLR", "LinearWarmupMultiStepLR", "make_scheduler"]


def _chained_warmup_lrs(sched) -> Optional[List[float]]:
    """The linear warm-up part of both schedulers' chainable ``get_lr``.

    Step 0 gives ``warmup_start_lr``; each later warm-up step adds
    ``(base - warmup_start_lr) / (W - 1)`` to the current LR; step ``W`` resets to the base LR.
    Returns None once past warm-up (the caller continues with its own schedule).
    """
    if not sched._get_lr_called_within_step:
        warnings.warn("To get the last learning rate computed by the scheduler, "
                      "please use `get_last_lr()`.", UserWarning)
    k, W = sched.last_epoch, sched.warmup_epochs
    if k == 0:
        return [sched.warmup_start_lr] * len(sched.base_lrs)
    if k < W:
        return [g["lr"] + (base - sched.warmup_start_lr) / (W - 1)
                for base, g in zip(sched.base_lrs, sched.optimizer.param_groups)]
    if k == W:
        return list(sched.base_lrs)
    return None


class LinearWarmupCosineAnnealingLR(LRScheduler):
    """Linear warm-up from ``warmup_start_lr`` then cosine annealing to ``eta_min``.

    With ``W = warmup_epochs``, ``M = max_epochs`` (both in scheduler steps) and base LR
    ``eta``, the LR after ``k`` steps is ``warmup_start_lr + k (eta - warmup_start_lr)/(W - 1)``
    for ``k < W`` (the base LR is reached at ``k = W - 1``), ``eta`` at ``k = W``, and
    ``eta_min + (eta - eta_min)(1 + cos(pi (k - W)/(M - W)))/2`` afterwards.

    Args:
        optimizer: wrapped optimizer.
        warmup_epochs: warm-up length W, in scheduler steps (iterations); name kept for the
            checkpoint format.
        max_epochs: total length M, in scheduler steps (iterations); name kept likewise.
        warmup_start_lr: LR at step 0.
        eta_min: final LR.
        last_epoch: index of the last step (-1 to start).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_epochs: int, max_epochs: int,
                 warmup_start_lr: float = 0.0, eta_min: float = 1e-8,
                 last_epoch: int = -1) -> None:
        self.warmup_epochs = warmup_epochs
        self.max_epochs = max_epochs
        self.warmup_start_lr = warmup_start_lr
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:  # chainable form, as the original
        warmup = _chained_warmup_lrs(self)
        if warmup is not None:
            return warmup
        k, W, M = self.last_epoch, self.warmup_epochs, self.max_epochs
        groups = self.optimizer.param_groups
        if (k - 1 - M) % (2 * (M - W)) == 0:
            # the ratio below would divide by zero one step past a cosine minimum
            return [g["lr"] + (base - self.eta_min) * (1 - math.cos(math.pi / (M - W))) / 2
                    for base, g in zip(self.base_lrs, groups)]
        ratio_num = 1 + math.cos(math.pi * (k - W) / (M - W))
        ratio_den = 1 + math.cos(math.pi * (k - W - 1) / (M - W))
        return [ratio_num / ratio_den * (g["lr"] - self.eta_min) + self.eta_min
                for g in groups]

    def _get_closed_form_lr(self) -> List[float]:
        k, W, M = self.last_epoch, self.warmup_epochs, self.max_epochs
        if k < W:
            return [self.warmup_start_lr + k * (base - self.warmup_start_lr) / (W - 1)
                    for base in self.base_lrs]
        return [self.eta_min + 0.5 * (base - self.eta_min)
                * (1 + math.cos(math.pi * (k - W) / (M - W))) for base in self.base_lrs]


class LinearWarmupMultiStepLR(LRScheduler):
    """Linear warm-up, then the LR is multiplied by ``gamma`` at each milestone.

    Milestones count scheduler steps *after* the warm-up: the LR drops when ``k - W`` equals
    a milestone (by ``gamma ** multiplicity`` for repeated milestones).

    Args:
        optimizer: wrapped optimizer.
        warmup_epochs: warm-up length W in scheduler steps (name kept for the file format).
        milestones: step counts after the warm-up at which the LR decays.
        warmup_start_lr: LR at step 0.
        gamma: decay factor.
        last_epoch: index of the last step (-1 to start).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_epochs: int,
                 milestones: Sequence[int], warmup_start_lr: float = 0.0, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.warmup_epochs = warmup_epochs
        self.warmup_start_lr = warmup_start_lr
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:  # chainable form, as the original
        warmup = _chained_warmup_lrs(self)
        if warmup is not None:
            return warmup
        k, W = self.last_epoch, self.warmup_epochs
        groups = self.optimizer.param_groups
        if (k - W) not in self.milestones:
            return [g["lr"] for g in groups]
        return [g["lr"] * self.gamma ** self.milestones[k - W] for g in groups]

    def _get_closed_form_lr(self) -> List[float]:
        k, W = self.last_epoch, self.warmup_epochs
        if k < W:
            return [self.warmup_start_lr + k * (base - self.warmup_start_lr) / (W - 1)
                    for base in self.base_lrs]
        milestones = sorted(self.milestones.elements())
        return [base * self.gamma ** bisect_right(milestones, k - W) for base in self.base_lrs]


def make_scheduler(optimizer: torch.optim.Optimizer, optimizer_config: Mapping,
                   num_iters_per_epoch: int, last_epoch: int = -1) -> LRScheduler:
    """Builds the per-iteration schedule of the ``opt`` config section.

    Args:
        optimizer: the optimizer of :func:`libs.engine.optim.make_optimizer`.
        optimizer_config: ``cfg['opt']`` (``warmup``, ``warmup_epochs``, ``epochs``,
            ``schedule_type``, ``schedule_steps``, ``schedule_gamma``).
        num_iters_per_epoch: iterations per epoch (``len(train_loader)``).
        last_epoch: scheduler position to start from (-1: fresh).

    Raises:
        TypeError: unknown ``schedule_type`` (the original's message).
    """
    iters = num_iters_per_epoch
    kind = optimizer_config["schedule_type"]
    total_steps = (optimizer_config["epochs"] + optimizer_config["warmup_epochs"]) * iters
    milestones = [iters * step for step in optimizer_config["schedule_steps"]]
    if optimizer_config["warmup"]:
        warmup_steps = optimizer_config["warmup_epochs"] * iters
        if kind == "cosine":
            return LinearWarmupCosineAnnealingLR(optimizer, warmup_steps, total_steps,
                                                 last_epoch=last_epoch)
        if kind == "multistep":
            return LinearWarmupMultiStepLR(optimizer, warmup_steps, milestones,
                                           gamma=optimizer_config["schedule_gamma"],
                                           last_epoch=last_epoch)
        raise TypeError("Unsupported scheduler!")
    if kind == "cosine":
        return CosineAnnealingLR(optimizer, optimizer_config["epochs"] * iters,
                                 last_epoch=last_epoch)
    if kind == "multistep":
        # the original referenced an undefined name here (NameError, docs/reference.md §9 item 16)
        return MultiStepLR(optimizer, milestones=milestones,
                           gamma=optimizer_config["schedule_gamma"], last_epoch=last_epoch)
    raise TypeError("Unsupported scheduler!")
