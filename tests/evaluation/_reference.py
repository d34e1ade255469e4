"""Test oracle: a plain-Python, row-by-row transcription of docs/reference.md §6.2-6.4.

Deliberately naive (dicts and loops, one prediction at a time) and independent of
libs.evaluation; it makes the same NumPy sort calls on the same arrays as the original
(``np.argsort(x)[::-1]``), so ties fall the same way.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

Row = Tuple[str, float, float, int]          # video, start, end, class index
PredRow = Tuple[str, float, float, int, float]  # video, start, end, class index, score


def _tiou(s: float, e: float, gts: List[Tuple[float, float]]) -> np.ndarray:
    out = []
    for gs, ge in gts:
        inter = max(min(e, ge) - max(s, gs), 0.0)
        union = (ge - gs) + (e - s) - inter
        out.append(inter / union)
    return np.array(out, dtype=np.float64)


def _retrieval_tiou(s: float, e: float, gts: List[Tuple[float, float]]) -> np.ndarray:
    """Ego4D retrieval tIoU: intersection over (max end - min start); NaN for 0 / 0."""
    out = []
    for gs, ge in gts:
        inter = max(0.0, min(e, ge) - max(s, gs))
        span = max(0.0, max(e, ge) - min(s, gs))
        out.append(inter / span if span > 0 else float("nan"))
    return np.array(out, dtype=np.float64)


def _interp(prec: List[float], rec: List[float]) -> float:
    mprec = [0.0] + list(prec) + [0.0]
    mrec = [0.0] + list(rec) + [1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    terms = [(mrec[i] - mrec[i - 1]) * mprec[i] for i in range(1, len(mrec))
             if mrec[i] != mrec[i - 1]]
    return float(np.sum(np.array(terms, dtype=np.float64)))


def reference_ap(gt: List[Row], preds: List[PredRow], n_cls: int,
                 thr: Sequence[float]) -> np.ndarray:
    ap = np.zeros((len(thr), n_cls))
    for c in range(n_cls):
        g = [r for r in gt if r[3] == c]
        p = [r for r in preds if r[3] == c]
        if not p:
            continue
        order = np.array([r[4] for r in p], dtype=np.float64).argsort()[::-1]
        p = [p[i] for i in order]
        by_vid: Dict[str, List[int]] = {}
        for i, r in enumerate(g):
            by_vid.setdefault(r[0], []).append(i)
        lock = [[False] * len(g) for _ in thr]
        tp = [[0.0] * len(p) for _ in thr]
        for k, (vid, s, e, _, _) in enumerate(p):
            ids = by_vid.get(vid)
            if not ids:
                continue
            tiou = _tiou(s, e, [(g[i][1], g[i][2]) for i in ids])
            srt = tiou.argsort()[::-1]
            for t, th in enumerate(thr):
                for j in srt:
                    if tiou[j] < th:
                        break
                    if lock[t][ids[j]]:
                        continue
                    lock[t][ids[j]] = True
                    tp[t][k] = 1.0
                    break
        for t in range(len(thr)):
            ctp, cfp, prec, rec = 0.0, 0.0, [], []
            for k in range(len(p)):
                ctp += tp[t][k]
                cfp += 1.0 - tp[t][k]
                rec.append(ctp / float(len(g)))
                prec.append(ctp / (ctp + cfp))
            ap[t, c] = _interp(prec, rec)
    return ap


def reference_hits(gt: List[Row], preds: List[PredRow], n_cls: int, thr: Sequence[float],
                   top_k: Sequence[int], strict: bool = False, sort: bool = True,
                   span_union: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(C, T, K) GT found among the first k x n_gt predictions, and (C,) GT counts.

    ``strict``: hit when tIoU > thr (else >=); ``sort``: predictions by score (else input
    order); ``span_union``: the Ego4D retrieval tIoU (else the union of the lengths)."""
    tiou_of = _retrieval_tiou if span_union else _tiou
    hits = np.zeros((n_cls, len(thr), len(top_k)))
    n_gt = np.zeros(n_cls)
    for c in range(n_cls):
        g = [r for r in gt if r[3] == c]
        n_gt[c] = len(g)
        for vid in dict.fromkeys(r[0] for r in g):
            gv = [(r[1], r[2]) for r in g if r[0] == vid]
            pv = [r for r in preds if r[3] == c and r[0] == vid]
            if not pv:
                continue
            if sort:
                order = np.array([r[4] for r in pv], dtype=np.float64).argsort()[::-1]
            else:
                order = np.arange(len(pv))
            top = [pv[i] for i in order[:max(top_k) * len(gv)]]
            mat = np.stack([tiou_of(r[1], r[2], gv) for r in top])
            for t, th in enumerate(thr):
                for ki, k in enumerate(top_k):
                    sub = mat[:k * len(gv)]
                    hit = sub > th if strict else sub >= th
                    hits[c, t, ki] += int((hit.sum(axis=0) > 0).sum())
    return hits, n_gt
