"""``mode='ego4d_official'`` against the rules of the official Ego4D moment-queries evaluators
(docs/metrics.md), and the official tIoU thresholds of every official mode.

Hand-worked cases pin (a) duplicate / zero-length GT kept, (b) the retrieval tIoU over
(max end - min start) with a strict ``>``, (c) a GT video without predictions counted as
misses, (d) the literal official thresholds; a row-by-row oracle covers random cases.
"""
from __future__ import annotations

import numpy as np
import pytest

from libs.evaluation import OFFICIAL_TIOU_THRESHOLDS, ANETdetection, mode_tiou_thresholds

from ._reference import reference_ap, reference_hits
from .test_metrics import preds_dict, write_gt

EGO4D = "ego4d_official"


def _ego4d(gt_file, **kw):
    return ANETdetection(gt_file, "test", mode=EGO4D, **kw)


# ------------------------------------------------------------------------- (b) retrieval tIoU
def test_retrieval_tiou_divides_by_the_span_and_is_strict(tmp_path):
    # GT [21.0, 56.4], prediction [26.3, 44.0]: intersection 17.7, max end - min start 35.4,
    # exactly 0.5 in float64 and in float32 (35.4 is 2 x 17.7 after rounding), so the
    # official strict `overlap > 0.5` fails. The union of the lengths,
    # (35.4 + 17.7) - 17.7, rounds to 35.39999..., giving 0.5000000000000001 (>= 0.5).
    assert (44.0 - 26.3) / (56.4 - 21.0) == 0.5
    f32 = np.float32
    assert (f32(44.0) - f32(26.3)) / (f32(56.4) - f32(21.0)) == f32(0.5)
    assert (44.0 - 26.3) / ((56.4 - 21.0) + (44.0 - 26.3) - (44.0 - 26.3)) > 0.5
    gt = write_gt(tmp_path / "g.json", {"v": [(21.0, 56.4, 0)]})
    rows = [("v", 26.3, 44.0, 0, 0.9)]
    _, _, rec = _ego4d(gt).evaluate(preds_dict(rows), verbose=False)
    # rows tIoU 0.3 / 0.5 / 0.7: found at 0.3 only, for every k
    np.testing.assert_array_equal(rec, [[1.0] * 5, [0.0] * 5, [0.0] * 5])
    # the eval loop's float32 columns against the float64 GT: float32(26.3) is
    # 26.299999237..., so the intersection is a little over 17.7 and the tIoU over 0.5: found
    # (the official code, fed the same values, decides the same way)
    assert float(f32(26.3)) < 26.3 and (44.0 - float(f32(26.3))) / (56.4 - 21.0) > 0.5
    as_f32 = {k: (v.astype(np.float32) if k in ("t-start", "t-end", "score") else v)
              for k, v in preds_dict(rows).items()}
    _, _, rec32 = _ego4d(gt).evaluate(as_f32, verbose=False)
    np.testing.assert_array_equal(rec32, [[1.0] * 5, [1.0] * 5, [0.0] * 5])
    # upstream (the original) counts it: union of lengths and >=
    _, _, rec_up = ANETdetection(gt, "test", tiou_thresholds=[0.5]).evaluate(
        preds_dict(rows), verbose=False)
    np.testing.assert_array_equal(rec_up, [[1.0, 1.0]])


# ------------------------------------------------------------------------- (a) GT kept as is
def test_duplicate_gt_segments_count(tmp_path):
    # two identical GT: the one prediction takes one of them -> prec [1], rec [1/2] -> AP 1/2
    # (upstream drops the duplicate -> AP 1). Retrieval: n_gt = 2, both GT columns have a
    # tIoU-1 prediction -> both found.
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 3), (0.0, 10.0, 3)]})
    preds = preds_dict([("a", 0.0, 10.0, 3, 0.9)])
    mAP, avg, rec = _ego4d(gt).evaluate(preds, verbose=False)
    assert mAP.tolist() == [0.5] * 5 and avg == 0.5
    np.testing.assert_array_equal(rec, np.ones((3, 5)))
    up, _, _ = ANETdetection(gt, "test").evaluate(preds, verbose=False)
    assert up.tolist() == [1.0] * 5


def test_zero_length_gt_segments_count(tmp_path):
    # GT [0, 10] and the point [30, 30]. p1 = GT1 (TP); p2 [29, 31] has intersection 0 with
    # the point -> FP. prec [1, 1/2], rec [1/2, 1/2] -> AP 1/2 (upstream drops the point as
    # shorter than 1e-3 s -> rec [1, 1] -> AP 1). Retrieval: the point is never found.
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 3), (30.0, 30.0, 3)]})
    preds = preds_dict([("a", 0.0, 10.0, 3, 0.9), ("a", 29.0, 31.0, 3, 0.8)])
    mAP, _, rec = _ego4d(gt).evaluate(preds, verbose=False)
    assert mAP.tolist() == [0.5] * 5
    np.testing.assert_array_equal(rec, np.full((3, 5), 0.5))
    up, _, rec_up = ANETdetection(gt, "test").evaluate(preds, verbose=False)
    assert up.tolist() == [1.0] * 5 and rec_up.tolist() == [[1.0, 1.0]] * 5


def test_point_prediction_on_point_gt(tmp_path):
    # both segments are the point 30: the detection tIoU is 0 / 0 = NaN, which never stops the
    # official greedy walk (`nan < thr` is False), so the prediction is a TP -> AP 1; the
    # retrieval tIoU is NaN too and `nan > thr` is False -> not found.
    gt = write_gt(tmp_path / "g.json", {"a": [(30.0, 30.0, 3)]})
    mAP, _, rec = _ego4d(gt).evaluate(preds_dict([("a", 30.0, 30.0, 3, 0.9)]), verbose=False)
    assert mAP.tolist() == [1.0] * 5
    assert not rec.any()


# ------------------------------------------------------------------------- (c) video w/o preds
def test_gt_video_without_predictions_counts_as_misses(tmp_path):
    # GT in a and b, predictions only for a (the official retrieval code raises KeyError on
    # b): b's segment is a miss -> pooled recall 1/2; AP: prec [1], rec [1/2] -> 1/2.
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 3)], "b": [(0.0, 10.0, 3)]})
    mAP, _, rec = _ego4d(gt).evaluate(preds_dict([("a", 0.0, 10.0, 3, 0.9)]), verbose=False)
    assert mAP.tolist() == [0.5] * 5
    np.testing.assert_array_equal(rec, np.full((3, 5), 0.5))


# ------------------------------------------------------------------------- (d) thresholds
def test_official_thresholds_are_the_official_floats():
    lin = np.linspace(0.1, 0.5, 5)
    assert lin[2] == 0.30000000000000004  # what the data set attribute holds
    assert mode_tiou_thresholds(EGO4D, lin).tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]
    # ActivityNet and EPIC-KITCHENS write np.linspace in their code: the same floats
    assert mode_tiou_thresholds("anet_official", lin).tolist() == \
        np.linspace(0.5, 0.95, 10).tolist()
    assert mode_tiou_thresholds("epic_official", [0.3]).tolist() == lin.tolist()
    assert OFFICIAL_TIOU_THRESHOLDS["epic_official"][2] == 0.30000000000000004
    # upstream keeps whatever the data set says (the original's eval.py)
    assert mode_tiou_thresholds("upstream", lin).tolist() == lin.tolist()
    with pytest.raises(ValueError, match="unknown evaluation mode 'coco'"):
        mode_tiou_thresholds("coco", lin)


def test_threshold_0_3_flips_the_map(tmp_path):
    # GT [0, 10], prediction [0, 3]: tIoU 3 / 10 = 0.3 exactly. 0.3 >= 0.3 -> TP (AP 1), but
    # 0.3 < 0.30000000000000004 -> FP (AP 0).
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 3)]})
    preds = preds_dict([("a", 0.0, 3.0, 3, 0.9)])
    ev = _ego4d(gt)  # default: the official thresholds
    assert ev.tiou_thresholds.tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert ev.evaluate(preds, verbose=False)[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    lin = np.linspace(0.1, 0.5, 5)
    up = ANETdetection(gt, "test", tiou_thresholds=mode_tiou_thresholds("upstream", lin))
    assert up.evaluate(preds, verbose=False)[0].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    # the original's own default is the linspace too
    assert ANETdetection(gt, "test").tiou_thresholds.tolist() == lin.tolist()


# ------------------------------------------------------------------------- classes, report
def test_classes_in_first_appearance_order_and_unknown_dropped(tmp_path, capsys):
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 7)], "b": [(0.0, 10.0, 2)]})
    ev = _ego4d(gt)
    assert ev.activity_index == {7: 0, 2: 1}
    # label 0 is absent from the GT: dropped (upstream would score it as class index 0)
    ev.evaluate(preds_dict([("b", 0.0, 10.0, 2, 0.9), ("a", 0.0, 10.0, 0, 0.8)]), False)
    np.testing.assert_array_equal(ev.ap[:, 0], 0.0)
    np.testing.assert_array_equal(ev.ap[:, 1], 1.0)
    assert "1 prediction(s) with a class absent" in capsys.readouterr().out


def test_report_has_map_and_recall_grids(tmp_path, capsys):
    # the case of test_zero_length_gt_segments_count: mAP 50 % at every tIoU, recall 50 %
    gt = write_gt(tmp_path / "ego.json", {"a": [(0.0, 10.0, 3), (30.0, 30.0, 3)]})
    _ego4d(gt).evaluate(preds_dict([("a", 0.0, 10.0, 3, 0.9), ("a", 29.0, 31.0, 3, 0.8)]))
    recall = "".join(f"Recall@{k}x = 50.00 (%) " for k in range(1, 6))
    assert capsys.readouterr().out == (
        "[RESULTS] Action detection results on ego (ego4d_official evaluation).\n"
        + "".join(f"\n|tIoU = {t}: mAP = 50.00 (%) "
                  for t in ("0.10", "0.20", "0.30", "0.40", "0.50")) + "\n"
        + "Average mAP: 50.00 (%)\n"
        + "".join(f"\n|tIoU = {t}: {recall}" for t in ("0.30", "0.50", "0.70")) + "\n")


# ------------------------------------------------------------------------- random vs oracle
def _random_ego4d_case(rng, n_vid=5, n_pred=300):
    """GT on a 0.1 s grid with exact duplicates and points; predictions of known and unknown
    labels, in a random (file) order; plus three videos with a rounding-edge pair."""
    labels = [4, 1, 8]
    videos, gt_rows = {}, []
    for v in range(n_vid):
        events = []
        for _ in range(int(rng.integers(3, 25))):
            s = round(float(rng.integers(0, 600)) / 10, 1)
            e = round(s + float(rng.integers(0, 80)) / 10, 1)  # 0: a point
            events.append((s, e, int(rng.choice(labels))))
            if rng.random() < 0.15:
                events.append(events[-1])  # exact duplicate
        videos[f"v{v}"] = events
    edge_preds = []
    for i in range(3):
        (gs, ge), (ps, pe) = _rounding_edge_pair(rng)
        videos[f"edge{i}"] = [(gs, ge, labels[i])]
        edge_preds.append((f"edge{i}", ps, pe, labels[i], 0.5))
    order = {}
    for events in videos.values():
        for ev in events:
            order.setdefault(ev[2], len(order))
    for vid, events in videos.items():
        gt_rows += [(vid, s, e, order[lab]) for s, e, lab in events]
    preds = []
    for _ in range(n_pred):
        vid = f"v{int(rng.integers(0, n_vid))}"
        s = round(float(rng.integers(0, 600)) / 10, 1)
        e = round(s + float(rng.integers(1, 80)) / 10, 1)
        raw = int(rng.choice(labels + [0, 5]))
        score = float(np.round(rng.random(), 1))
        preds.append((vid, s, e, raw, score))
    preds = edge_preds + preds
    official = [(v, s, e, order[raw], sc) for v, s, e, raw, sc in preds if raw in order]
    return videos, gt_rows, preds, official, order


def _rounding_edge_pair(rng):
    """A GT and a prediction nested in it, on the 0.1 s grid, whose tIoU is 3, 5 or 7 tenths
    exactly, where (max end - min start) and the union of the lengths round to different
    sides of that threshold (like the [21.0, 56.4] / [26.3, 44.0] pair of the issue)."""
    while True:
        gs = round(float(rng.integers(0, 600)) / 10, 1)
        length = int(rng.integers(1, 8))
        ge = round(gs + length, 1)
        tenths = int(rng.choice([3, 5, 7]))
        plen = round(tenths * length / 10, 1)
        ps = round(gs + float(rng.integers(0, round((length - plen) * 10) + 1)) / 10, 1)
        pe = round(ps + plen, 1)
        inter = min(pe, ge) - max(ps, gs)
        span = inter / (max(ge, pe) - min(gs, ps)) > tenths / 10
        lengths = inter / ((ge - gs) + (pe - ps) - inter) > tenths / 10
        if span != lengths:
            return (gs, ge), (ps, pe)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_cases_match_the_row_by_row_oracle(tmp_path, seed):
    videos, gt_rows, preds, official, order = _random_ego4d_case(np.random.default_rng(seed))
    ev = _ego4d(write_gt(tmp_path / "g.json", videos))
    assert ev.activity_index == order
    mAP, avg, rec = ev.evaluate(preds_dict(preds), verbose=False)
    thr = [0.1, 0.2, 0.3, 0.4, 0.5]
    ap_ref = reference_ap(gt_rows, official, len(order), thr)
    assert np.array_equal(ev.ap, ap_ref)
    assert np.array_equal(mAP, ap_ref.mean(axis=1)) and avg == ap_ref.mean(axis=1).mean()
    grid = ([0.3, 0.5, 0.7], (1, 2, 3, 4, 5))
    hits, n_gt = reference_hits(gt_rows, official, len(order), *grid, strict=True, sort=False,
                                span_union=True)
    assert n_gt.sum() == len(gt_rows)  # duplicates and points kept
    assert np.array_equal(rec, hits.sum(axis=0) / len(gt_rows))


def test_random_cases_tell_the_two_tious_apart():
    # the rounding-edge videos make the oracle test above fail for the union-of-lengths tIoU
    differ = 0
    for seed in range(4):
        _, gt_rows, _, official, order = _random_ego4d_case(np.random.default_rng(seed))
        args = (gt_rows, official, len(order), [0.3, 0.5, 0.7], (1, 2, 3, 4, 5))
        span, _ = reference_hits(*args, strict=True, sort=False, span_union=True)
        lengths, _ = reference_hits(*args, strict=True, sort=False, span_union=False)
        differ += int(not np.array_equal(span, lengths))
    assert differ == 4
