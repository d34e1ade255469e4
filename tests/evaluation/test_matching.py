"""The fast matchers of libs/evaluation/matching.py equal their plain loops on random cases.

Cases are tie-heavy (integer and 0.1 s grids, repeated scores), with duplicate and
zero-length GT, point predictions on point GT (tIoU 0 / 0), predictions of no class (-1) and
of videos without GT, so every branch of the fast paths is exercised.
"""
from __future__ import annotations

import numpy as np
import pytest

from libs.evaluation.average_precision import class_sorted_rows
from libs.evaluation.matching import (Segments, greedy_true_positives,
                                      greedy_true_positives_plain, group_gt, topkx_hits,
                                      topkx_hits_plain)

THR = np.array([0.5, 0.1, 0.3, 0.7, 0.95, 0.30000000000000004])  # unsorted on purpose


def _segments(rng, n, n_vid, n_cls, grid, with_score):
    start = np.round(rng.integers(0, 400, n) / grid, 1)
    length = np.round(rng.integers(0, 60, n) / grid, 1) * (rng.random(n) > 0.1)  # 10 % points
    cls = rng.integers(-1 if with_score else 0, n_cls, n)
    score = np.round(rng.random(n), 1) if with_score else None
    seg = Segments(rng.integers(0, n_vid, n).astype(np.int64), start, start + length,
                   cls.astype(np.int64), score)
    if not with_score:  # duplicate some GT rows exactly
        dup = np.nonzero(rng.random(n) < 0.15)[0]
        src = rng.integers(0, n, dup.size)
        seg.start[dup], seg.end[dup], seg.vid[dup], seg.cls[dup] = (
            seg.start[src], seg.end[src], seg.vid[src], seg.cls[src])
    return seg


def _case(seed):
    rng = np.random.default_rng(seed)
    n_vid, n_cls = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    grid = float(rng.choice([1.0, 10.0]))
    gt = _segments(rng, int(rng.integers(1, 120)), n_vid, n_cls, grid, with_score=False)
    # predictions may sit in one more video that has no GT
    pred = _segments(rng, int(rng.integers(0, 500)), n_vid + 1, n_cls, grid, with_score=True)
    # plus exact copies of a few GT rows, the points among them (tIoU 0 / 0)
    points = np.nonzero(gt.start == gt.end)[0][:3]
    src = np.concatenate([points, rng.integers(0, gt.vid.size, 5)])
    pred = Segments(np.r_[pred.vid, gt.vid[src]], np.r_[pred.start, gt.start[src]],
                    np.r_[pred.end, gt.end[src]], np.r_[pred.cls, gt.cls[src]],
                    np.r_[pred.score, np.round(rng.random(src.size), 1)])
    return gt, pred, n_vid + 1, n_cls


@pytest.mark.parametrize("seed", range(12))
def test_greedy_matcher_fast_equals_plain(seed):
    gt, pred, n_vid, n_cls = _case(seed)
    groups = group_gt(gt, n_vid)
    keep = np.nonzero(pred.cls >= 0)[0]
    local, _ = class_sorted_rows(pred.cls[keep], pred.score[keep], n_cls)
    rng = np.random.default_rng(seed + 100)
    for rows in (keep[local], rng.permutation(keep)):  # score order and any other order
        fast = greedy_true_positives(pred, gt, groups, rows, THR)
        plain = greedy_true_positives_plain(pred, gt, rows, THR)
        assert fast.shape == (THR.size, rows.size)
        assert np.array_equal(fast, plain)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ego4d", [False, True])
def test_recall_counter_fast_equals_plain(seed, ego4d):
    gt, pred, n_vid, n_cls = _case(seed)
    groups = group_gt(gt, n_vid)
    for top_k in ((1, 5), (1, 2, 3, 4, 5), (3,)):
        fast = topkx_hits(pred, gt, groups, n_cls, THR, top_k, ego4d=ego4d)
        plain = topkx_hits_plain(pred, gt, n_cls, THR, top_k, ego4d=ego4d)
        assert fast.shape == (n_cls, THR.size, len(top_k))
        assert np.array_equal(fast, plain)


def test_cases_reach_the_interesting_branches():
    # over the seeds: many matches, and point predictions on point GT of their class (NaN)
    tp_total, nan_pairs = 0, 0
    for seed in range(12):
        gt, pred, _, _ = _case(seed)
        keep = np.nonzero(pred.cls >= 0)[0]
        tp_total += int(greedy_true_positives_plain(pred, gt, keep, THR).sum())
        for i in np.nonzero(pred.start == pred.end)[0]:
            nan_pairs += int(np.any((gt.start == gt.end) & (gt.start == pred.start[i])
                                    & (gt.vid == pred.vid[i]) & (gt.cls == pred.cls[i])))
    assert tp_total > 100 and nan_pairs > 0


def test_plain_greedy_hand_case():
    # one video, GT [0, 10] twice (a duplicate) and the point [20, 20]; predictions in this
    # order: [0, 10] (takes GT 0), [0, 10] (GT 0 locked -> takes the duplicate GT 1),
    # [0, 10] (both locked, the point has tIoU 0 -> FP), [20, 20] (0 / 0 = NaN -> TP)
    gt = Segments(np.zeros(3, np.int64), np.array([0.0, 0.0, 20.0]),
                  np.array([10.0, 10.0, 20.0]), np.zeros(3, np.int64))
    pred = Segments(np.zeros(4, np.int64), np.array([0.0, 0.0, 0.0, 20.0]),
                    np.array([10.0, 10.0, 10.0, 20.0]), np.zeros(4, np.int64),
                    np.array([0.9, 0.8, 0.7, 0.6]))
    rows = np.arange(4)
    want = np.array([[True, True, False, True]])
    assert np.array_equal(greedy_true_positives_plain(pred, gt, rows, np.array([0.5])), want)
    assert np.array_equal(greedy_true_positives(pred, gt, group_gt(gt, 1), rows,
                                                np.array([0.5])), want)
