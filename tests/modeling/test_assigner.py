"""Label assignment on hand-built cases (docs/reference.md §4.1)."""
from __future__ import annotations

import torch

from libs.modeling.assigner import label_points, label_points_single_video


def level(stride, n, lo, hi):
    t = torch.arange(n, dtype=torch.float32) * stride
    return torch.stack([t, torch.full_like(t, lo), torch.full_like(t, hi),
                        torch.full_like(t, stride)], dim=1)


def assign(points, segs, labels, K=3, mode="none", radius=1.5):
    return label_points_single_video(torch.cat(points), torch.tensor(segs, dtype=torch.float32),
                                     torch.tensor(labels), K, mode, radius)


def test_empty_ground_truth_gives_all_zero_targets():
    cls, reg = assign([level(1, 10, 0, 100)], torch.zeros(0, 2).tolist(), [])
    assert cls.shape == (10, 3) and reg.shape == (10, 2)
    assert (cls == 0).all() and (reg == 0).all()


def test_single_segment_inside_strictly_with_offsets():
    cls, reg = assign([level(1, 10, 0, 100)], [[2.0, 6.0]], [1])
    assert cls[:, 1].nonzero().flatten().tolist() == [3, 4, 5]  # t = 2 and 6 are not inside
    assert cls[:, [0, 2]].sum() == 0
    assert reg[3].tolist() == [1.0, 3.0] and reg[5].tolist() == [3.0, 1.0]


def test_overlapping_segments_the_shortest_wins():
    cls, reg = assign([level(1, 10, 0, 100)], [[1.0, 9.0], [3.0, 6.0]], [0, 2])
    assert cls[4].tolist() == [0, 0, 1] and cls[5].tolist() == [0, 0, 1]
    assert reg[4].tolist() == [1.0, 2.0]
    assert cls[2].tolist() == [1, 0, 0] and cls[7].tolist() == [1, 0, 0]
    assert reg[7].tolist() == [6.0, 2.0]


def test_equal_lengths_give_a_multi_hot_target_clamped_to_one():
    # two labels on identical boundaries (THUMOS CliffDiving + Diving) and a duplicate label
    cls, reg = assign([level(1, 10, 0, 100)], [[2.0, 6.0], [2.0, 6.0], [2.0, 6.0]], [0, 1, 1])
    assert cls[4].tolist() == [1, 1, 0]
    # lengths within 1e-3 also count; regression follows the first shortest GT
    cls, reg = assign([level(1, 10, 0, 100)], [[2.0, 6.0005], [2.0, 6.0]], [0, 2])
    assert cls[4].tolist() == [1, 0, 1]
    assert reg[4].tolist() == [2.0, 2.0]


def test_center_sampling_radius_limits_positives_per_stride():
    # centre 10, radius 1.5 * stride, clipped to the GT, strict inequalities
    cls, _ = assign([level(1, 20, 0, 100)], [[0.0, 20.0]], [0], mode="radius")
    assert cls[:, 0].nonzero().flatten().tolist() == [9, 10, 11]
    cls, reg = assign([level(2, 10, 0, 100)], [[0.0, 20.0]], [0], mode="radius")
    assert cls[:, 0].nonzero().flatten().tolist() == [4, 5, 6]  # t = 8, 10, 12
    assert reg[4].tolist() == [4.0, 6.0]  # (8, 12) / stride 2
    # the radius box is clipped to the GT: a short GT keeps only its strict interior
    cls, _ = assign([level(1, 10, 0, 100)], [[4.0, 6.0]], [0], mode="radius")
    assert cls[:, 0].nonzero().flatten().tolist() == [5]


def test_regression_ranges_are_inclusive_and_unnormalised():
    points = [level(1, 8, 0, 4), level(2, 4, 4, 8)]
    cls, reg = assign(points, [[0.0, 8.0]], [2])
    level0, level1 = cls[:8, 2], cls[8:, 2]
    # level 0: max(t, 8 - t) <= 4 only at t = 4 (inclusive upper bound)
    assert level0.nonzero().flatten().tolist() == [4]
    # level 1 (t = 0, 2, 4, 6): max distance 6, 4, 6 in [4, 8] (inclusive lower bound)
    assert level1.nonzero().flatten().tolist() == [1, 2, 3]
    assert reg[8 + 1].tolist() == [1.0, 3.0]  # (2, 6) / stride 2


def test_batched_assignment_equals_per_video_assignment():
    points = [level(1, 16, 0, 4), level(2, 8, 4, 8), level(4, 4, 8, 1000)]
    concat = torch.cat(points)
    segs = [torch.tensor([[1.0, 5.5], [3.0, 14.0], [3.0, 14.0]]), torch.zeros(0, 2),
            torch.tensor([[-2.0, 3.0]])]
    labels = [torch.tensor([0, 1, 2]), torch.zeros(0, dtype=torch.long), torch.tensor([1])]
    cls, reg = label_points(points, segs, labels, 3, "radius", 1.5)
    assert cls.shape == (3, 28, 3)
    for b in range(3):
        cls_b, reg_b = label_points_single_video(concat, segs[b], labels[b], 3, "radius", 1.5)
        assert torch.equal(cls[b], cls_b) and torch.equal(reg[b], reg_b)
    assert (cls[1] == 0).all() and (reg[1] == 0).all()
    assert cls[0].sum() > 0 and cls[2].sum() > 0
