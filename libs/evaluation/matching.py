"""Matching predictions to ground truth: the greedy AP matcher and the top-k x recall counter,
each as a fast vectorised function and as the plain loop it must equal.

The plain versions (``*_plain``) are the readable definition (docs/reference.md §6.3 step 4,
§6.4, the Ego4D retrieval evaluator); the fast ones give the same arrays
(tests/evaluation/test_matching.py). How the fast path stays exact:

* a prediction can only match GT of its own class and video, so the greedy, score-ordered GT
  locking runs per (class, video) group. All groups advance together: step ``r`` handles the
  ``r``-th prediction of every group at every tIoU threshold at once (the groups own disjoint
  GT, so their steps are independent). Predictions whose best tIoU is below every threshold,
  or whose video has no GT of their class, are false positives and never enter the loop;
* the tIoU of a prediction against the GTs of its video is computed with the original's
  element-wise formula and ordered with ``np.argsort(tiou)[::-1]`` on exactly the same
  length-``n_gt`` rows (a row-wise argsort of a 2-D array runs the same 1-D kernel per row), so
  ties between GTs are broken as in the original (NumPy's default sort is not stable, §9
  item 33).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .tiou import retrieval_tiou_rows, tiou_rows

__all__ = ["Segments", "Groups", "group_gt", "locate", "greedy_true_positives",
           "greedy_true_positives_plain", "topkx_hits", "topkx_hits_plain"]

Piece = Tuple[np.ndarray, np.ndarray, np.ndarray]  # positions, GT candidates, valid flags


@dataclass
class Segments:
    """Column arrays of GT or predictions; ``cls`` is the class index (-1: not evaluated)."""
    vid: np.ndarray    # (N,) int64 video code
    start: np.ndarray  # (N,) float64
    end: np.ndarray    # (N,) float64
    cls: np.ndarray    # (N,) int64
    score: Optional[np.ndarray] = None  # (N,) float64, predictions only


@dataclass
class Groups:
    """GT grouped by (class, video); predictions located in those groups."""
    gt_order: np.ndarray   # GT row ids sorted by group, file order inside a group
    keys: np.ndarray       # (G,) sorted group keys cls * n_vid + vid
    start: np.ndarray      # (G,) first position of each group in gt_order
    count: np.ndarray      # (G,) number of GT in each group
    cls: np.ndarray        # (G,) class of each group
    n_vid: int             # video codes are < n_vid (GT and predictions share the codes)


def group_gt(gt: Segments, n_vid: int) -> Groups:
    """Groups the GT rows by (class, video), file order kept inside each group."""
    n_vid = max(int(n_vid), 1)
    key = gt.cls * n_vid + gt.vid
    order = np.argsort(key, kind="stable")
    keys, start, count = np.unique(key[order], return_index=True, return_counts=True)
    return Groups(order, keys, start, count, keys // n_vid, n_vid)


def locate(groups: Groups, key: np.ndarray) -> np.ndarray:
    """Group index of each key ``cls * n_vid + vid``, -1 where that (class, video) has no GT."""
    if groups.keys.size == 0:
        return np.full(key.shape, -1, dtype=np.int64)
    pos = np.searchsorted(groups.keys, key)
    pos_c = np.minimum(pos, groups.keys.size - 1)
    return np.where(groups.keys[pos_c] == key, pos_c, -1)


# --------------------------------------------------------------------------- greedy AP matcher
def greedy_true_positives_plain(pred: Segments, gt: Segments, rows: np.ndarray,
                                thr: np.ndarray) -> np.ndarray:
    """True positives of the score-ordered greedy matching, one prediction at a time.

    Each prediction, in ``rows`` order, walks the GT of its (class, video) by descending tIoU
    (``np.argsort(tiou)[::-1]``, GT in file order) at every threshold: a tIoU below the
    threshold stops the walk (false positive), a GT locked at that threshold is skipped, the
    first free one is locked (true positive). NaN tIoUs (0 / 0) never stop the walk.

    Args:
        pred, gt: column arrays with class indices in ``cls``.
        rows: (P,) prediction rows in processing order (class by class, score descending).
        thr: (T,) tIoU thresholds.

    Returns:
        (T, P) bool, column p for ``rows[p]``: the prediction took a GT at that threshold.
    """
    tp = np.zeros((thr.size, rows.size), dtype=bool)
    locked = np.zeros((thr.size, gt.vid.size), dtype=bool)
    for p, r in enumerate(rows):
        ids = np.nonzero((gt.cls == pred.cls[r]) & (gt.vid == pred.vid[r]))[0]
        if ids.size == 0:
            continue
        tiou = tiou_rows(pred.start[r:r + 1], pred.end[r:r + 1], gt.start[ids][None],
                         gt.end[ids][None])[0]
        walk = tiou.argsort()[::-1]
        for t, th in enumerate(thr):
            for j in walk:
                if tiou[j] < th:
                    break
                if not locked[t, ids[j]]:
                    locked[t, ids[j]] = True
                    tp[t, p] = True
                    break
    return tp


def greedy_true_positives(pred: Segments, gt: Segments, groups: Groups, rows: np.ndarray,
                          thr: np.ndarray) -> np.ndarray:
    """``greedy_true_positives_plain`` with all (class, video) groups advanced together.

    Args:
        pred, gt, rows, thr: as for the plain version (every pred row in ``rows`` valid).
        groups: ``group_gt(gt, ...)``.

    Returns:
        (T, P) bool, equal to ``greedy_true_positives_plain(pred, gt, rows, thr)``.
    """
    tp = np.zeros((thr.size, rows.size), dtype=bool)
    gidx = locate(groups, pred.cls[rows] * groups.n_vid + pred.vid[rows])
    with_gt = np.nonzero(gidx >= 0)[0]  # positions in `rows`; all others are FP everywhere
    if with_gt.size == 0:
        return tp
    dummy = gt.vid.size  # padding GT id, always locked
    pieces = _candidate_prefixes(pred, gt, groups, rows, gidx, with_gt, thr, dummy)
    locked = np.zeros((dummy + 1, thr.size), dtype=bool)
    locked[dummy] = True
    for parts in pieces.values():
        _lock_in_rank_order(parts, gidx, locked, tp)
    return tp


def _candidate_prefixes(pred: Segments, gt: Segments, groups: Groups, rows: np.ndarray,
                        gidx: np.ndarray, with_gt: np.ndarray, thr: np.ndarray, dummy: int
                        ) -> Dict[int, List[Piece]]:
    """Per padded width: prediction positions, their GT in walk order and the valid prefix.

    Walking GTs in descending tIoU order, the original stops at the first tIoU < thr; the GTs
    before that point are the candidates. The reversed argsort puts NaNs (which do not stop the
    walk) first and then descends, so "not below" is already a prefix.
    """
    n_of = groups.count[gidx[with_gt]]
    pieces: Dict[int, List[Piece]] = {}
    for n in np.unique(n_of):
        pos = with_gt[n_of == n]
        g = gidx[pos]
        gt_ids = groups.gt_order[groups.start[g][:, None] + np.arange(n)]  # (m, n)
        r = rows[pos]
        tiou = tiou_rows(pred.start[r], pred.end[r], gt.start[gt_ids], gt.end[gt_ids])
        order = np.argsort(tiou, axis=1)[:, ::-1]  # same per-row kernel as the original
        tiou_sorted = np.take_along_axis(tiou, order, axis=1)
        valid = ~(tiou_sorted[:, :, None] < thr[None, None, :])  # (m, n, T)
        relevant = valid[:, 0, :].any(axis=1)
        if not relevant.any():
            continue
        pref = np.take_along_axis(gt_ids, order, axis=1)[relevant]
        width = 1 << (int(n) - 1).bit_length()
        valid_r = valid[relevant]
        if width > n:  # pad to a power of two so few buckets share one loop
            pref = np.concatenate(
                [pref, np.full((pref.shape[0], width - n), dummy, dtype=pref.dtype)], axis=1)
            valid_r = np.concatenate(
                [valid_r, np.zeros((pref.shape[0], width - n, thr.size), dtype=bool)], axis=1)
        pieces.setdefault(width, []).append((pos[relevant], pref, valid_r))
    return pieces


def _lock_in_rank_order(parts: List[Piece], gidx: np.ndarray, locked: np.ndarray,
                        tp: np.ndarray) -> None:
    """Runs the greedy locking for one width: step r takes the r-th prediction of every
    group (processing order) and gives it the first unlocked candidate at every threshold."""
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


# --------------------------------------------------------------------------- top-k x recall
def topkx_hits_plain(pred: Segments, gt: Segments, n_classes: int, thr: np.ndarray,
                     top_k: Sequence[int], ego4d: bool = False) -> np.ndarray:
    """(C, T, K) number of GT found among the first k x n_gt predictions of their video.

    Per (class, video) with GT: the video's predictions of the class, sorted by
    ``np.argsort(score)[::-1]`` on their scores in input order (upstream) or kept in input
    order (``ego4d``); a GT is found at threshold t and k when one of the first k x n_gt has
    tIoU >= t (upstream) or retrieval tIoU > t (``ego4d``).
    """
    hits = np.zeros((n_classes, thr.size, len(top_k)), dtype=np.int64)
    for c in range(n_classes):
        for v in np.unique(gt.vid[gt.cls == c]):
            ids = np.nonzero((gt.cls == c) & (gt.vid == v))[0]
            cand = np.nonzero((pred.cls == c) & (pred.vid == v))[0]
            if cand.size == 0:
                continue
            if not ego4d:
                cand = cand[pred.score[cand].argsort()[::-1]]
            cand = cand[:max(top_k) * ids.size]
            tiou_of = retrieval_tiou_rows if ego4d else tiou_rows
            tiou = tiou_of(pred.start[cand], pred.end[cand], gt.start[ids][None],
                           gt.end[ids][None])
            for t, th in enumerate(thr):
                hit = tiou > th if ego4d else tiou >= th
                for ki, k in enumerate(top_k):
                    hits[c, t, ki] += int(hit[:k * ids.size].any(axis=0).sum())
    return hits


def topkx_hits(pred: Segments, gt: Segments, groups: Groups, n_classes: int,
               thr: np.ndarray, top_k: Sequence[int], ego4d: bool = False) -> np.ndarray:
    """``topkx_hits_plain`` for all (class, video) groups at once (§6.4).

    Returns:
        (C, T, K) int64, equal to ``topkx_hits_plain(pred, gt, n_classes, thr, top_k, ego4d)``.
    """
    hits = np.zeros((n_classes, thr.size, len(top_k)), dtype=np.int64)
    keep = np.nonzero(pred.cls >= 0)[0]
    if keep.size == 0 or groups.keys.size == 0:
        return hits
    gidx = locate(groups, pred.cls[keep] * groups.n_vid + pred.vid[keep])
    sel = gidx >= 0
    rows, grp = keep[sel], gidx[sel]
    if rows.size == 0:
        return hits
    # group-contiguous, input order inside a group (what groupby().get_group() yields)
    order = np.lexsort((rows, grp))
    rows, grp = rows[order], grp[order]
    rank = _recall_ranks(pred.score, rows, grp, by_score=not ego4d)
    top = rank < max(top_k) * groups.count[grp]
    _add_topk_hits(hits, pred, gt, groups, (rows[top], grp[top], rank[top]), thr, top_k,
                   ego4d)
    return hits


def _recall_ranks(score: np.ndarray, rows: np.ndarray, grp: np.ndarray, by_score: bool
                  ) -> np.ndarray:
    """Rank of each prediction inside its group: input order, or per group
    ``np.argsort(scores)[::-1]`` on the group's scores in input order (groups of equal size
    are stacked and sorted row-wise, the same 1-D kernel per row)."""
    starts = np.nonzero(np.r_[True, grp[1:] != grp[:-1]])[0]
    sizes = np.diff(np.r_[starts, rows.size])
    if not by_score:
        return np.arange(rows.size) - np.repeat(starts, sizes)
    rank = np.empty(rows.size, dtype=np.int64)
    size_of = np.repeat(sizes, sizes)
    for p in np.unique(sizes):
        idx = np.nonzero(size_of == p)[0].reshape(-1, p)  # (groups, p), rows in order
        srt = np.argsort(score[rows[idx]], axis=1)[:, ::-1]
        rk = np.empty_like(srt)
        np.put_along_axis(rk, srt, np.arange(p)[None, :], axis=1)
        rank[idx] = rk
    return rank


def _add_topk_hits(hits: np.ndarray, pred: Segments, gt: Segments, groups: Groups,
                   selected: Tuple[np.ndarray, np.ndarray, np.ndarray], thr: np.ndarray,
                   top_k: Sequence[int], ego4d: bool) -> None:
    """Adds the found GT of the ranked, group-contiguous predictions ``(rows, grp, rank)``."""
    rows, grp, rank = selected
    n_gt = groups.count[grp]
    ks = np.asarray(top_k, dtype=np.int64)
    tiou_of = retrieval_tiou_rows if ego4d else tiou_rows
    for n in np.unique(n_gt):
        m = n_gt == n
        r, g, rk = rows[m], grp[m], rank[m]  # still group-contiguous
        gt_ids = groups.gt_order[groups.start[g][:, None] + np.arange(n)]
        tiou = tiou_of(pred.start[r], pred.end[r], gt.start[gt_ids], gt.end[gt_ids])
        if ego4d:
            hit = tiou[:, :, None] > thr[None, None, :]
        else:
            hit = tiou[:, :, None] >= thr[None, None, :]
        big = np.iinfo(np.int64).max
        rank_hit = np.where(hit, rk[:, None, None], big)            # (m, n, T)
        gstart = np.nonzero(np.r_[True, g[1:] != g[:-1]])[0]
        best = np.minimum.reduceat(rank_hit, gstart, axis=0)          # (groups, n, T)
        found = best[:, :, :, None] < (ks * n)[None, None, None, :]   # (groups, n, T, K)
        np.add.at(hits, groups.cls[g[gstart]], found.sum(axis=1))
