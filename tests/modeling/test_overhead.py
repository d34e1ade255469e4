"""Per-step overhead changes keep the numbers: the loss-normaliser EMA kept on the device,
the branch-free regression loss, the adaptive loss weight without ``.item()``, bf16 switch.

Oracles: the original's Python-float formulas (docs/reference.md §4.2), hand-worked values
(100 -> 92.5 with 25 positives), and a training step that never calls ``Tensor.item``.
"""
from __future__ import annotations

import copy

import pytest
import torch

from tests.modeling.test_meta_arch import VIDEOS, build


def _python_ema(values, start=100.0):
    norm = start
    for n in values:
        norm = 0.9 * norm + (1 - 0.9) * max(n, 1)  # the original's float arithmetic
    return norm


def test_loss_normalizer_ema_is_bitwise_the_python_float_formula():
    model = build()
    counts = [25, 0, 3, 1000, 7, 0, 0, 41]
    for n in counts:
        model._update_loss_normalizer(torch.tensor(n))
    assert model.loss_normalizer == _python_ema(counts)  # exact
    assert isinstance(model.loss_normalizer, float)
    model = build()
    model._update_loss_normalizer(torch.tensor(25))
    assert model.loss_normalizer == 92.5


def test_loss_normalizer_reads_and_writes_as_a_float():
    model = build()
    model.loss_normalizer = 42  # the engine restores it like this from a checkpoint
    assert model.loss_normalizer == 42.0 and isinstance(model.loss_normalizer, float)
    model._update_loss_normalizer(torch.tensor(10))
    assert float(model.loss_normalizer) == _python_ema([10], start=42.0)
    clone = copy.deepcopy(model)  # ModelEma deep-copies the model
    assert clone.loss_normalizer == model.loss_normalizer
    assert "loss_normalizer" not in dict(model.state_dict())


def test_ddp_reducer_receives_the_count_and_scales_the_update():
    model = build()
    seen = []

    def reducer(count):
        seen.append(count)
        return count * 4  # as if 4 processes had the same count

    model.num_pos_reducer = reducer
    model._update_loss_normalizer(torch.tensor(5))
    assert seen == [5] and model.loss_normalizer == _python_ema([20])


@pytest.mark.parametrize("loss_weight", [1.0, -1.0])
def test_training_step_has_no_item_call_and_matches_the_float_formulas(monkeypatch,
                                                                       loss_weight):
    torch.manual_seed(0)
    model = build(train_cfg={**build().train_settings.__dict__,
                             "head_empty_cls": [], "loss_weight": loss_weight}).train()

    def no_item(self):
        raise AssertionError("Tensor.item() called in the training step")

    torch.manual_seed(3)
    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "item", no_item)
        losses = model(VIDEOS[:2])
        losses["final_loss"].backward()
    # the same step with the original's float formulas, recomputed from its parts
    cls_loss, reg_loss = losses["cls_loss"].detach(), losses["reg_loss"].detach()
    if loss_weight > 0:
        want = cls_loss + reg_loss * loss_weight
    else:
        want = cls_loss + reg_loss * (cls_loss / max(reg_loss.item(), 0.01))
    assert torch.equal(losses["final_loss"].detach(), want)
    assert losses["cls_loss"].dtype == torch.float32


def test_no_positives_gives_a_zero_regression_loss_with_gradient_path():
    torch.manual_seed(0)
    model = build().train()
    empty = [dict(VIDEOS[2]), dict(VIDEOS[2])]  # videos without ground truth
    losses = model(empty)
    assert losses["reg_loss"].item() == 0.0 and not torch.signbit(losses["reg_loss"])
    losses["final_loss"].backward()  # still differentiable, like 0 * sum(offsets[pos])
    assert model.loss_normalizer == _python_ema([0])


def test_bf16_inference_is_opt_in_and_close():
    torch.manual_seed(0)
    model = build().eval()
    assert model.bf16_inference is False
    item = VIDEOS[0]
    with torch.no_grad():
        ref = model.forward_features([item])
        model.bf16_inference = True
        dets = model([item])[0]
    assert dets["scores"].dtype == torch.float32 and dets["segments"].dtype == torch.float32
    assert dets["segments"].shape[0] > 0
    assert all(x.dtype == torch.float32 for x in ref["cls_logits"])
