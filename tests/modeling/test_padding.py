"""The minimal padding rule (libs/modeling/padding.py) gives the original's numbers.

Oracles: hand-worked padded lengths; the same model run under the original rule (docs/reference.md
§3.10 ``preprocessing``), compared with the conformance tolerances (tests/assets/conformance
README): same detection count, every detection matched with the same label, segment within
1e-3 s and score within 1e-4; pre-NMS candidates as a multiset; training losses and gradients
within 1e-5 relative.
"""
from __future__ import annotations

import copy

import pytest
import torch

from libs.modeling import AffineDropPath, LayerNorm, Scale, make_meta_arch
from libs.modeling.decoding import inference_single_video
from libs.modeling.padding import (level_valid_lengths, minimal_padded_length,
                                   original_padded_length)
from tests._matching import assert_same_multiset, count_unmatched

DET_SEG_SEC, DET_SCORE = 1e-3, 1e-4
PRE_SCORE, PRE_SEG = 1e-5, 1e-3


# ------------------------------------------------------------------------- pure rules
def test_level_valid_lengths_follow_ceil_halving():
    assert level_valid_lengths(173, 6, 2) == [173, 87, 44, 22, 11, 6]
    assert level_valid_lengths(2300, 6, 2) == [2300, 1150, 575, 288, 144, 72]


def test_original_rule():
    assert original_padded_length(10, 256, 256, training=True) == 256
    assert original_padded_length(256, 256, 256, training=False) == 256
    assert original_padded_length(257, 256, 256, training=False) == 512
    assert original_padded_length(2305, 2304, 576, training=False) == 2880


@pytest.mark.parametrize("length,original,divisor,want", [
    (173, 256, 32, 224),     # 192 / 32 = 6 is not > ceil(173 / 32) = 6; 224 / 32 = 7 is
    (2000, 2304, 32, 2048),  # stride-32 level: 64 > 63
    (2000, 2304, 576, 2304),
    (2300, 2304, 32, 2304),  # no padding at the stride-32 level (72 * 32 = 2304)
    (2304, 2304, 32, 2304),  # no padding at all
    (1, 256, 32, 64),        # every level keeps one padded step: 64 / 32 = 2 > 1
    (300, 512, 32, 352),     # 320 / 32 = 10 = ceil(300 / 32): one more block
    (2273, 2304, 32, 2304),  # 2304 / 32 = 72 = ceil(2273 / 32): no padding at level 5
])
def test_minimal_rule_hand_worked(length, original, divisor, want):
    assert minimal_padded_length([length], original, 6, 2, divisor) == want


def test_minimal_rule_takes_the_batch_into_account():
    # 2,000 alone needs 2,048; a full-length companion forces the original length
    assert minimal_padded_length([2000, 100], 2304, 6, 2, 32) == 2048
    assert minimal_padded_length([2000, 2290], 2304, 6, 2, 32) == 2304
    with pytest.raises(ValueError, match="longer than"):
        minimal_padded_length([300], 256, 6, 2, 32)


# ------------------------------------------------------------------------- models
def _perturb(model: torch.nn.Module, seed: int) -> None:
    """Random weights far from the near-identity init (as the conformance 'perturbed')."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (AffineDropPath, Scale)):
                module.scale.uniform_(0.5, 1.5, generator=g)
            elif isinstance(module, LayerNorm):
                module.weight.add_(0.2 * torch.randn(module.weight.shape, generator=g))
                module.bias.add_(0.3 * torch.randn(module.bias.shape, generator=g))
        for name, p in model.named_parameters():
            if name.endswith("conv.bias") or name.endswith(".bias") and p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        head = model.cls_head.cls_head.conv
        head.weight.mul_(4.0)
        model.reg_head.offset_head.conv.bias.uniform_(1.0, 3.0, generator=g)


@pytest.fixture(scope="module")
def tiny_thumos(conformance_dir):
    """The conformance tiny THUMOS model with the perturbed checkpoint (max_seq_len 256)."""
    expected = torch.load(conformance_dir / "tiny_expected.pt")
    ckpt = torch.load(conformance_dir / "tiny_thumos_perturbed" / "epoch_000.pth.tar")
    cfg = expected["config"]
    model = make_meta_arch(cfg["model_name"], **copy.deepcopy(cfg["model"]))
    model.load_state_dict({k[len("module."):]: v for k, v in ckpt["state_dict_ema"].items()})
    return model.eval()


ANET_LIKE = dict(
    backbone_type="convTransformer", fpn_type="identity", backbone_arch=(2, 2, 5),
    scale_factor=2, input_dim=16, max_seq_len=192, max_buffer_len_factor=4.0, n_head=4,
    n_mha_win_size=[7, 7, 7, 7, 7, -1], embd_kernel_size=3, embd_dim=16, embd_with_ln=True,
    fpn_dim=16, fpn_with_ln=True, fpn_start_level=0, head_dim=16,
    regression_range=[(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)],
    head_num_layers=3, head_kernel_size=3, head_with_ln=True, use_abs_pe=True,
    use_rel_pe=False, num_classes=4,
    train_cfg=dict(center_sample="radius", center_sample_radius=1.5, loss_weight=1.0,
                   cls_prior_prob=0.01, init_loss_norm=100, dropout=0.0, droppath=0.1,
                   label_smoothing=0.1, head_empty_cls=[]),
    test_cfg=dict(pre_nms_thresh=0.001, pre_nms_topk=40, iou_threshold=0.1, min_score=0.001,
                  max_seg_num=30, nms_method="soft", duration_thresh=0.05,
                  multiclass_nms=True, nms_sigma=0.5, voting_thresh=0.7))


def anet_like(**overrides):
    kw = copy.deepcopy(ANET_LIKE)
    kw.update(overrides)
    torch.manual_seed(0)
    model = make_meta_arch("LocPointTransformer", **kw)
    _perturb(model, seed=1)
    return model


def make_item(T: int, C: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return {"video_id": f"v{T}", "feats": torch.randn(C, T, generator=g), "fps": 30.0,
            "duration": T * 4 / 30.0 + 0.5, "feat_stride": 4, "feat_num_frames": 16}


def _candidates(model, item, padding):
    out = model.forward_features([item], padding=padding)
    s = model.test_settings
    return inference_single_video(
        out["points"], [m[0] for m in out["fpn_masks"]], [c[0] for c in out["cls_logits"]],
        [o[0] for o in out["offsets"]], s.pre_nms_thresh, s.pre_nms_topk, s.duration_thresh)


def _unmatched(got, want, seg_tol=DET_SEG_SEC, score_tol=DET_SCORE):
    return count_unmatched(got, want, seg_tol, score_tol)


def _same_multiset(got, want):
    assert_same_multiset(got, want, PRE_SEG, PRE_SCORE)


def check_same_results(model, item):
    """Minimal vs original on one video: pre-NMS multiset and final detections."""
    with torch.no_grad():
        pre = [_candidates(model, item, p) for p in ("minimal", "original")]
        _same_multiset(pre[0], pre[1])
        dets = []
        for padding in ("minimal", "original"):
            model.padding = padding
            dets.append(model([item])[0])
        model.padding = "minimal"
    assert dets[0]["segments"].shape == dets[1]["segments"].shape
    assert _unmatched(dets[0], dets[1]) == 0


# 1 ... 3 x max_seq_len: exact multiples of the stride-32 factor, of max_div_factor (256)
# and of max_seq_len, their neighbours, the conformance lengths and a few others
TINY_LENGTHS = [1, 2, 31, 32, 33, 63, 96, 127, 128, 129, 173, 191, 192, 193, 200, 223, 224,
                225, 240, 255, 256, 257, 288, 300, 353, 416, 480, 511, 512, 513, 545, 640,
                700, 736, 767, 768]


def test_tiny_thumos_minimal_padding_same_detections(tiny_thumos):
    model = tiny_thumos
    model.padding = "minimal"
    shorter = 0
    for T in TINY_LENGTHS:
        item = make_item(T, 32, seed=T)
        original = model.padded_length([T], "original")
        minimal = model.padded_length([T], "minimal")
        assert minimal <= original and minimal % 32 == 0 and minimal > T - 1
        shorter += minimal < original
        check_same_results(model, item)
    assert shorter >= len(TINY_LENGTHS) // 2  # the rule really pads less


def test_tiny_thumos_lengths_without_padding_keep_the_original(tiny_thumos):
    # levels that have no padding in the original must have none in the new layout
    for T in (256, 250, 225, 512, 481, 768):
        assert tiny_thumos.padded_length([T], "minimal") == \
            tiny_thumos.padded_length([T], "original")


ANET_LENGTHS = [1, 5, 31, 32, 33, 95, 96, 97, 150, 160, 161, 180, 191, 192, 193, 250, 288,
                384, 385, 500, 576]


def test_anet_like_abs_pe_and_global_level_same_detections():
    model = anet_like().eval()
    for T in ANET_LENGTHS:
        if T > model.max_seq_len:
            # abs PE is stretched to the padded length: those keep the original length
            assert model.padded_length([T], "minimal") == model.padded_length([T], "original")
        check_same_results(model, make_item(T, 16, seed=T))


def test_conv_backbone_and_fpn_neck_same_detections():
    model = anet_like(backbone_type="conv", fpn_type="fpn", use_abs_pe=False).eval()
    for T in (7, 64, 100, 191, 300, 500):
        check_same_results(model, make_item(T, 16, seed=T))


def test_cases_where_minimal_is_not_exact_keep_the_original():
    model = anet_like(test_cfg={**ANET_LIKE["test_cfg"], "pre_nms_thresh": -1.0}).eval()
    assert model.padded_length([50], "minimal") == 192    # padded points would be kept
    model = anet_like(train_cfg={**ANET_LIKE["train_cfg"], "dropout": 0.1}).train()
    assert model.padded_length([50, 20], "minimal") == 192  # dropout draws per position
    model = anet_like().train()
    # stride-32 level: ceil(20 / 32) = 1 valid step, 2 needed -> 64
    assert model.padded_length([20, 10], "minimal") == 64


def test_divisor_is_the_largest_stride():
    # the windows do not enter: the attention skips the original's T % 2w check when padding
    # minimally, so only the strided convs constrain the length (6 levels, 2^5 = 32)
    assert anet_like()._padding_divisor() == 32


def test_padding_switch_and_errors():
    model = anet_like(test_cfg={**ANET_LIKE["test_cfg"], "padding": "original"})
    assert model.padding == "original"
    model.padding = "minimal"
    assert anet_like().padding == "minimal"  # default at inference
    assert anet_like().train_padding == "minimal"  # default in training
    train_original = anet_like(train_cfg={**ANET_LIKE["train_cfg"], "padding": "original"})
    assert train_original.train_padding == "original"
    with pytest.raises(ValueError, match="padding"):
        model.padding = "tight"
    with pytest.raises(ValueError, match="padding"):
        anet_like(test_cfg={**ANET_LIKE["test_cfg"], "padding": 3})


# ------------------------------------------------------------------------- training
def _train_video(T, seed, K):
    g = torch.Generator().manual_seed(seed)
    starts = torch.rand(4, generator=g) * max(T - 20, 1)
    segs = torch.stack([starts, starts + 4 + torch.rand(4, generator=g) * 40], dim=1)
    return {**make_item(T, 32, seed), "segments": segs,
            "labels": torch.randint(0, K, (4,), generator=g)}


def _loss_and_grads(model, batch, padding, seed):
    model.train_padding = padding  # training uses its own switch (default 'original')
    model.loss_normalizer = 100.0
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    losses = model(batch)
    losses["final_loss"].backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return losses, grads, model.loss_normalizer, torch.rand(3)


@pytest.mark.parametrize("lengths,shorter", [
    ((173, 90), True), ((256, 40), False), ((120, 255, 7), False), ((150, 1), True),
    ((200, 30), False)])  # 200: the stride-32 level needs 8 steps, i.e. 256
def test_training_minimal_padding_same_losses_and_gradients(tiny_thumos, lengths, shorter):
    model = copy.deepcopy(tiny_thumos).train()  # drop path active (p = 0.1)
    batch = [_train_video(T, i, 5) for i, T in enumerate(lengths)]
    assert (model.padded_length(lengths, "minimal") < 256) == shorter
    got = _loss_and_grads(model, batch, "minimal", seed=7)
    want = _loss_and_grads(model, batch, "original", seed=7)
    for key in ("cls_loss", "reg_loss", "final_loss"):
        torch.testing.assert_close(got[0][key], want[0][key], rtol=1e-5, atol=1e-7)
    assert got[1].keys() == want[1].keys()
    for name in want[1]:
        g, w = got[1][name], want[1][name]
        # relative to the largest entry; 1e-8 absolute for gradients that are ~0 anyway
        assert (g - w).abs().max() <= 1e-5 * w.abs().max() + 1e-8, name
    assert got[2] == want[2]              # loss normaliser: same positive count
    assert torch.equal(got[3], want[3])   # same random-number consumption (drop path)
