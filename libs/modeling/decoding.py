"""Inference decoding and per-video post-processing (docs/reference.md §5.1, §5.2, §2.5).

Mirrors ``inference_single_video`` and ``postprocessing`` of the original's
``libs/modeling/meta_archs.py`` as pure functions. Differences: NMS comes from ``libs.ops``
and is imported when first needed, so building and training the model does not need it.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch

__all__ = ["inference_single_video", "segments_grid_to_seconds", "postprocess_video"]


@torch.no_grad()
def inference_single_video(points: Sequence[torch.Tensor], fpn_masks: Sequence[torch.Tensor],
                           cls_logits: Sequence[torch.Tensor], offsets: Sequence[torch.Tensor],
                           pre_nms_thresh: float, pre_nms_topk: int,
                           duration_thresh: float) -> Dict[str, torch.Tensor]:
    """Decodes one video's per-level outputs into candidate segments (before NMS).

    Args:
        points: per level (T_l, 4) rows (t, reg_lo, reg_hi, stride).
        fpn_masks: per level (T_l,) bool.
        cls_logits: per level (T_l, K) logits.
        offsets: per level (T_l, 2) (distance to start, to end) in stride units.
        pre_nms_thresh: keep scores strictly above this.
        pre_nms_topk: keep at most this many scores **per level** (descending order).
        duration_thresh: keep segments strictly longer than this (grid units).

    Returns:
        dict with ``segments`` (N, 2) feature-grid units, ``scores`` (N,), ``labels`` (N,)
        int64, concatenated in level order.
    """
    segs_all, scores_all, labels_all = [], [], []
    for cls_i, offsets_i, pts_i, mask_i in zip(cls_logits, offsets, points, fpn_masks):
        num_classes = cls_i.shape[-1]
        # flat index = t * K + k
        pred_prob = (cls_i.sigmoid() * mask_i.unsqueeze(-1)).flatten()
        keep = pred_prob > pre_nms_thresh
        pred_prob = pred_prob[keep]
        flat_idxs = keep.nonzero(as_tuple=True)[0]
        num_topk = min(pre_nms_topk, flat_idxs.shape[0])
        pred_prob, order = pred_prob.sort(descending=True)
        pred_prob = pred_prob[:num_topk].clone()
        flat_idxs = flat_idxs[order[:num_topk]].clone()
        pt_idxs = torch.div(flat_idxs, num_classes, rounding_mode="floor")
        cls_idxs = torch.fmod(flat_idxs, num_classes)

        offs = offsets_i[pt_idxs]
        pts = pts_i[pt_idxs]
        seg_left = pts[:, 0] - offs[:, 0] * pts[:, 3]
        seg_right = pts[:, 0] + offs[:, 1] * pts[:, 3]
        pred_segs = torch.stack((seg_left, seg_right), -1)
        keep = (seg_right - seg_left) > duration_thresh
        segs_all.append(pred_segs[keep])
        scores_all.append(pred_prob[keep])
        labels_all.append(cls_idxs[keep])
    return {"segments": torch.cat(segs_all), "scores": torch.cat(scores_all),
            "labels": torch.cat(labels_all)}


def segments_grid_to_seconds(segs: torch.Tensor, feat_stride: float, num_frames: float,
                             fps: float, duration: float) -> torch.Tensor:
    """Feature-grid segments (N, 2) -> seconds, clamped to [0, duration].

    ``sec = (grid * feat_stride + 0.5 * num_frames) / fps``; values <= 0 are multiplied by
    0.0 (so negative values become -0.0, as in the original) and values >= duration are set
    to ``duration``.
    """
    segs = (segs * feat_stride + 0.5 * num_frames) / fps
    segs = torch.where(segs <= 0.0, segs * 0.0, segs)
    segs = torch.where(segs >= duration, segs * 0.0 + duration, segs)
    return segs


def postprocess_video(result: Dict, nms_method: str, iou_threshold: float, min_score: float,
                      max_seg_num: int, multiclass_nms: bool, nms_sigma: float,
                      voting_thresh: float) -> Dict:
    """NMS and conversion to seconds for one video.

    Args:
        result: dict with ``video_id, fps, duration, feat_stride, feat_num_frames`` and the
            grid-unit candidates ``segments`` (N, 2), ``scores`` (N,), ``labels`` (N,).
        nms_method: 'soft' (Gaussian), 'hard' or 'none' (no NMS, no cap, no sorting).
        iou_threshold, min_score, max_seg_num, multiclass_nms, nms_sigma, voting_thresh:
            passed to ``libs.ops.batched_nms``.

    Returns:
        ``{'video_id', 'segments' (n, 2) float32 seconds, 'scores' (n,), 'labels' (n,)}``
        on the CPU.
    """
    segs = result["segments"].detach().cpu()
    scores = result["scores"].detach().cpu()
    labels = result["labels"].detach().cpu()
    if nms_method != "none":
        from libs.ops import batched_nms  # imported here: only inference needs NMS

        segs, scores, labels = batched_nms(
            segs, scores, labels, iou_threshold, min_score, max_seg_num,
            use_soft_nms=(nms_method == "soft"), multiclass=multiclass_nms,
            sigma=nms_sigma, voting_thresh=voting_thresh)
    if segs.shape[0] > 0:
        segs = segments_grid_to_seconds(segs, result["feat_stride"], result["feat_num_frames"],
                                        result["fps"], result["duration"])
    return {"video_id": result["video_id"], "segments": segs, "scores": scores,
            "labels": labels}
