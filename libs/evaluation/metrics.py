"""Temporal action detection metrics: ``ANETdetection`` (mAP, Recall@kx) and its helpers.

Behaviour: REFERENCE.md §6 (helpers §6.1, evaluator §6.2, per-class AP §6.3, top-k x recall
§6.4, deviations from the official code §6.6) and the quirks of §9 items 21 and 33. The default
``mode='upstream'`` reproduces the original ActionFormer evaluator number for number (the
conformance vector in ``conformance/eval_vector_*`` reproduces to the last bit); the other modes
follow the official ActivityNet / EPIC-Kitchens / Ego4D evaluators where they differ, see
:class:`ANETdetection` and docs/metrics.md.

How it is fast and still exact. The original walks the predictions of every class one pandas
row at a time. Here all classes are processed together with NumPy:

* per class, predictions are ordered with the same call the original uses,
  ``np.argsort(score)[::-1]`` on the class's scores in input order (ties therefore fall the same
  way: NumPy's default sort is not stable, §9 item 33);
* a prediction can only match ground truth (GT) of its own class and video, so the greedy,
  score-ordered GT locking is run per (class, video) group. All groups advance together: step
  ``r`` handles the ``r``-th prediction of every group at every tIoU threshold at once (the
  groups own disjoint GT, so their steps are independent). Predictions whose best tIoU is below
  every threshold, or whose video has no GT of their class, are false positives and never
  enter the loop;
* the tIoU of a prediction against the GTs of its video is computed with the original's
  element-wise formula and ordered with ``np.argsort(tiou)[::-1]`` on exactly the same
  length-``n_gt`` rows (a row-wise argsort of a 2-D array runs the same 1-D kernel per row), so
  ties between GTs are broken as in the original;
* the VOC-2011 interpolated AP sums exactly the same arrays with ``np.sum``, and the means are
  taken over arrays of the original's shapes, so every float comes out bit-identical.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from libs.utils.annotations import remove_duplicate_annotations

__all__ = [
    "ANETdetection",
    "EVAL_MODES",
    "OFFICIAL_TIOU_THRESHOLDS",
    "mode_tiou_thresholds",
    "load_gt_seg_from_json",
    "load_pred_seg_from_json",
    "segment_iou",
    "k_segment_iou",
    "interpolated_prec_rec",
    "compute_average_precision_detection",
    "compute_topkx_recall_detection",
]

EVAL_MODES = ("upstream", "anet_official", "epic_official", "ego4d_official")
PRED_COLUMNS = ("video-id", "t-start", "t-end", "label", "score")

# modes whose GT is read without remove_duplicate_annotations unless asked otherwise
_NO_DEDUP_MODES = ("anet_official", "epic_official", "ego4d_official")
# modes whose classes are indexed in order of first appearance in the GT (official code)
_FIRST_APPEARANCE_MODES = ("anet_official", "ego4d_official")

#: the original's default thresholds (upstream mode without explicit thresholds)
UPSTREAM_TIOU_THRESHOLDS = tuple(np.linspace(0.1, 0.5, 5).tolist())
#: tIoU thresholds of each official evaluator, the very floats its code uses: ActivityNet
#: ``get_detection_performance.py`` and EPIC-KITCHENS-100 ``evaluate_detection_json_ek100.py``
#: use ``np.linspace`` (0.30000000000000004, 0.8999999999999999 and all), the Ego4D moment
#: queries ``opts.py`` writes ``[0.1, 0.2, 0.3, 0.4, 0.5]`` (exact 0.3).
OFFICIAL_TIOU_THRESHOLDS: Dict[str, Tuple[float, ...]] = {
    "anet_official": tuple(np.linspace(0.5, 0.95, 10).tolist()),
    "epic_official": tuple(np.linspace(0.1, 0.5, 5).tolist()),
    "ego4d_official": (0.1, 0.2, 0.3, 0.4, 0.5),
}
#: the Ego4D retrieval evaluator's fixed grid: Recall@1..5x at tIoU 0.3 / 0.5 / 0.7
EGO4D_RECALL_TIOU_THRESHOLDS = (0.3, 0.5, 0.7)
EGO4D_RECALL_TOP_K = (1, 2, 3, 4, 5)


def mode_tiou_thresholds(mode: str, dataset_thresholds: Sequence[float]) -> np.ndarray:
    """mAP thresholds for ``mode``: the data set's for ``'upstream'`` (as the original's
    eval.py), the official evaluator's own for the official modes.

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in EVAL_MODES:
        raise ValueError(f"unknown evaluation mode '{mode}'; expected one of {EVAL_MODES}")
    if mode == "upstream":
        return np.asarray(dataset_thresholds, dtype=np.float64).reshape(-1)
    return np.asarray(OFFICIAL_TIOU_THRESHOLDS[mode], dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _read_json(json_file: str, what: str) -> Any:
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"{what} file not found: '{json_file}'")
    with open(json_file, "r", encoding="utf8") as f:
        return json.load(f)


def _event_label(event: Mapping[str, Any], label: str, label_offset: int, where: str) -> Any:
    """Integer label of one event, as the original builds it."""
    if label not in event:
        raise KeyError(f"{where}: event {dict(event)} has no '{label}' field")
    value = event[label]
    if isinstance(value, (tuple, list)):
        # Quirk replicated on purpose (REFERENCE.md §6.1, §9 item 21; STYLE.md §3.7): the
        # original adds ``label_offset**i`` where a mixed-radix id (multiplication) was
        # probably meant. No shipped config uses list labels; conformance decides, so we keep it.
        label_id = 0
        for i, x in enumerate(value[::-1]):
            label_id += label_offset ** i + int(x)
        return label_id
    return int(value)


def _database(json_db: Any, json_file: str) -> Mapping[str, Any]:
    if not isinstance(json_db, Mapping) or "database" not in json_db:
        raise KeyError(f"'{json_file}' has no top-level 'database' key")
    return json_db["database"]


def _read_gt_rows(json_file: str, split: Optional[str], label: str, label_offset: int,
                  dedup: bool, names: bool = False
                  ) -> Tuple[pd.DataFrame, List[str]]:
    """GT rows of one split plus the sorted list of subsets present in the file."""
    database = _database(_read_json(json_file, "ground-truth annotation"), json_file)
    vids: List[str] = []
    starts: List[float] = []
    stops: List[float] = []
    labels: List[Any] = []
    subsets = set()
    for vid, info in database.items():
        subset = info.get("subset")
        subsets.add(str(subset))
        # same filter as the original: the JSON side is lower-cased, `split` is not
        if split is not None and str(subset).lower() != split:
            continue
        if "annotations" not in info:
            raise KeyError(f"'{json_file}': video '{vid}' has no 'annotations' key")
        ants = info["annotations"]
        if dedup:
            ants = remove_duplicate_annotations(ants)
        where = f"'{json_file}', video '{vid}'"
        for event in ants:
            seg = event["segment"]
            vids.append(vid)
            starts.append(float(seg[0]))
            stops.append(float(seg[1]))
            if names:
                if "label" not in event:
                    raise KeyError(f"{where}: event {dict(event)} has no 'label' field")
                labels.append(event["label"])
            else:
                labels.append(_event_label(event, label, label_offset, where))
    gt = pd.DataFrame({"video-id": vids, "t-start": starts, "t-end": stops, "label": labels})
    return gt, sorted(subsets)


def load_gt_seg_from_json(json_file: str, split: Optional[str] = None, label: str = "label_id",
                          label_offset: int = 0) -> pd.DataFrame:
    """Reads the GT segments of one split (REFERENCE.md §6.1).

    Every video whose ``subset.lower() == split`` (all videos when ``split`` is None) is read;
    its ``annotations`` are de-duplicated with ``remove_duplicate_annotations`` and emitted one
    row per event, in file order.

    Args:
        json_file: ActivityNet-style annotation JSON (``{"database": {vid: {...}}}``).
        split: subset name in lower case (e.g. ``'test'``, ``'validation'``), or None for all.
        label: event field holding the integer class id.
        label_offset: only used by the (quirky) list-label branch, see ``_event_label``.

    Returns:
        DataFrame with columns ``video-id`` (str), ``t-start``, ``t-end`` (float64), ``label``
        (int), N rows.

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: no ``database`` key, a selected video without ``annotations``, or an event
            without the label field.
    """
    gt, _ = _read_gt_rows(json_file, split, label, label_offset, dedup=True)
    return gt


def load_pred_seg_from_json(json_file: str, label: str = "label_id",
                            label_offset: int = 0) -> pd.DataFrame:
    """Reads predictions ``{"database": {vid: [{segment, <label>, scores}, ...]}}`` (§6.1).

    Note the per-event key ``scores`` (plural), as in the original (§9 item 21).

    Returns:
        DataFrame with columns ``video-id, t-start, t-end, label, score``.
    """
    database = _database(_read_json(json_file, "prediction"), json_file)
    rows: Dict[str, List[Any]] = {k: [] for k in PRED_COLUMNS}
    for vid, events in database.items():
        where = f"'{json_file}', video '{vid}'"
        for event in events:
            if "scores" not in event:
                raise KeyError(f"{where}: prediction {dict(event)} has no 'scores' field")
            rows["video-id"].append(vid)
            rows["t-start"].append(float(event["segment"][0]))
            rows["t-end"].append(float(event["segment"][1]))
            rows["label"].append(_event_label(event, label, label_offset, where))
            rows["score"].append(float(event["scores"]))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# tIoU and interpolated AP
# --------------------------------------------------------------------------------------------
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
    return _tiou_rows(target[:, 0], target[:, 1], cand[None, :, 0], cand[None, :, 1])


def _tiou_rows(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray) -> np.ndarray:
    """(M, N) tIoU of predictions (M,) against GT (M, N) or (1, N), element-wise as segment_iou."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tt1 = np.maximum(ps[:, None], gs)
        tt2 = np.minimum(pe[:, None], ge)
        inter = (tt2 - tt1).clip(0)
        union = (ge - gs) + (pe - ps)[:, None] - inter
        return inter / union


def _retrieval_tiou_rows(ps: np.ndarray, pe: np.ndarray, gs: np.ndarray, ge: np.ndarray
                         ) -> np.ndarray:
    """(M, N) tIoU of the Ego4D retrieval evaluator: ``max(0, inter) / max(0, max end - min
    start)`` (not the union of the lengths; NaN for two equal points), same operand order."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inter = np.maximum(0.0, np.minimum(pe[:, None], ge) - np.maximum(ps[:, None], gs))
        span = np.maximum(0.0, np.maximum(pe[:, None], ge) - np.minimum(ps[:, None], gs))
        return 1.0 * inter / span


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


# --------------------------------------------------------------------------------------------
# Vectorised core
# --------------------------------------------------------------------------------------------
@dataclass
class _Segments:
    """Column arrays of GT or predictions; ``cls`` is the class index (-1: not evaluated)."""
    vid: np.ndarray    # (N,) int64 video code
    start: np.ndarray  # (N,) float64
    end: np.ndarray    # (N,) float64
    cls: np.ndarray    # (N,) int64
    score: Optional[np.ndarray] = None  # (N,) float64, predictions only


@dataclass
class _Groups:
    """GT grouped by (class, video); predictions located in those groups."""
    gt_order: np.ndarray   # GT row ids sorted by group, file order inside a group
    keys: np.ndarray       # (G,) sorted group keys cls * n_vid + vid
    start: np.ndarray      # (G,) first position of each group in gt_order
    count: np.ndarray      # (G,) number of GT in each group
    cls: np.ndarray        # (G,) class of each group
    n_vid: int             # video codes are < n_vid (GT and predictions share the codes)


def _group_gt(gt: _Segments, n_vid: int) -> _Groups:
    n_vid = max(int(n_vid), 1)
    key = gt.cls * n_vid + gt.vid
    order = np.argsort(key, kind="stable")
    keys, start, count = np.unique(key[order], return_index=True, return_counts=True)
    return _Groups(order, keys, start, count, keys // n_vid, n_vid)


def _locate(groups: _Groups, key: np.ndarray) -> np.ndarray:
    """Group index of each key, -1 where that (class, video) has no GT."""
    if groups.keys.size == 0:
        return np.full(key.shape, -1, dtype=np.int64)
    pos = np.searchsorted(groups.keys, key)
    pos_c = np.minimum(pos, groups.keys.size - 1)
    return np.where(groups.keys[pos_c] == key, pos_c, -1)


def _class_sorted_rows(cls: np.ndarray, score: np.ndarray, n_classes: int
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


def _greedy_tp(pred: _Segments, gt: _Segments, groups: _Groups, rows: np.ndarray,
               thr: np.ndarray) -> np.ndarray:
    """True positives of the score-ordered greedy matching with per-threshold GT locks.

    Args:
        pred, gt: column arrays (class indices in ``cls``; every pred row in ``rows`` valid).
        groups: GT grouped by (class, video).
        rows: (P,) prediction rows in processing order (class by class, score descending).
        thr: (T,) tIoU thresholds.

    Returns:
        (T, P) bool, column p for ``rows[p]``: the prediction took a GT at that threshold.
    """
    n_thr, n_pred = thr.size, rows.size
    tp = np.zeros((n_thr, n_pred), dtype=bool)
    gidx = _locate(groups, pred.cls[rows] * groups.n_vid + pred.vid[rows])
    with_gt = np.nonzero(gidx >= 0)[0]  # positions in `rows`; all others are FP everywhere
    if with_gt.size == 0:
        return tp
    n_of = groups.count[gidx[with_gt]]
    dummy = gt.vid.size  # padding GT id, always locked
    # per GT-count n: tIoU rows, their descending order and the valid prefix per threshold
    pieces: Dict[int, List[Tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for n in np.unique(n_of):
        pos = with_gt[n_of == n]
        g = gidx[pos]
        gt_ids = groups.gt_order[groups.start[g][:, None] + np.arange(n)]  # (m, n)
        r = rows[pos]
        tiou = _tiou_rows(pred.start[r], pred.end[r], gt.start[gt_ids], gt.end[gt_ids])
        order = np.argsort(tiou, axis=1)[:, ::-1]  # same per-row kernel as the original
        tiou_sorted = np.take_along_axis(tiou, order, axis=1)
        # walking GTs in that order, the original stops at the first tIoU < thr; the GTs
        # before that point are the candidates. The reversed argsort puts NaNs (which do not
        # stop the walk) first and then descends, so "not below" is already a prefix.
        valid = ~(tiou_sorted[:, :, None] < thr[None, None, :])  # (m, n, T)
        relevant = valid[:, 0, :].any(axis=1)
        if not relevant.any():
            continue
        pref = np.take_along_axis(gt_ids, order, axis=1)[relevant]
        width = 1 << (int(n) - 1).bit_length()
        if width > n:  # pad to a power of two so few buckets share one loop
            pref = np.concatenate(
                [pref, np.full((pref.shape[0], width - n), dummy, dtype=pref.dtype)], axis=1)
            valid_r = np.zeros((pref.shape[0], width, n_thr), dtype=bool)
            valid_r[:, :n] = valid[relevant]
        else:
            valid_r = valid[relevant]
        pieces.setdefault(width, []).append((pos[relevant], pref, valid_r))

    locked = np.zeros((dummy + 1, n_thr), dtype=bool)
    locked[dummy] = True
    for width, parts in pieces.items():
        pos = np.concatenate([p[0] for p in parts])
        pref = np.concatenate([p[1] for p in parts])
        valid = np.concatenate([p[2] for p in parts])
        # rank of each prediction inside its (class, video) group, in processing order
        grp = gidx[pos]
        order = np.lexsort((pos, grp))
        grp_sorted = grp[order]
        first = np.r_[True, grp_sorted[1:] != grp_sorted[:-1]]
        group_start = np.maximum.accumulate(np.where(first, np.arange(order.size), 0))
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size) - group_start
        by_rank = np.argsort(rank, kind="stable")
        pos, pref, valid = pos[by_rank], pref[by_rank], valid[by_rank]
        bounds = np.searchsorted(rank[by_rank], np.arange(rank.max() + 2))
        for r in range(bounds.size - 1):
            a, b = bounds[r], bounds[r + 1]
            g = pref[a:b]                                # (A, W) GT ids, one group each
            avail = valid[a:b] & ~locked[g]              # (A, W, T)
            hit = avail.any(axis=1)                      # (A, T)
            if not hit.any():
                continue
            take = avail.argmax(axis=1)                  # first free candidate
            ai, ti = np.nonzero(hit)
            locked[g[ai, take[ai, ti]], ti] = True
            tp[ti, pos[a:b][ai]] = True
    return tp


def _average_precision(pred: _Segments, gt: _Segments, groups: _Groups, n_classes: int,
                       thr: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(T, C) AP per class and (C,) bool "class has predictions" (§6.3)."""
    ap = np.zeros((thr.size, n_classes))
    keep = np.nonzero(pred.cls >= 0)[0]
    cls = pred.cls[keep]
    has_pred = np.bincount(cls, minlength=n_classes) > 0
    if keep.size == 0:
        return ap, has_pred
    local, bounds = _class_sorted_rows(cls, pred.score[keep], n_classes)
    rows = keep[local]
    tp = _greedy_tp(pred, gt, groups, rows, thr)
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


def _topkx_hits(pred: _Segments, gt: _Segments, groups: _Groups, n_classes: int,
                thr: np.ndarray, top_k: Sequence[int], official_ego4d: bool = False
                ) -> np.ndarray:
    """(C, T, K) number of GT found among the first k x n_gt predictions of their video (§6.4).

    Upstream: the video's predictions of the class sorted by ``np.argsort(score)[::-1]`` on
    the video's scores in input order, hit = tIoU >= thr. Ego4D-official: predictions in input
    order (no re-sorting), the retrieval tIoU (``_retrieval_tiou_rows``), hit = tIoU > thr.
    """
    n_thr, n_k = thr.size, len(top_k)
    hits = np.zeros((n_classes, n_thr, n_k), dtype=np.int64)
    keep = np.nonzero(pred.cls >= 0)[0]
    if keep.size == 0 or groups.keys.size == 0:
        return hits
    gidx = _locate(groups, pred.cls[keep] * groups.n_vid + pred.vid[keep])
    sel = gidx >= 0
    rows, grp = keep[sel], gidx[sel]
    if rows.size == 0:
        return hits
    # group-contiguous, input order inside a group (what groupby().get_group() yields)
    order = np.lexsort((rows, grp))
    rows, grp = rows[order], grp[order]
    first = np.r_[True, grp[1:] != grp[:-1]]
    starts = np.nonzero(first)[0]
    sizes = np.diff(np.r_[starts, rows.size])
    q = np.arange(rows.size) - np.repeat(starts, sizes)  # position in input order
    if official_ego4d:
        rank = q
    else:
        # per group: np.argsort(scores)[::-1] on the group's scores in input order; groups of
        # equal size are stacked and sorted row-wise (same 1-D kernel per row)
        rank = np.empty(rows.size, dtype=np.int64)
        size_of = np.repeat(sizes, sizes)
        for p in np.unique(sizes):
            idx = np.nonzero(size_of == p)[0].reshape(-1, p)  # (groups, p), rows in order
            srt = np.argsort(pred.score[rows[idx]], axis=1)[:, ::-1]
            rk = np.empty_like(srt)
            np.put_along_axis(rk, srt, np.arange(p)[None, :], axis=1)
            rank[idx] = rk
    n_gt = groups.count[grp]
    kmax = max(top_k)
    top = rank < kmax * n_gt
    rows, grp, rank, n_gt = rows[top], grp[top], rank[top], n_gt[top]
    ks = np.asarray(top_k, dtype=np.int64)
    for n in np.unique(n_gt):
        m = n_gt == n
        r, g, rk = rows[m], grp[m], rank[m]  # still group-contiguous
        gt_ids = groups.gt_order[groups.start[g][:, None] + np.arange(n)]
        if official_ego4d:
            tiou = _retrieval_tiou_rows(pred.start[r], pred.end[r], gt.start[gt_ids],
                                        gt.end[gt_ids])
            hit = tiou[:, :, None] > thr[None, None, :]
        else:
            tiou = _tiou_rows(pred.start[r], pred.end[r], gt.start[gt_ids], gt.end[gt_ids])
            hit = tiou[:, :, None] >= thr[None, None, :]
        big = np.iinfo(np.int64).max
        rank_hit = np.where(hit, rk[:, None, None], big)            # (m, n, T)
        gstart = np.nonzero(np.r_[True, g[1:] != g[:-1]])[0]
        best = np.minimum.reduceat(rank_hit, gstart, axis=0)          # (groups, n, T)
        found = best[:, :, :, None] < (ks * n)[None, None, None, :]   # (groups, n, T, K)
        counts = found.sum(axis=1)                                    # (groups, T, K)
        np.add.at(hits, groups.cls[g[gstart]], counts)
    return hits


# --------------------------------------------------------------------------------------------
# DataFrame-level helpers with the original's per-class signatures
# --------------------------------------------------------------------------------------------
def _single_class_arrays(ground_truth: pd.DataFrame, prediction: pd.DataFrame
                         ) -> Tuple[_Segments, _Segments, _Groups]:
    gt_v = ground_truth["video-id"].to_numpy(dtype=object)
    pr_v = prediction["video-id"].to_numpy(dtype=object)
    codes, _ = pd.factorize(np.concatenate([gt_v, pr_v]))
    codes = codes.astype(np.int64)
    gt = _Segments(codes[:gt_v.size], ground_truth["t-start"].to_numpy(np.float64),
                   ground_truth["t-end"].to_numpy(np.float64),
                   np.zeros(gt_v.size, dtype=np.int64))
    pred = _Segments(codes[gt_v.size:], prediction["t-start"].to_numpy(np.float64),
                     prediction["t-end"].to_numpy(np.float64),
                     np.zeros(pr_v.size, dtype=np.int64),
                     prediction["score"].to_numpy(np.float64))
    return gt, pred, _group_gt(gt, int(codes.max(initial=-1)) + 1)


def compute_average_precision_detection(ground_truth: pd.DataFrame, prediction: pd.DataFrame,
                                        tiou_thresholds: Sequence[float] = np.linspace(
                                            0.1, 0.5, 5)) -> np.ndarray:
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
    ap, _ = _average_precision(pred, gt, groups, 1, thr)
    return ap[:, 0]


def compute_topkx_recall_detection(ground_truth: pd.DataFrame, prediction: pd.DataFrame,
                                   tiou_thresholds: Sequence[float] = np.linspace(0.1, 0.5, 5),
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
    hits = _topkx_hits(pred, gt, groups, 1, thr, top_k)
    return hits[0].astype(np.float64) / len(ground_truth)


# --------------------------------------------------------------------------------------------
# Evaluator
# --------------------------------------------------------------------------------------------
class ANETdetection:
    """ActivityNet-style temporal detection evaluator: mAP per tIoU and Recall@kx (§6.2).

    ``mode`` selects whose rules are used. Everything not listed for a mode is as upstream.

    * ``'upstream'`` (default): the original ActionFormer evaluator, number for number. GT is
      the split of the JSON (every video of the split, also videos without features), cleaned
      by ``remove_duplicate_annotations`` (tol 1e-3 s); labels are integer ``label`` fields
      (``label_id``); the classes are the sorted labels present in the GT; prediction labels
      are remapped in one pass and labels absent from the GT are left raw, so a raw value that
      happens to be a valid class index is scored as that class (§9 item 21); Recall@kx is
      class-averaged with tIoU >= threshold.
    * ``'anet_official'``: the official ActivityNet ``eval_detection.py`` rules. GT labels are
      the class *names* (the ``label`` field of each event; integer prediction labels are
      translated to names with the JSON's ``label_id -> label`` table), no de-duplication,
      classes indexed in order of first appearance in the split (the official
      ``activity_index``; it changes only the order of the mean over classes). A prediction
      whose class is absent from the GT split is dropped (counted in a printed note): the
      official code builds its prediction table with ``activity_index[label]``, which (to our
      reading) raises ``KeyError`` on such a label, so dropping gives the official number on
      every input the official code accepts. Not replicated: the blocked-video list that the
      official code downloads, its prediction-file field checks, and its case-sensitive
      ``subset == split`` comparison (we keep upstream's ``subset.lower() == split``).
    * ``'epic_official'``: predictions whose class is absent from the GT split are dropped
      (instead of colliding with a class index; the official EPIC-KITCHENS-100 code keeps
      upstream's collision, see docs/metrics.md); GT is not de-duplicated (the official code
      reads every annotation row).
    * ``'ego4d_official'``: the Ego4D moment-queries evaluators (``MQ/Evaluation/ego4d``:
      ``eval_detection.py`` for mAP, ``get_retrieval_performance.py`` for Recall@kx). GT is
      not de-duplicated (duplicate and zero-length segments count), classes are indexed in
      order of first appearance, predictions of a class absent from the GT split are dropped;
      mAP as upstream otherwise. Recall@kx on the evaluator's fixed grid (k = 1..5, tIoU 0.3 /
      0.5 / 0.7, ``recall_tiou_thresholds``): per (video, class) the first k x n_gt
      predictions in input order, a GT counts when some tIoU is strictly ``>`` the threshold,
      with tIoU = intersection / (max end - min start), pooled over all GT instances (sum of
      hits / number of GT). A GT video without any prediction counts its segments as misses
      (the official code raises ``KeyError`` there).

    ``tiou_thresholds=None`` gives the mode's thresholds: the original's default
    ``np.linspace(0.1, 0.5, 5)`` for upstream, ``OFFICIAL_TIOU_THRESHOLDS`` for the official
    modes (eval.py passes ``mode_tiou_thresholds(mode, dataset thresholds)``). ``top_k=None``
    gives ``(1, 5)``, or ``(1, 2, 3, 4, 5)`` in ``ego4d_official``.
    ``remove_duplicates`` overrides the mode's de-duplication choice.

    Deviations from the original in every mode (none changes a number on valid input):
    ``num_workers`` is capped at ``os.cpu_count()`` and unused (the vectorised matching is
    faster than starting joblib workers); a DataFrame passed to ``evaluate`` is not modified;
    NaN scores or boundaries raise ``ValueError`` naming the video; an empty GT split raises
    ``ValueError`` listing the subsets present; an empty prediction set gives zeros and one
    message instead of one warning per class; prediction columns are read as float64.
    """

    def __init__(self, ant_file: str, split: Optional[str] = None,
                 tiou_thresholds: Optional[Sequence[float]] = None,
                 top_k: Optional[Sequence[int]] = None, label: str = "label_id",
                 label_offset: int = 0, num_workers: int = 8,
                 dataset_name: Optional[str] = None, *, mode: str = "upstream",
                 remove_duplicates: Optional[bool] = None) -> None:
        if tiou_thresholds is None:
            tiou_thresholds = mode_tiou_thresholds(mode, UPSTREAM_TIOU_THRESHOLDS)
        elif mode not in EVAL_MODES:
            raise ValueError(f"unknown evaluation mode '{mode}'; expected one of {EVAL_MODES}")
        ego4d = mode == "ego4d_official"
        if top_k is None:
            top_k = EGO4D_RECALL_TOP_K if ego4d else (1, 5)
        self.mode = mode
        self.tiou_thresholds = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)
        self.recall_tiou_thresholds = (np.asarray(EGO4D_RECALL_TIOU_THRESHOLDS) if ego4d
                                       else self.tiou_thresholds)
        self.top_k = tuple(int(k) for k in top_k)
        if not self.top_k or min(self.top_k) < 1:
            raise ValueError(f"top_k must be positive integers, got {top_k}")
        self.ap: Optional[np.ndarray] = None
        self.recall: Optional[np.ndarray] = None
        self.label = label
        self.label_offset = label_offset
        self.split = split
        self.ant_file = ant_file
        self.num_workers = max(1, min(int(num_workers), os.cpu_count() or 1))
        self.dataset_name = (dataset_name if dataset_name is not None
                             else os.path.basename(ant_file).replace(".json", ""))
        dedup = (mode not in _NO_DEDUP_MODES) if remove_duplicates is None else remove_duplicates
        names = mode == "anet_official"
        gt, subsets = _read_gt_rows(ant_file, split, label, label_offset, dedup, names=names)
        if len(gt) == 0:
            raise ValueError(
                f"no ground-truth segments for split '{split}' in '{ant_file}' (subsets present: "
                f"{subsets}; the split is compared with subset.lower())")
        if mode in _FIRST_APPEARANCE_MODES:
            uniq = list(dict.fromkeys(gt["label"].tolist()))  # order of first appearance
        else:
            uniq = sorted(gt["label"].unique().tolist())
        self._id_to_name = self._label_names(ant_file, label) if names else None
        self.activity_index: Dict[Any, int] = {raw: i for i, raw in enumerate(uniq)}
        gt["label"] = gt["label"].map(self.activity_index)
        self.ground_truth = gt
        self._gt_vid = gt["video-id"].to_numpy(dtype=object)
        self._gt_start = gt["t-start"].to_numpy(np.float64)
        self._gt_end = gt["t-end"].to_numpy(np.float64)
        self._gt_cls = gt["label"].to_numpy(np.int64)

    @staticmethod
    def _label_names(ant_file: str, label: str) -> Dict[int, str]:
        """``label_id -> name`` over the whole JSON (translates model outputs to names)."""
        table: Dict[int, str] = {}
        database = _database(_read_json(ant_file, "ground-truth annotation"), ant_file)
        for info in database.values():
            for event in info.get("annotations", []):
                if "label" in event and label in event:
                    try:
                        table.setdefault(int(event[label]), event["label"])
                    except (TypeError, ValueError):
                        pass
        return table

    # ---------------------------------------------------------------------------------------
    def _prediction_columns(self, preds: Any) -> Dict[str, np.ndarray]:
        if isinstance(preds, pd.DataFrame):
            missing = [k for k in PRED_COLUMNS if k not in preds.columns]
            if missing:
                raise KeyError(f"prediction DataFrame lacks column(s) {missing}; "
                               f"expected {list(PRED_COLUMNS)}")
            cols = {k: preds[k].to_numpy() for k in PRED_COLUMNS}
        elif isinstance(preds, str):
            if not os.path.isfile(preds):
                raise FileNotFoundError(f"prediction file not found: '{preds}'")
            return self._prediction_columns(load_pred_seg_from_json(preds))
        elif isinstance(preds, Mapping):
            missing = [k for k in PRED_COLUMNS if k not in preds]
            if missing:
                raise KeyError(f"prediction dict lacks key(s) {missing}; "
                               f"expected {list(PRED_COLUMNS)}")
            cols = {k: _to_numpy(preds[k]) for k in PRED_COLUMNS}
        else:
            raise TypeError("preds must be a DataFrame, a JSON file path or a dict with keys "
                            f"{list(PRED_COLUMNS)}, got {type(preds).__name__}")
        sizes = {k: int(np.asarray(v).reshape(-1).size) for k, v in cols.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"prediction columns have different lengths: {sizes}")
        out = {k: np.asarray(v).reshape(-1) for k, v in cols.items()}
        out["video-id"] = out["video-id"].astype(object)
        for k in ("t-start", "t-end", "score"):
            try:
                out[k] = out[k].astype(np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(f"prediction column '{k}' is not numeric: {err}") from None
            bad = np.nonzero(np.isnan(out[k]))[0]
            if bad.size:
                vid = out["video-id"][bad[0]]
                raise ValueError(f"prediction '{k}' is NaN for video '{vid}' (row {bad[0]}; "
                                 f"{bad.size} NaN row(s) in total)")
        return out

    def _class_of_predictions(self, labels: np.ndarray) -> Tuple[np.ndarray, int]:
        """Class index per prediction (-1: not evaluated) and the number of unknown labels."""
        n_cls = len(self.activity_index)
        series = pd.Series(labels)
        if self._id_to_name is not None and series.size and not _is_string_array(labels):
            names = series.map(self._id_to_name)  # label_id -> class name
            series = names.where(names.notna(), series)
        mapped = series.map(self.activity_index)
        found = mapped.notna().to_numpy()
        cls = np.full(series.size, -1, dtype=np.int64)
        cls[found] = mapped[found].to_numpy(np.int64)
        n_unknown = int((~found).sum())
        if self.mode == "upstream" and n_unknown:
            # single-pass replace: an unmapped raw label stays as is and is scored as the class
            # with that index when it is one (REFERENCE.md §6.2, §9 item 21); non-numbers
            # (e.g. strings) never equal a class index
            rest = series[~found].to_numpy()
            raw = np.array([float(x) if isinstance(x, (int, float, np.number))
                            and not isinstance(x, (bool, np.bool_)) else np.nan for x in rest]
                           ) if rest.dtype == object else rest.astype(np.float64)
            ok = np.isfinite(raw) & (raw == np.floor(raw)) & (raw >= 0) & (raw < n_cls)
            idx = np.nonzero(~found)[0][ok]
            cls[idx] = raw[ok].astype(np.int64)
        return cls, n_unknown

    def _print_missing(self, has_pred: np.ndarray) -> None:
        for raw, c in self.activity_index.items():
            if not has_pred[c]:
                print("Warning: No predictions of label '%s' were provdied." % raw)

    def evaluate(self, preds: Any, verbose: bool = True
                 ) -> Tuple[np.ndarray, float, np.ndarray]:
        """Scores a set of detections.

        Args:
            preds: a DataFrame with columns ``video-id, t-start, t-end, label, score``; a dict
                of such columns (lists, NumPy arrays or tensors: the eval loop's results); or
                the path of a prediction JSON (``load_pred_seg_from_json``). N rows; labels
                are raw ``label_id``s (or class names in ``anet_official`` mode).
            verbose: print the report (§6.2 format; non-upstream modes name themselves).

        Returns:
            ``(mAP (T,), average_mAP, mRecall (R, K))``; per-class values are kept in
            ``self.ap`` (T, C) and ``self.recall`` (R, K, C). The recall thresholds
            ``self.recall_tiou_thresholds`` (R) are the mAP ones except in ``ego4d_official``
            (0.3, 0.5, 0.7).
        """
        cols = self._prediction_columns(preds)
        thr = self.tiou_thresholds
        n_cls = len(self.activity_index)
        self.ap = None
        cls, n_unknown = self._class_of_predictions(cols["label"])
        if n_unknown and self.mode != "upstream":
            print(f"Note: {n_unknown} prediction(s) with a class absent from the ground truth "
                  f"were dropped ({self.mode} evaluation).")
        codes, _ = pd.factorize(np.concatenate([self._gt_vid, cols["video-id"]]))
        codes = codes.astype(np.int64)
        n_vid = int(codes.max(initial=-1)) + 1
        gt = _Segments(codes[:self._gt_vid.size], self._gt_start, self._gt_end, self._gt_cls)
        pred = _Segments(codes[self._gt_vid.size:], cols["t-start"], cols["t-end"], cls,
                         cols["score"])
        groups = _group_gt(gt, n_vid)
        n_gts = np.bincount(gt.cls, minlength=n_cls)

        no_preds = cols["score"].size == 0
        if no_preds:
            print(f"Warning: no predictions were provided for {self.dataset_name}; "
                  "all metrics are zero.")
        self.ap, has_pred = _average_precision(pred, gt, groups, n_cls, thr)
        if not no_preds:
            self._print_missing(has_pred)
        ego4d = self.mode == "ego4d_official"
        rthr = self.recall_tiou_thresholds
        hits = _topkx_hits(pred, gt, groups, n_cls, rthr, self.top_k, official_ego4d=ego4d)
        if not no_preds and self.mode == "upstream":
            self._print_missing(has_pred)  # the original warns once per wrapper
        recall = np.zeros((rthr.size, len(self.top_k), n_cls))
        for c in range(n_cls):
            if has_pred[c]:
                recall[..., c] = hits[c].astype(np.float64) / n_gts[c]
        self.recall = recall

        mAP = self.ap.mean(axis=1)
        if ego4d:
            mRecall = hits.sum(axis=0).astype(np.float64) / n_gts.sum()
        else:
            mRecall = self.recall.mean(axis=2)
        average_mAP = mAP.mean()
        if verbose:
            self._report(mAP, average_mAP, mRecall)
        return mAP, average_mAP, mRecall

    def _report(self, mAP: np.ndarray, average_mAP: float, mRecall: np.ndarray) -> None:
        if self.mode == "upstream":
            print("[RESULTS] Action detection results on {:s}.".format(self.dataset_name))
        else:
            print("[RESULTS] Action detection results on {:s} ({:s} evaluation).".format(
                self.dataset_name, self.mode))
        if self.mode != "ego4d_official":  # the original's block: mAP and recall per tIoU
            block = ""
            for tiou, tiou_mAP, tiou_mRecall in zip(self.tiou_thresholds, mAP, mRecall):
                block += "\n|tIoU = {:.2f}: ".format(tiou)
                block += "mAP = {:>4.2f} (%) ".format(tiou_mAP * 100)
                block += self._recall_text(tiou_mRecall)
            print(block)
            print("Average mAP: {:>4.2f} (%)".format(average_mAP * 100))
            return
        # Ego4D: mAP and recall are on different tIoU grids, one block each
        print("".join("\n|tIoU = {:.2f}: mAP = {:>4.2f} (%) ".format(t, m * 100)
                      for t, m in zip(self.tiou_thresholds, mAP)))
        print("Average mAP: {:>4.2f} (%)".format(average_mAP * 100))
        print("".join("\n|tIoU = {:.2f}: ".format(t) + self._recall_text(r)
                      for t, r in zip(self.recall_tiou_thresholds, mRecall)))

    def _recall_text(self, recall_row: np.ndarray) -> str:
        return "".join("Recall@{:d}x = {:>4.2f} (%) ".format(k, r * 100)
                       for k, r in zip(self.top_k, recall_row))


def _to_numpy(values: Any) -> np.ndarray:
    """Lists, NumPy arrays and tensors (via ``.tolist()`` like the original) to NumPy."""
    if isinstance(values, np.ndarray):
        return values
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor
        return np.asarray(values.detach().cpu().tolist())
    if isinstance(values, (list, tuple)):
        return np.asarray(values, dtype=object if values and isinstance(values[0], str)
                          else None)
    return np.asarray(values)


def _is_string_array(values: np.ndarray) -> bool:
    if values.dtype.kind in "US":
        return True
    return values.dtype == object and values.size > 0 and isinstance(values[0], str)
