"""Decoding of head outputs into segments, and grid -> seconds (docs/reference.md §5.1, §5.2)."""
from __future__ import annotations

import math

import torch

from libs.modeling.decoding import (inference_single_video, postprocess_video,
                                    segments_grid_to_seconds)

NEG = -30.0  # logit whose sigmoid is far below pre_nms_thresh


def logit(p):
    return math.log(p / (1 - p))


def test_decoding_hand_case():
    # one level, stride 2: points t = 0, 2, 4, 6; K = 2
    points = [torch.tensor([[0, 0, 4, 2], [2, 0, 4, 2], [4, 0, 4, 2], [6, 0, 4, 2]],
                           dtype=torch.float32)]
    logits = torch.full((4, 2), NEG)
    logits[1, 1] = 0.0            # p = 0.5 -> segment [2 - 1*2, 2 + 2*2] = [0, 6]
    logits[2, 0] = logit(0.9)     # zero offsets -> duration 0, dropped
    logits[3, 0] = logit(0.8)     # masked point, dropped
    offsets = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0], [0.5, 0.5]])
    mask = torch.tensor([True, True, True, False])
    out = inference_single_video(points, [mask], [logits], [offsets], 0.001, 100, 0.05)
    assert out["segments"].tolist() == [[0.0, 6.0]]
    torch.testing.assert_close(out["scores"], torch.tensor([0.5]))
    assert out["labels"].tolist() == [1]


def test_top_k_and_threshold_are_per_level():
    pts0 = torch.tensor([[0, 0, 4, 1], [1, 0, 4, 1], [2, 0, 4, 1]], dtype=torch.float32)
    pts1 = torch.tensor([[0, 4, 8, 2], [2, 4, 8, 2]], dtype=torch.float32)
    logits0 = torch.tensor([[logit(0.3)], [logit(0.6)], [logit(0.4)]])
    logits1 = torch.tensor([[logit(0.2)], [logit(0.0005)]])
    offsets0 = torch.ones(3, 2)
    offsets1 = torch.ones(2, 2)
    masks = [torch.ones(3, dtype=torch.bool), torch.ones(2, dtype=torch.bool)]
    out = inference_single_video([pts0, pts1], masks, [logits0, logits1],
                                 [offsets0, offsets1], 0.001, 2, 0.05)
    # level 0 keeps its 2 best (0.6 at t=1, 0.4 at t=2); level 1 keeps 0.2 (0.0005 < thresh)
    torch.testing.assert_close(out["scores"], torch.tensor([0.6, 0.4, 0.2]))
    assert out["segments"].tolist() == [[0.0, 2.0], [1.0, 3.0], [-2.0, 2.0]]


def test_grid_to_seconds_clamps_with_negative_zero_and_duration_cap():
    segs = torch.tensor([[-3.0, 10.0], [100.0, 200.0]])
    # (g * 4 + 8) / 30: -3 -> -0.133 -> -0.0; 10 -> 1.6; 100 -> 13.6; 200 -> 26.93 -> 20
    sec = segments_grid_to_seconds(segs, 4, 16, 30.0, 20.0)
    torch.testing.assert_close(sec, torch.tensor([[0.0, 1.6], [13.6, 20.0]]))
    assert torch.signbit(sec[0, 0]).item()  # the original multiplies by 0.0: -0.0


def test_postprocess_without_nms_keeps_order_and_converts():
    result = {"video_id": "v", "fps": 30.0, "duration": 20.0, "feat_stride": 4,
              "feat_num_frames": 16, "segments": torch.tensor([[10.0, 100.0], [-3.0, 10.0]]),
              "scores": torch.tensor([0.2, 0.9]), "labels": torch.tensor([1, 0])}
    out = postprocess_video(result, "none", 0.1, 0.001, 1, True, 0.5, 0.7)
    assert out["video_id"] == "v"
    torch.testing.assert_close(out["segments"], torch.tensor([[1.6, 13.6], [0.0, 1.6]]))
    assert out["scores"].tolist() == result["scores"].tolist()
    assert out["labels"].tolist() == [1, 0]
