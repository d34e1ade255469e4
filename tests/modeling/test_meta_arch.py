"""Model-level behaviour on a tiny model: training steps on CPU for several batch sizes and
lengths, gradients reach every parameter, padding rules, registry and config errors."""
from __future__ import annotations

import copy

import pytest
import torch

from libs.modeling import AffineDropPath, make_meta_arch
from libs.modeling.meta_archs import batch_videos

K = 3

MODEL_KW = dict(
    backbone_type="convTransformer", fpn_type="identity", backbone_arch=(2, 2, 3),
    scale_factor=2, input_dim=6, max_seq_len=32, max_buffer_len_factor=4.0, n_head=2,
    n_mha_win_size=5, embd_kernel_size=3, embd_dim=8, embd_with_ln=True, fpn_dim=8,
    fpn_with_ln=True, fpn_start_level=0, head_dim=8,
    regression_range=[(0, 4), (4, 8), (8, 16), (16, 10000)], head_num_layers=3,
    head_kernel_size=3, head_with_ln=True, use_abs_pe=False, use_rel_pe=False,
    num_classes=K,
    train_cfg=dict(center_sample="radius", center_sample_radius=1.5, loss_weight=1.0,
                   cls_prior_prob=0.01, init_loss_norm=100, dropout=0.0, droppath=0.1,
                   label_smoothing=0.0, head_empty_cls=[], clip_grad_l2norm=1.0),
    test_cfg=dict(pre_nms_thresh=0.001, pre_nms_topk=100, iou_threshold=0.1, min_score=0.001,
                  max_seg_num=10, nms_method="soft", duration_thresh=0.05,
                  multiclass_nms=True, nms_sigma=0.5, voting_thresh=0.75,
                  ext_score_file=None))


def build(**overrides):
    kw = copy.deepcopy(MODEL_KW)
    kw.update(overrides)
    return make_meta_arch("LocPointTransformer", **kw)


def video(T, segments, labels, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"video_id": f"v{T}", "feats": torch.randn(6, T, generator=g),
            "segments": torch.tensor(segments, dtype=torch.float32).view(-1, 2),
            "labels": torch.tensor(labels, dtype=torch.long), "fps": 30.0, "duration": T / 7.5,
            "feat_stride": 4, "feat_num_frames": 16}


# the [0, 32] action gives positives on the coarsest level (max distance 16 at t = 16)
VIDEOS = [video(32, [[2.0, 9.0], [12.0, 30.0], [0.0, 32.0]], [0, 2, 1], 1),
          video(17, [[3.0, 6.0]], [1], 2), video(25, [], [], 3)]


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_training_forward_works_for_batch_sizes_and_mixed_lengths(batch):
    torch.manual_seed(0)
    model = build()
    model.train()
    losses = model(VIDEOS[:batch])
    assert list(losses) == ["cls_loss", "reg_loss", "final_loss"]
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.loss_normalizer != 100  # the EMA moved before use


@pytest.mark.parametrize("backbone_type,fpn_type,use_rel_pe", [
    ("convTransformer", "identity", False), ("convTransformer", "fpn", True),
    ("conv", "fpn", False)])
def test_every_parameter_receives_a_finite_gradient(backbone_type, fpn_type, use_rel_pe):
    torch.manual_seed(0)
    model = build(backbone_type=backbone_type, fpn_type=fpn_type, use_rel_pe=use_rel_pe,
                  use_abs_pe=True)
    for m in model.modules():
        if isinstance(m, AffineDropPath):
            m.drop_prob = 0.0  # deterministic: no branch is dropped
    with torch.no_grad():  # positive offsets so that the output ReLU passes gradients
        model.reg_head.offset_head.conv.bias.fill_(2.0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = model(VIDEOS[:2])
    losses["final_loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_padding_rules_for_training_and_inference():
    feats = [torch.ones(2, 5), torch.ones(2, 3)]
    x, m = batch_videos(feats, 16, 8, training=True)
    assert x.shape == (2, 2, 16) and m.shape == (2, 1, 16)
    assert m.sum(-1).flatten().tolist() == [5, 3] and x[1, :, 3:].abs().sum() == 0
    x, m = batch_videos([torch.ones(2, 10)], 16, 8, training=False)
    assert x.shape == (1, 2, 16)
    x, m = batch_videos([torch.ones(2, 17)], 16, 8, training=False)
    assert x.shape == (1, 2, 24) and m.sum() == 17  # next multiple of max_div_factor
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        batch_videos([torch.ones(2, 17)], 16, 8, training=True)
    with pytest.raises(ValueError, match="one video"):
        batch_videos(feats, 16, 8, training=False)


def test_max_div_factor_and_derived_attributes():
    model = build()
    assert model.fpn_strides == [1, 2, 4, 8]
    assert model.mha_win_size == [5] * 4
    assert model.max_div_factor == 8 * 2 * 2
    assert model.device == torch.device("cpu")


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="divisible"):
        build(max_seq_len=36)
    with pytest.raises(ValueError, match="regression_range"):
        build(regression_range=[(0, 4)])
    with pytest.raises(ValueError, match="nms_method"):
        build(test_cfg={**MODEL_KW["test_cfg"], "nms_method": "fancy"})
    with pytest.raises(KeyError, match="LocPointTransformer"):
        make_meta_arch("NoSuchModel", **MODEL_KW)
    bad_train = {k: v for k, v in MODEL_KW["train_cfg"].items() if k != "loss_weight"}
    with pytest.raises(KeyError, match="loss_weight"):
        build(train_cfg=bad_train)


def test_empty_class_bias_and_prior():
    model = build(train_cfg={**MODEL_KW["train_cfg"], "head_empty_cls": [1]})
    bias = model.cls_head.cls_head.conv.bias
    torch.testing.assert_close(bias[0], torch.tensor(-4.59511985013459))
    torch.testing.assert_close(bias[1], torch.tensor(-13.815509557963773))
