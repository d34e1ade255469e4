"""TorchScript-compiled focal and DIoU losses, operator for operator as the original's
``@torch.jit.script`` functions (docs/reference.md §4.3); used by the faithful procedure.

Why: TorchScript's executor runs the first call like eager PyTorch and later calls through a
compiled graph whose backward uses its own gradient formulas (e.g. ``pow``'s), which round
differently from eager autograd (~6e-8 on the logits' gradient). Reproducing the original's
training bit for bit therefore needs these scripted functions, written with the same
operators in the same order. Compiled on first use, once per process (as the original's
module-level functions); this module has no ``from __future__ import annotations`` because
TorchScript reads the annotations.
"""
import warnings
from typing import Callable, Optional, Tuple

import torch
from torch.nn import functional as F

__all__ = ["scripted_losses"]


def _focal(inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
           gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    inputs = inputs.float()
    targets = targets.float()
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


def _diou(input_offsets: torch.Tensor, target_offsets: torch.Tensor,
          reduction: str = "none", eps: float = 1e-8) -> torch.Tensor:
    input_offsets = input_offsets.float()
    target_offsets = target_offsets.float()
    assert (input_offsets >= 0.0).all(), "predicted offsets must be non-negative"
    assert (target_offsets >= 0.0).all(), "GT offsets must be non-negative"
    lp, rp = input_offsets[:, 0], input_offsets[:, 1]
    lg, rg = target_offsets[:, 0], target_offsets[:, 1]
    lkis = torch.min(lp, lg)
    rkis = torch.min(rp, rg)
    intsctk = rkis + lkis
    unionk = (lp + rp) + (lg + rg) - intsctk
    iouk = intsctk / unionk.clamp(min=eps)
    lc = torch.max(lp, lg)
    rc = torch.max(rp, rg)
    len_c = lc + rc
    rho = 0.5 * (rp - lp - rg + lg)
    loss = 1.0 - iouk + torch.square(rho / len_c.clamp(min=eps))
    if reduction == "mean":
        loss = loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


_COMPILED: Optional[Tuple[Callable, Callable]] = None


def scripted_losses() -> Tuple[Callable, Callable]:
    """(sigmoid_focal_loss, ctr_diou_loss_1d) compiled with ``torch.jit.script``."""
    global _COMPILED
    if _COMPILED is None:
        with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            _COMPILED = (torch.jit.script(_focal), torch.jit.script(_diou))
    return _COMPILED
