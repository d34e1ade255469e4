"""Label assignment: which points are positives, with which class and regression targets
(docs/reference.md §4.1, ActionFormer paper §3.3 "center sampling").

Mirrors ``label_points`` / ``label_points_single_video`` of the original's
``libs/modeling/meta_archs.py`` as pure functions. Differences: the batch is processed at once
by padding every video's ground truth to the largest count N; padded entries can never be
selected, so the targets equal the per-video computation exactly (same float operations).

Shapes: F = total number of points over all levels, N = ground-truth segments, K = classes.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch.nn import functional as F

__all__ = ["label_points", "label_points_single_video"]

# ground truths whose candidate length is within this of the shortest (grid units) all
# contribute to the class target (multi-hot, e.g. THUMOS CliffDiving + Diving)
LENGTH_TIE_TOLERANCE = 1e-3


@torch.no_grad()
def label_points(points: Sequence[torch.Tensor] | torch.Tensor,
                 gt_segments: Sequence[torch.Tensor], gt_labels: Sequence[torch.Tensor],
                 num_classes: int, center_sample: str = "radius",
                 center_sample_radius: float = 1.5) -> Tuple[torch.Tensor, torch.Tensor]:
    """Assigns class and regression targets to every point of every video.

    Args:
        points: per-level (T_l, 4) rows ``(t, reg_lo, reg_hi, stride)`` or their
            concatenation (F, 4); input-grid units.
        gt_segments: per video (N_b, 2) start/end in feature-grid units.
        gt_labels: per video (N_b,) int64 class ids in [0, K).
        num_classes: K.
        center_sample: 'radius' (positives within stride * radius of the GT centre,
            clipped to the GT) or 'none' (anywhere strictly inside the GT).
        center_sample_radius: radius in units of the level stride.

    Returns:
        cls_targets (B, F, K) float32 multi-hot (0/1), reg_targets (B, F, 2) float32
        (distance to start, distance to end) of the shortest matching GT divided by the
        stride; all zeros for a video without ground truth.
    """
    if center_sample not in ("radius", "none"):
        raise ValueError(f"center_sample must be 'radius' or 'none', got '{center_sample}'")
    concat_points = torch.cat(list(points), dim=0) if not torch.is_tensor(points) else points
    device, dtype = concat_points.device, concat_points.dtype
    num_videos = len(gt_segments)
    num_points = concat_points.shape[0]
    counts = [int(seg.shape[0]) for seg in gt_segments]
    max_gts = max(counts, default=0)
    cls_targets = torch.zeros(num_videos, num_points, num_classes, dtype=dtype, device=device)
    reg_targets = torch.zeros(num_videos, num_points, 2, dtype=dtype, device=device)
    if max_gts == 0:
        return cls_targets, reg_targets

    # pad the ground truth of every video to max_gts entries
    segs = torch.zeros(num_videos, max_gts, 2, dtype=dtype, device=device)
    labels = torch.zeros(num_videos, max_gts, dtype=torch.long, device=device)
    gt_valid = torch.zeros(num_videos, max_gts, dtype=torch.bool, device=device)
    for b, (seg, lab) in enumerate(zip(gt_segments, gt_labels)):
        segs[b, :counts[b]] = seg.to(device=device, dtype=dtype)
        labels[b, :counts[b]] = lab.to(device=device)
        gt_valid[b, :counts[b]] = True

    t = concat_points[None, :, 0, None]        # (1, F, 1)
    reg_lo = concat_points[None, :, 1, None]
    reg_hi = concat_points[None, :, 2, None]
    stride = concat_points[None, :, 3, None]
    gt_start = segs[:, None, :, 0]             # (B, 1, N)
    gt_end = segs[:, None, :, 1]
    lens = (segs[:, :, 1] - segs[:, :, 0])[:, None, :].expand(-1, num_points, -1)  # (B, F, N)

    left = t - gt_start                        # (B, F, N)
    right = gt_end - t
    if center_sample == "radius":
        center = 0.5 * (gt_start + gt_end)
        t_mins = center - stride * center_sample_radius
        t_maxs = center + stride * center_sample_radius
        cb_left = t - torch.maximum(t_mins, gt_start)
        cb_right = torch.minimum(t_maxs, gt_end) - t
        inside = torch.minimum(cb_left, cb_right) > 0
    else:
        inside = torch.minimum(left, right) > 0
    max_dist = torch.maximum(left, right)
    in_range = (max_dist >= reg_lo) & (max_dist <= reg_hi)  # inclusive, grid units

    candidate = inside & in_range & gt_valid[:, None, :]
    lens = lens.masked_fill(~candidate, float("inf"))
    min_len, min_idx = lens.min(dim=2)        # ties -> first GT index
    selected = (lens <= (min_len[..., None] + LENGTH_TIE_TOLERANCE)) & (lens < float("inf"))
    one_hot = F.one_hot(labels, num_classes).to(dtype)     # (B, N, K)
    cls_targets = torch.bmm(selected.to(dtype), one_hot).clamp_(min=0.0, max=1.0)

    offsets = torch.stack((left, right), dim=-1)          # (B, F, N, 2)
    reg_targets = torch.gather(
        offsets, 2, min_idx[:, :, None, None].expand(-1, -1, 1, 2)).squeeze(2)
    reg_targets = reg_targets / stride[0]
    has_gt = torch.tensor(counts, device=device) > 0
    reg_targets = torch.where(has_gt[:, None, None], reg_targets,
                              torch.zeros_like(reg_targets))
    return cls_targets, reg_targets


def label_points_single_video(concat_points: torch.Tensor, gt_segment: torch.Tensor,
                              gt_label: torch.Tensor, num_classes: int,
                              center_sample: str = "radius",
                              center_sample_radius: float = 1.5
                              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """One video: (F, 4) points, (N, 2) segments, (N,) labels -> (F, K), (F, 2) targets."""
    cls_targets, reg_targets = label_points(concat_points, [gt_segment], [gt_label],
                                            num_classes, center_sample, center_sample_radius)
    return cls_targets[0], reg_targets[0]
