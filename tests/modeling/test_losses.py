"""Focal loss and 1-D DIoU loss (docs/reference.md §4.3)."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from libs.modeling.losses import ctr_diou_loss_1d, sigmoid_focal_loss


def test_focal_loss_with_gamma_zero_and_no_alpha_equals_bce():
    torch.manual_seed(0)
    logits = torch.randn(50, 4) * 3
    targets = torch.rand(50, 4)  # soft targets are allowed
    expected = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0.0),
                               expected)
    torch.testing.assert_close(
        sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0.0, reduction="sum"),
        expected.sum())


def test_focal_loss_alpha_and_gamma_weighting_by_hand():
    # x = 0 -> p = 0.5, ce = log 2; y = 1: p_t = 0.5, (1 - p_t)^2 = 0.25, alpha_t = 0.25
    loss = sigmoid_focal_loss(torch.zeros(2), torch.tensor([1.0, 0.0]))
    log2 = torch.log(torch.tensor(2.0))
    torch.testing.assert_close(loss, torch.stack([log2 * 0.25 * 0.25, log2 * 0.25 * 0.75]))


def test_ctr_diou_loss_hand_worked_cases():
    """(pred (lp, rp), target (lg, rg)) -> loss, with I, U, Lc, rho worked by hand:

    (1, 1) vs (1, 1): I = 2, U = 2, IoU = 1, rho = 0                    -> 0
    (1, 1) vs (2, 2): I = 2, U = 2 + 4 - 2 = 4, IoU = .5, rho = 0        -> 0.5
    (0, 2) vs (2, 0): I = 0, U = 4, IoU = 0, Lc = 4, rho = (2 + 2)/2 = 2 -> 1 + (2/4)^2 = 1.25
    (1, 3) vs (2, 2): I = 1 + 2 = 3, U = 4 + 4 - 3 = 5, IoU = .6, Lc = 2 + 3 = 5,
                      rho = (3 - 1 - 2 + 2)/2 = 1                        -> 0.4 + 0.04 = 0.44
    """
    pred = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0], [1.0, 3.0]])
    target = torch.tensor([[1.0, 1.0], [2.0, 2.0], [2.0, 0.0], [2.0, 2.0]])
    expected = torch.tensor([0.0, 0.5, 1.25, 0.44])
    torch.testing.assert_close(ctr_diou_loss_1d(pred, target), expected)
    torch.testing.assert_close(ctr_diou_loss_1d(pred, target, reduction="sum"),
                               expected.sum())


def test_ctr_diou_loss_empty_mean_is_zero_and_negative_offsets_rejected():
    empty = torch.zeros(0, 2)
    assert ctr_diou_loss_1d(empty, empty, reduction="mean").item() == 0.0
    with pytest.raises(ValueError, match="offsets must be non-negative"):
        ctr_diou_loss_1d(torch.tensor([[-1.0, 1.0]]), torch.tensor([[1.0, 1.0]]))
    with pytest.raises(ValueError, match="offsets must be non-negative"):
        ctr_diou_loss_1d(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, -2.0]]))


def test_ctr_diou_loss_lets_nan_through_for_the_training_guard():
    # a diverging network predicts NaN: the loss is NaN (the training loop's non-finite
    # guard names the step), not an error of its own
    loss = ctr_diou_loss_1d(torch.tensor([[float("nan"), 1.0], [1.0, 1.0]]),
                            torch.tensor([[1.0, 1.0], [1.0, 3.0]]))
    assert torch.isnan(loss[0]) and loss[1].item() == pytest.approx(1 - 2 / 4 + (1 / 4) ** 2)
