"""The training losses of the model: the EMA loss normaliser and focal + DIoU over the points
(docs/reference.md §4.2, §4.3)."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Union

import torch

from .losses import ctr_diou_loss_1d, sigmoid_focal_loss
from .scripted_losses import scripted_losses

__all__ = ["updated_loss_normalizer", "point_losses"]

Normalizer = Union[float, torch.Tensor]


def updated_loss_normalizer(previous: Normalizer, num_pos: torch.Tensor, momentum: float,
                            reducer: Optional[Callable[[float], float]],
                            float_path: bool) -> Normalizer:
    """``norm <- m * norm + (1 - m) * max(num_pos, 1)`` (docs/reference.md §4.2 step 2).

    With a ``reducer`` (DDP sums Python numbers over processes), on MPS (no float64) or with
    ``float_path`` (the faithful procedure reads the count back as the original) the count is
    read to the host and the result is a float; otherwise it stays on the device as a float64
    0-d tensor (the original's float64 operations in the same order), without a host sync.
    """
    if reducer is not None or num_pos.device.type == "mps" or float_path:
        count = int(num_pos.item())
        norm_pos = count if reducer is None else reducer(count)
        previous = float(previous.item()) if torch.is_tensor(previous) else previous
        return momentum * previous + (1 - momentum) * max(norm_pos, 1)
    if not torch.is_tensor(previous):
        previous = torch.tensor(previous, dtype=torch.float64, device=num_pos.device)
    return previous * momentum + num_pos.clamp(min=1).to(torch.float64) * (1 - momentum)


def point_losses(cls_logits: torch.Tensor, gt_cls: torch.Tensor, pred_offsets: torch.Tensor,
                 gt_offsets: torch.Tensor, normalizer: Normalizer, num_classes: int,
                 label_smoothing: float, loss_weight: float,
                 scripted: bool) -> Dict[str, torch.Tensor]:
    """Focal loss of the valid points and DIoU loss of the positives, each / ``normalizer``.

    Args:
        cls_logits: (N, K) logits of the valid points; gt_cls: (N, K) their targets.
        pred_offsets, gt_offsets: (P, 2) offsets of the positive points.
        normalizer: the updated loss normaliser (float, or float64 0-d tensor).
        num_classes: K (label smoothing spreads over K + 1 classes, as the original, §9 item 13).
        label_smoothing, loss_weight: ``train_cfg`` values (loss_weight <= 0: cls / max(reg, .01)).
        scripted: the faithful procedure's TorchScript losses and its no-positive branch.
    """
    if torch.is_tensor(normalizer):
        # a Python float divisor acts as its float32 value: the same here (0-d tensors
        # would otherwise promote the losses to float64)
        normalizer = normalizer.to(torch.float32)
    gt_target = gt_cls * (1 - label_smoothing)
    gt_target = gt_target + label_smoothing / (num_classes + 1)
    focal_loss, diou_loss = (scripted_losses() if scripted
                             else (sigmoid_focal_loss, ctr_diou_loss_1d))
    cls_loss = focal_loss(cls_logits, gt_target, reduction="sum")
    cls_loss = cls_loss / normalizer

    # without positives the sum is over nothing: 0 / normalizer = 0, the original's
    # 0 * sum(pred_offsets[pos]) (no branch, hence no host sync on the count), except in
    # the faithful procedure, which takes the original's branch
    if scripted and pred_offsets.shape[0] == 0:
        reg_loss = 0 * pred_offsets.sum()  # the original's branch
    else:
        reg_loss = diou_loss(pred_offsets, gt_offsets, reduction="sum")
        reg_loss = reg_loss / normalizer

    if not loss_weight > 0:
        # = cls / max(reg, 0.01): clamp compares in float32 exactly like max() on the
        # float32 value, and the divisor is float32 either way
        loss_weight = cls_loss.detach() / torch.clamp(reg_loss.detach(), min=0.01)
    final_loss = cls_loss + reg_loss * loss_weight
    return {"cls_loss": cls_loss, "reg_loss": reg_loss, "final_loss": final_loss}
