"""AP and recall from matched detections: VOC-2011 interpolated AP per class (docs/reference.md
§6.1, §6.3), top-k x recall (§6.4), and the original's per-class helper signatures.

The interpolated AP sums exactly the original's 1-D arrays with ``np.sum`` (pairwise summation
depends on the array), so every float comes out bit-identical.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import pandas as pd

from .matching import Groups, Segments, greedy_true_positives, group_gt, topkx_hits

__all__ = ["interpolated_prec_rec", "average_precision", "compute_average_precision_detection",
           "compute_topkx_recall_detection"]

_DEFAULT_TIOU = np.linspace(0.1, 0.5, 5)  # the original's default argument


def interpolated_prec_rec(prec: np.ndarray, rec: np.ndarray) -> float:
    """VOC-2011 interpolated average precision (§6.1).

    Args:
        prec: (N,) precision after each detection (score order).
        rec: (N,) recall after each detection.

    Returns:
        ``sum_i (r_i - r_{i-1}) * max_{j >= i} p_j`` over the indices where recall changes,
        after padding precision with 0 on both sides and recall with 0 / 1.
    """
    mprec = np.hstack([[0.0], np.asarray(prec, dtype=np.float64), [0.0]])
    mrec = np.hstack([[0.0], np.asarray(rec, dtype=np.float64), [1.0]])
    # running maximum from the right; max is exact, so this equals the original's loop
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _interpolated_ap_rows(prec: np.ndarray, rec: np.ndarray) -> np.ndarray:
    """``interpolated_prec_rec`` for every row of (T, N) arrays, bit-identical per row."""
    n_rows = prec.shape[0]
    zeros = np.zeros((n_rows, 1))
    mprec = np.concatenate([zeros, prec, zeros], axis=1)
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    mrec = np.concatenate([zeros, rec, np.ones((n_rows, 1))], axis=1)
    changed = mrec[:, 1:] != mrec[:, :-1]
    out = np.zeros(n_rows)
    for t in range(n_rows):
        idx = np.nonzero(changed[t])[0] + 1
        mr, mp = mrec[t], mprec[t]
        # the very same 1-D array as in the original, summed by the same np.sum
        out[t] = np.sum((mr[idx] - mr[idx - 1]) * mp[idx])
    return out


def class_sorted_rows(cls: np.ndarray, score: np.ndarray, n_classes: int
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Rows of every class in the original's processing order, and class bounds.

    For class c: the rows with that class in input order, reordered by
    ``np.argsort(score)[::-1]`` on that very array (§6.3 step 3).
    """
    by_cls = np.argsort(cls, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(cls, minlength=n_classes))])
    rows = np.empty_like(by_cls)
    for c in range(n_classes):
        a, b = bounds[c], bounds[c + 1]
        if b > a:
            sel = by_cls[a:b]
            rows[a:b] = sel[score[sel].argsort()[::-1]]
    return rows, bounds


def average_precision(pred: Segments, gt: Segments, groups: Groups, n_classes: int,
                      thr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(T, C) AP per class and (C,) bool "class has predictions" (§6.3)."""
    ap = np.zeros((thr.size, n_classes))
    keep = np.nonzero(pred.cls >= 0)[0]
    cls = pred.cls[keep]
    has_pred = np.bincount(cls, minlength=n_classes) > 0
    if keep.size == 0:
        return ap, has_pred
    local, bounds = class_sorted_rows(cls, pred.score[keep], n_classes)
    tp = greedy_true_positives(pred, gt, groups, keep[local], thr)
    npos = np.bincount(gt.cls, minlength=n_classes).astype(np.float64)
    # cumulative TP per class from one running sum (integer-valued floats: exact); every
    # prediction is a TP or an FP, so cumTP + cumFP is the 1-based rank inside the class
    cum = np.cumsum(tp, axis=1, dtype=np.float64)
    for c in range(n_classes):
        a, b = bounds[c], bounds[c + 1]
        if b == a:
            continue
        tp_cum = cum[:, a:b] - cum[:, a - 1:a] if a > 0 else cum[:, a:b]
        rec = tp_cum / npos[c]
        prec = tp_cum / np.arange(1, b - a + 1, dtype=np.float64)
        ap[:, c] = _interpolated_ap_rows(prec, rec)
    return ap, has_pred


# --------------------------------------------------------------------------------------------
# DataFrame-level helpers with the original's per-class signatures
# --------------------------------------------------------------------------------------------
def _single_class_arrays(ground_truth: pd.DataFrame, prediction: pd.DataFrame
                         ) -> Tuple[Segments, Segments, Groups]:
    gt_v = ground_truth["video-id"].to_numpy(dtype=object)
    pr_v = prediction["video-id"].to_numpy(dtype=object)
    codes, _ = pd.factorize(np.concatenate([gt_v, pr_v]))
    codes = codes.astype(np.int64)
    gt = Segments(codes[:gt_v.size], ground_truth["t-start"].to_numpy(np.float64),
                  ground_truth["t-end"].to_numpy(np.float64),
                  np.zeros(gt_v.size, dtype=np.int64))
    pred = Segments(codes[gt_v.size:], prediction["t-start"].to_numpy(np.float64),
                    prediction["t-end"].to_numpy(np.float64),
                    np.zeros(pr_v.size, dtype=np.int64),
                    prediction["score"].to_numpy(np.float64))
    return gt, pred, group_gt(gt, int(codes.max(initial=-1)) + 1)


def compute_average_precision_detection(ground_truth: pd.DataFrame, prediction: pd.DataFrame,
                                        tiou_thresholds: Sequence[float] = _DEFAULT_TIOU
                                        ) -> np.ndarray:
    """AP of one class at each tIoU threshold (§6.3).

    Args:
        ground_truth: the class's GT rows (``video-id, t-start, t-end``), N_gt >= 1.
        prediction: the class's predictions (``video-id, t-start, t-end, score``).
        tiou_thresholds: (T,) thresholds.

    Returns:
        (T,) float64 AP; zeros when there is no prediction.
    """
    thr = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)
    if prediction.empty:
        return np.zeros(thr.size)
    gt, pred, groups = _single_class_arrays(ground_truth, prediction)
    ap, _ = average_precision(pred, gt, groups, 1, thr)
    return ap[:, 0]


def compute_topkx_recall_detection(ground_truth: pd.DataFrame, prediction: pd.DataFrame,
                                   tiou_thresholds: Sequence[float] = _DEFAULT_TIOU,
                                   top_k: Sequence[int] = (1, 5)) -> np.ndarray:
    """Top-k x recall of one class (§6.4): GT found among the first k * n_gt predictions of
    their video (score order), tIoU >= threshold.

    Returns:
        (T, K) float64; zeros when there is no prediction.
    """
    thr = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)
    if prediction.empty:
        return np.zeros((thr.size, len(top_k)))
    gt, pred, groups = _single_class_arrays(ground_truth, prediction)
    hits = topkx_hits(pred, gt, groups, 1, thr, top_k)
    return hits[0].astype(np.float64) / len(ground_truth)
