"""Loss functions: sigmoid focal loss and the centre-DIoU loss in 1-D (docs/reference.md
§4.3).

Mirrors the original's ``libs/modeling/losses.py`` (which adapts fvcore's focal loss).
Differences: plain Python functions instead of TorchScript (same arithmetic); the original's
``ctr_giou_loss_1d`` is left out, since nothing in the original calls it.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["sigmoid_focal_loss", "ctr_diou_loss_1d"]


def _reduce(loss: torch.Tensor, reduction: str, empty_mean_zero: bool = True) -> torch.Tensor:
    if reduction == "mean":
        if empty_mean_zero and loss.numel() == 0:
            return 0.0 * loss.sum()
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction '{reduction}'; expected 'none', 'mean' or 'sum'")


def sigmoid_focal_loss(inputs: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = "none") -> torch.Tensor:
    """Focal loss of RetinaNet on logits, computed in float32 (soft targets allowed).

    Args:
        inputs: logits of any shape.
        targets: same shape, in [0, 1].
        alpha: weight of positives (alpha y + (1 - alpha)(1 - y)); < 0 disables it.
        gamma: focusing exponent on (1 - p_t).
        reduction: 'none' | 'mean' | 'sum'.
    """
    inputs = inputs.float()
    targets = targets.float()
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    # as fvcore/the original: a plain mean (NaN on empty input)
    return _reduce(loss, reduction, empty_mean_zero=False)


def _iou_terms(input_offsets: torch.Tensor, target_offsets: torch.Tensor, eps: float):
    input_offsets = input_offsets.float()
    target_offsets = target_offsets.float()
    # distances from a common centre point are non-negative by construction. NaN (a
    # diverging run) is let through: the loss becomes NaN and the training loop's
    # non-finite-loss guard stops with the epoch, iteration and videos (one host read, as
    # the original's assert)
    if bool((input_offsets < 0.0).any() | (target_offsets < 0.0).any()):
        raise ValueError("predicted and target offsets must be non-negative (found negative "
                         "values)")
    lp, rp = input_offsets[:, 0], input_offsets[:, 1]
    lg, rg = target_offsets[:, 0], target_offsets[:, 1]
    intersection = torch.min(lp, lg) + torch.min(rp, rg)
    union = (lp + rp) + (lg + rg) - intersection
    iou = intersection / union.clamp(min=eps)
    return lp, rp, lg, rg, iou


def ctr_diou_loss_1d(input_offsets: torch.Tensor, target_offsets: torch.Tensor,
                     reduction: str = "none", eps: float = 1e-8) -> torch.Tensor:
    """Distance-IoU loss of two segments sharing a centre point.

    With prediction (lp, rp) and target (lg, rg):
    ``I = min(lp, lg) + min(rp, rg)``, ``U = lp + rp + lg + rg - I``,
    ``Lc = max(lp, lg) + max(rp, rg)`` (enclosing length), ``rho = (rp - lp - rg + lg) / 2``
    (distance between the two segment centres), ``loss = 1 - I / U + (rho / Lc)^2``.

    Args:
        input_offsets, target_offsets: (N, 2) non-negative, float32.
        reduction: 'none' | 'mean' (0 * sum when empty) | 'sum'.
        eps: floor of U and Lc.
    """
    lp, rp, lg, rg, iou = _iou_terms(input_offsets, target_offsets, eps)
    len_c = torch.max(lp, lg) + torch.max(rp, rg)
    rho = 0.5 * (rp - lp - rg + lg)
    loss = 1.0 - iou + torch.square(rho / len_c.clamp(min=eps))
    return _reduce(loss, reduction)
