"""Temporal IoU: the detection tIoU (docs/reference.md §6.1) and the Ego4D retrieval tIoU.

Both compute element for element what the original / official code computes, in the same
operand order, so every value is bit-identical (docs/metrics.md).
"""
from __future__ import annotations

import numpy as np

__all__ = ["segment_iou", "k_segment_iou", "tiou_rows", "retrieval_tiou_rows"]


def segment_iou(target_segment: np.ndarray, candidate_segments: np.ndarray) -> np.ndarray:
    """tIoU of one segment against N candidates.

    Args:
        target_segment: (2,) ``[start, end]``.
        candidate_segments: (N, 2).

    Returns:
        (N,) float64 ``inter / (len_cand + len_target - inter)``.
    """
    target = np.asarray(target_segment, dtype=np.float64)
    cand = np.asarray(candidate_segments, dtype=np.float64)
    tt1 = np.maximum(target[0], cand[:, 0])
    tt2 = np.minimum(target[1], cand[:, 1])
    inter = (tt2 - tt1).clip(0)
    # same evaluation order as the original: (len_cand + len_target) - inter
    union = (cand[:, 1] - cand[:, 0]) + (target[1] - target[0]) - inter
    return inter / union


def k_segment_iou(target_segments: np.ndarray, candidate_segments: np.ndarray) -> np.ndarray:
    """tIoU matrix: row m is ``segment_iou(target_segments[m], candidate_segments)``.

    Args:
        target_segments: (M, 2).
        candidate_segments: (N, 2).

    Returns:
        (M, N) float64.
    """
    target = np.asarray(target_segments, dtype=np.float64).reshape(-1, 2)
    cand = np.asarray(candidate_segments, dtype=np.float64).reshape(-1, 2)
    return tiou_rows(target[:, 0], target[:, 1], cand[None, :, 0], cand[None, :, 1])


def tiou_rows(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray) -> np.ndarray:
    """(M, N) detection tIoU of predictions ``[ps, pe]`` (M,) against GT ``[gs, ge]`` (M, N)
    or (1, N), element-wise as ``segment_iou`` (0 / 0 gives NaN, silently)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tt1 = np.maximum(ps[:, None], gs)
        tt2 = np.minimum(pe[:, None], ge)
        inter = (tt2 - tt1).clip(0)
        union = (ge - gs) + (pe - ps)[:, None] - inter
        return inter / union


def retrieval_tiou_rows(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray
                        ) -> np.ndarray:
    """(M, N) tIoU of the Ego4D retrieval evaluator: ``max(0, inter) / max(0, max end - min
    start)`` (the span of the two segments, not the union of the lengths; NaN for two equal
    points), same operand order as the official code."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inter = np.maximum(0.0, np.minimum(pe[:, None], ge) - np.maximum(ps[:, None], gs))
        span = np.maximum(0.0, np.maximum(pe[:, None], ge) - np.minimum(ps[:, None], gs))
        return 1.0 * inter / span
