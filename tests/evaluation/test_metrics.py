"""ANETdetection and its helpers (docs/reference.md §6, §9 items 21/33).

Oracles: the original's numbers in conformance/eval_vector_expected.json, values worked out by
hand in the comments, and a naive row-by-row transcription (tests/evaluation/_reference.py) on
seeded, tie-heavy random cases.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from libs.evaluation import (ANETdetection, compute_average_precision_detection,
                             compute_topkx_recall_detection, interpolated_prec_rec,
                             k_segment_iou, load_gt_seg_from_json, load_pred_seg_from_json,
                             segment_iou)

from ._reference import reference_ap, reference_hits

THRESHOLDS = {
    "tiou_0.30:0.10:0.70": np.linspace(0.3, 0.7, 5),
    "tiou_0.50:0.05:0.95": np.linspace(0.5, 0.95, 10),
}


def write_gt(path, videos, subset="test"):
    """videos: {vid: [(start, end, label_id[, name]), ...]} -> ActionFormer-style JSON."""
    db = {}
    for vid, events in videos.items():
        ants = []
        for ev in events:
            name = ev[3] if len(ev) > 3 else f"class{ev[2]}"
            ants.append({"label": name, "segment": [ev[0], ev[1]], "label_id": ev[2]})
        db[vid] = {"subset": subset, "duration": 100.0, "fps": 30.0, "annotations": ants}
    with open(path, "w") as f:
        json.dump({"version": "test", "database": db}, f)
    return str(path)


def preds_dict(rows):
    """rows: [(vid, start, end, label, score)] -> the eval loop's dict of arrays."""
    return {"video-id": [r[0] for r in rows],
            "t-start": np.array([r[1] for r in rows], dtype=np.float64),
            "t-end": np.array([r[2] for r in rows], dtype=np.float64),
            "label": np.array([r[3] for r in rows], dtype=np.int64),
            "score": np.array([r[4] for r in rows], dtype=np.float64)}


# ------------------------------------------------------------------------- conformance
@pytest.mark.parametrize("key", sorted(THRESHOLDS))
@pytest.mark.parametrize("source", ["csv", "dict"])
def test_conformance_vector(conformance_dir, key, source):
    expected = json.loads((conformance_dir / "eval_vector_expected.json").read_text())[key]
    ev = ANETdetection(str(conformance_dir / "eval_vector_gt.json"), "test",
                       tiou_thresholds=THRESHOLDS[key])
    np.testing.assert_array_equal(ev.tiou_thresholds, expected["tiou_thresholds"])
    df = pd.read_csv(conformance_dir / "eval_vector_pred.csv")
    if source == "csv":
        preds = df
    else:  # what valid_one_epoch builds: list of ids, float32 / int64 arrays
        preds = {"video-id": df["video-id"].tolist(),
                 "t-start": df["t-start"].to_numpy(np.float32),
                 "t-end": df["t-end"].to_numpy(np.float32),
                 "label": df["label"].to_numpy(np.int64),
                 "score": df["score"].to_numpy(np.float32)}
    mAP, avg, recall = ev.evaluate(preds, verbose=False)
    assert np.abs(mAP - np.array(expected["mAP"])).max() <= 1e-9
    assert abs(avg - expected["average_mAP"]) <= 1e-9
    assert np.abs(recall - np.array(expected["recall"])).max() <= 1e-9
    assert np.abs(ev.ap - np.array(expected["ap_per_class"])).max() <= 1e-9
    assert {str(k): v for k, v in ev.activity_index.items()} == expected["activity_index"]
    assert list(expected["top_k"]) == list(ev.top_k)


def test_conformance_gt_loading(conformance_dir):
    gt = load_gt_seg_from_json(str(conformance_dir / "eval_vector_gt.json"), "test")
    assert list(gt.columns) == ["video-id", "t-start", "t-end", "label"]
    # Validation videos dropped; exact + near duplicate in 101 and the 0.5 ms event in 102 gone
    assert not gt["video-id"].str.startswith("video_validation").any()
    assert (gt["video-id"] == "video_test_0000101").sum() == 1
    assert gt[gt["video-id"] == "video_test_0000102"]["t-start"].tolist() == [35.44]
    # 103: identical boundaries, different labels: both kept
    assert sorted(gt[gt["video-id"] == "video_test_0000103"]["label"]) == [0, 1, 3]


# ------------------------------------------------------------------------- helpers
def test_segment_iou_hand_values():
    # target [2, 6] vs [0, 4] (inter 2, union 6), [2, 6] (1), [10, 12] (0), [3, 4] (1/4)
    got = segment_iou(np.array([2.0, 6.0]), np.array([[0, 4], [2, 6], [10, 12], [3, 4.0]]))
    np.testing.assert_allclose(got, [1 / 3, 1.0, 0.0, 0.25], rtol=0, atol=1e-15)
    mat = k_segment_iou(np.array([[2.0, 6.0], [0.0, 4.0]]), np.array([[0, 4], [2, 6.0]]))
    np.testing.assert_allclose(mat, [[1 / 3, 1.0], [1.0, 1 / 3]], rtol=0, atol=1e-15)
    assert mat.shape == (2, 2)


def test_interpolated_prec_rec_hand_value():
    # prec [1, .5, 2/3], rec [.5, .5, 1]: 0.5 * 1 + 0.5 * 2/3 = 5/6
    assert interpolated_prec_rec(np.array([1, .5, 2 / 3]), np.array([.5, .5, 1])) == \
        pytest.approx(5 / 6, abs=1e-15)
    # the dip is interpolated away: prec [.5, 1], rec [.5, 1] -> 1.0
    assert interpolated_prec_rec(np.array([.5, 1.0]), np.array([.5, 1.0])) == 1.0


def _hand_gt():
    return pd.DataFrame({"video-id": ["a", "a"], "t-start": [0.0, 20.0],
                         "t-end": [10.0, 30.0], "label": [0, 0]})


def _hand_pred():
    # p1 = GT1 exactly; p2 duplicates p1 (GT1 locked, GT2 tIoU 0 -> FP);
    # p3 [20, 25] vs GT2: tIoU 5/10 = 0.5 -> TP at 0.5, FP at 0.6
    return pd.DataFrame({"video-id": ["a", "a", "a"], "t-start": [20.0, 0.0, 0.0],
                         "t-end": [25.0, 10.0, 10.0], "label": [0, 0, 0],
                         "score": [0.7, 0.9, 0.8]})


def test_average_precision_hand_case():
    # thr 0.5: TP FP TP -> prec 1, 1/2, 2/3, rec 1/2, 1/2, 1 -> AP 5/6; thr 0.6: AP 1/2
    ap = compute_average_precision_detection(_hand_gt(), _hand_pred(), [0.5, 0.6])
    np.testing.assert_allclose(ap, [5 / 6, 0.5], rtol=0, atol=1e-15)
    assert compute_average_precision_detection(_hand_gt(), pd.DataFrame(), [0.5]).tolist() \
        == [0.0]


def test_topkx_recall_hand_case():
    # 2 GT -> top 1x = best 2 preds (0.9 and 0.8, both on GT1): GT1 found, GT2 not -> 1/2;
    # top 5x = all 3: GT2 found at 0.5 (tIoU 0.5 >= 0.5) but not at 0.6
    rec = compute_topkx_recall_detection(_hand_gt(), _hand_pred(), [0.5, 0.6], (1, 5))
    np.testing.assert_array_equal(rec, [[0.5, 1.0], [0.5, 0.5]])


def test_report_format_and_values(tmp_path, capsys):
    gt = write_gt(tmp_path / "hand.json", {"a": [(0.0, 10.0, 3), (20.0, 30.0, 3)]})
    ev = ANETdetection(gt, "test", tiou_thresholds=[0.5, 0.6])
    mAP, avg, rec = ev.evaluate(_hand_pred().assign(label=3), verbose=True)
    np.testing.assert_allclose(mAP, [5 / 6, 0.5], atol=1e-15)
    assert avg == pytest.approx((5 / 6 + 0.5) / 2, abs=1e-15)
    out = capsys.readouterr().out
    assert out == ("[RESULTS] Action detection results on hand.\n"
                   "\n|tIoU = 0.50: mAP = 83.33 (%) Recall@1x = 50.00 (%) "
                   "Recall@5x = 100.00 (%) "
                   "\n|tIoU = 0.60: mAP = 50.00 (%) Recall@1x = 50.00 (%) "
                   "Recall@5x = 50.00 (%) \n"
                   "Average mAP: 66.67 (%)\n")


# ------------------------------------------------------------------------- label handling
def test_label_remap_single_pass_and_raw_collision(tmp_path, capsys):
    # GT labels {1, 2} -> index {1: 0, 2: 1}. A prediction labelled 2 becomes index 1 (not
    # chained on to 0); one labelled 0 (absent from GT) stays 0 and is scored as index 0,
    # i.e. as raw class 1 (§9 item 21).
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 1)], "b": [(0.0, 10.0, 2)]})
    ev = ANETdetection(gt, "test", tiou_thresholds=[0.5])
    assert ev.activity_index == {1: 0, 2: 1}
    preds = preds_dict([("b", 0.0, 10.0, 2, 0.9), ("a", 0.0, 10.0, 0, 0.8)])
    ev.evaluate(preds, verbose=False)
    np.testing.assert_array_equal(ev.ap, [[1.0, 1.0]])
    assert "provdied" not in capsys.readouterr().out
    # epic_official drops the unknown label instead: class 1 has no prediction
    ev = ANETdetection(gt, "test", tiou_thresholds=[0.5], mode="epic_official")
    ev.evaluate(preds, verbose=False)
    np.testing.assert_array_equal(ev.ap, [[0.0, 1.0]])
    out = capsys.readouterr().out
    assert "1 prediction(s) with a class absent from the ground truth were dropped" in out
    assert "Warning: No predictions of label '1' were provdied." in out


def test_missing_class_warning_twice_and_zero(tmp_path, capsys):
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 4), (20.0, 30.0, 7)]})
    ev = ANETdetection(gt, "test", tiou_thresholds=[0.5])
    ev.evaluate(preds_dict([("a", 0.0, 10.0, 4, 0.5)]), verbose=False)
    out = capsys.readouterr().out
    # printed by the AP wrapper and again by the recall wrapper, like the original
    assert out.count("Warning: No predictions of label '7' were provdied.") == 2
    np.testing.assert_array_equal(ev.ap, [[1.0, 0.0]])
    np.testing.assert_array_equal(ev.recall[..., 1], 0.0)


def test_label_list_quirk(tmp_path):
    # [1, 2] with offset 10 is read reversed: (10**0 + 2) + (10**1 + 1) = 14 (an addition
    # where a multiplication was probably meant; replicated)
    path = tmp_path / "l.json"
    path.write_text(json.dumps({"database": {"v": {"subset": "test", "annotations": [
        {"segment": [0, 5], "label_id": [1, 2]}]}}}))
    # remove_duplicate_annotations compares label_id values, lists compare fine
    gt = load_gt_seg_from_json(str(path), "test", label_offset=10)
    assert gt["label"].tolist() == [14]


def test_load_pred_seg_from_json_uses_scores_key(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"database": {"v1": [
        {"segment": [1, 2], "label_id": 3, "scores": 0.25}], "v2": []}}))
    df = load_pred_seg_from_json(str(path))
    assert df.to_dict("list") == {"video-id": ["v1"], "t-start": [1.0], "t-end": [2.0],
                                  "label": [3], "score": [0.25]}
    gt = write_gt(tmp_path / "g.json", {"v1": [(1.0, 2.0, 3)]})
    mAP, _, _ = ANETdetection(gt, "test", tiou_thresholds=[0.5]).evaluate(str(path), False)
    assert mAP.tolist() == [1.0]


# ------------------------------------------------------------------------- robustness
def test_nan_score_names_the_video(tmp_path):
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 0)]})
    ev = ANETdetection(gt, "test")
    preds = preds_dict([("a", 0.0, 10.0, 0, 0.5), ("vid_x", 0.0, 1.0, 0, float("nan"))])
    with pytest.raises(ValueError, match="'score' is NaN for video 'vid_x'"):
        ev.evaluate(preds, verbose=False)


def test_empty_split_error_lists_subsets(tmp_path):
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 0)]}, subset="Validation")
    with pytest.raises(ValueError) as err:
        ANETdetection(gt, "test")
    msg = str(err.value)
    assert "'test'" in msg and "g.json" in msg and "['Validation']" in msg


def test_missing_files_and_keys(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        ANETdetection(str(tmp_path / "nope.json"), "test")
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 0)]})
    ev = ANETdetection(gt, "test")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        ev.evaluate(str(tmp_path / "missing.json"))
    with pytest.raises(KeyError, match="score"):
        ev.evaluate({"video-id": ["a"], "t-start": [0.0], "t-end": [1.0], "label": [0]})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"database": {"v": {"subset": "test"}}}))
    with pytest.raises(KeyError, match="video 'v' has no 'annotations'"):
        ANETdetection(str(bad), "test")


def test_empty_predictions_give_zeros(tmp_path, capsys):
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 0)], "b": [(0.0, 5.0, 1)]})
    ev = ANETdetection(gt, "test", tiou_thresholds=[0.3, 0.5])
    empty = {"video-id": [], "t-start": np.zeros(0, np.float32),
             "t-end": np.zeros(0, np.float32), "label": np.zeros(0, np.int64),
             "score": np.zeros(0, np.float32)}
    mAP, avg, rec = ev.evaluate(empty, verbose=True)
    assert mAP.tolist() == [0.0, 0.0] and avg == 0.0 and rec.shape == (2, 2)
    assert not rec.any()
    assert "no predictions were provided" in capsys.readouterr().out


def test_false_positives_and_video_without_predictions(tmp_path):
    # GT: a (1 event), b (1 event, never predicted). Preds: 0.9 on video z (not in GT) -> FP,
    # 0.8 on a exact -> TP. prec 0, 1/2; rec 0, 1/2 -> AP = 0.5 * 0.5 = 0.25
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 0)], "b": [(0.0, 5.0, 0)]})
    ev = ANETdetection(gt, "test", tiou_thresholds=[0.5])
    mAP, _, rec = ev.evaluate(preds_dict([("z", 0.0, 10.0, 0, 0.9),
                                          ("a", 0.0, 10.0, 0, 0.8)]), verbose=False)
    assert mAP.tolist() == [0.25]
    assert rec.tolist() == [[0.5, 0.5]]


def test_dataframe_not_modified_and_workers_capped(tmp_path):
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 5)]})
    ev = ANETdetection(gt, "test", num_workers=10_000)
    assert 1 <= ev.num_workers <= (os.cpu_count() or 1)
    df = pd.DataFrame(preds_dict([("a", 0.0, 10.0, 5, 0.9)]))
    ev.evaluate(df, verbose=False)
    assert df["label"].tolist() == [5]


# ------------------------------------------------------------------------- modes
def test_anet_official_mode(tmp_path, capsys):
    # names as labels, no de-duplication: the exact duplicate of "Run" stays, so one perfect
    # prediction finds 1 of 2 -> AP 0.5 (upstream would drop the duplicate -> AP 1.0).
    # Class order: first appearance ("Swim" then "Run").
    videos = {"a": [(0.0, 10.0, 7, "Swim")],
              "b": [(0.0, 10.0, 3, "Run"), (0.0, 10.0, 3, "Run")]}
    gt = write_gt(tmp_path / "g.json", videos)
    ev = ANETdetection(gt, "test", tiou_thresholds=[0.5], mode="anet_official")
    assert ev.activity_index == {"Swim": 0, "Run": 1}
    ints = preds_dict([("a", 0.0, 10.0, 7, 0.9), ("b", 0.0, 10.0, 3, 0.8),
                       ("b", 0.0, 10.0, 99, 0.7)])  # label 99: unknown -> dropped
    mAP, _, _ = ev.evaluate(ints, verbose=True)
    np.testing.assert_array_equal(ev.ap, [[1.0, 0.5]])
    out = capsys.readouterr().out
    assert "(anet_official evaluation)" in out and "1 prediction(s)" in out
    names = dict(ints, label=np.array(["Swim", "Run", "Jump"], dtype=object))
    ev.evaluate(names, verbose=False)
    np.testing.assert_array_equal(ev.ap, [[1.0, 0.5]])
    up = ANETdetection(gt, "test", tiou_thresholds=[0.5])
    up.evaluate(ints, verbose=False)
    np.testing.assert_array_equal(up.ap, [[1.0, 1.0]])


def test_ego4d_official_recall(tmp_path):
    # class 0: 1 GT in a; class 1: 3 GT in b.
    # a: preds in file order: p0 [0, 5] tIoU exactly 0.5 (score .1), p1 tIoU 1 (score .9).
    #   upstream top-1x = best score = p1 -> found; ego4d top-1x = first in file = p0, and
    #   0.5 > 0.5 fails -> not found (0.5 > 0.3 holds). top-2x and more: p1 -> found.
    # b: one exact hit on GT b1 only -> 1 of 3 at any k.
    gt = write_gt(tmp_path / "g.json", {"a": [(0.0, 10.0, 0)],
                                        "b": [(0.0, 10.0, 1), (20.0, 30.0, 1),
                                              (40.0, 50.0, 1)]})
    preds = preds_dict([("a", 0.0, 5.0, 0, 0.1), ("a", 0.0, 10.0, 0, 0.9),
                        ("b", 0.0, 10.0, 1, 0.5)])
    up = ANETdetection(gt, "test", tiou_thresholds=[0.5])
    _, _, rec_up = up.evaluate(preds, verbose=False)
    # class-averaged: k=1: (1 + 1/3) / 2; k=5: same
    np.testing.assert_allclose(rec_up, [[2 / 3, 2 / 3]], atol=1e-15)
    eg = ANETdetection(gt, "test", tiou_thresholds=[0.5], mode="ego4d_official")
    mAP_eg, _, rec_eg = eg.evaluate(preds, verbose=False)
    # the official grid: rows tIoU 0.3 / 0.5 / 0.7, columns Recall@1..5x, pooled over 4 GT:
    # 0.3: (1 + 1) / 4 everywhere; 0.5 and 0.7: k=1 (0 + 1) / 4, k>=2 (1 + 1) / 4
    assert eg.recall_tiou_thresholds.tolist() == [0.3, 0.5, 0.7]
    assert eg.top_k == (1, 2, 3, 4, 5)
    np.testing.assert_array_equal(rec_eg, [[0.5] * 5, [0.25] + [0.5] * 4,
                                           [0.25] + [0.5] * 4])
    np.testing.assert_array_equal(mAP_eg, up.evaluate(preds, verbose=False)[0])


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown evaluation mode"):
        ANETdetection("x.json", mode="coco")


# ------------------------------------------------------------------------- exactness vs oracle
def test_rowwise_argsort_matches_1d_calls():
    # the vectorised matcher relies on a row-wise argsort running the 1-D kernel per row
    rng = np.random.default_rng(0)
    for n in (3, 17, 40, 130):
        mat = np.round(rng.random((50, n)) * 3) / 3  # heavy ties
        rows = np.argsort(mat, axis=1)
        for i in range(mat.shape[0]):
            np.testing.assert_array_equal(rows[i], np.ascontiguousarray(mat[i]).argsort())


def _random_case(rng, n_vid=4, n_pred=400):
    gt_labels = [2, 4, 5, 9]
    index = {raw: i for i, raw in enumerate(gt_labels)}
    videos, gt_rows = {}, []
    for v in range(n_vid):
        seen, events = set(), []
        for _ in range(int(rng.integers(5, 45))):
            s = float(rng.integers(0, 60))
            e = s + float(rng.integers(1, 12))
            lab = int(rng.choice(gt_labels[:2] if v % 2 else gt_labels))
            if (s, e, lab) in seen:  # keep the GT free of duplicates (de-dup is tested apart)
                continue
            seen.add((s, e, lab))
            events.append((s, e, lab))
            gt_rows.append((f"v{v}", s, e, index[lab]))
        videos[f"v{v}"] = events
    preds, oracle_rows, official_rows = [], [], []
    for _ in range(n_pred):
        vid = f"v{int(rng.integers(0, n_vid + 1))}"  # v{n_vid} is not in the GT
        s = float(rng.integers(0, 60))
        e = s + float(rng.integers(1, 12))
        raw = int(rng.integers(0, 11))
        score = float(np.round(rng.random(), 1))  # ties everywhere
        preds.append((vid, s, e, raw, score))
        # upstream label semantics: known -> index; unknown in [0, C) -> kept raw; else unused
        cls = index.get(raw, raw if raw < len(gt_labels) else None)
        if cls is not None:
            oracle_rows.append((vid, s, e, cls, score))
        if raw in index:  # official modes drop unknown labels
            official_rows.append((vid, s, e, index[raw], score))
    return videos, gt_rows, preds, oracle_rows, official_rows


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_row_by_row_oracle(tmp_path, seed):
    rng = np.random.default_rng(seed)
    videos, gt_rows, preds, oracle_rows, official_rows = _random_case(rng)
    gt = write_gt(tmp_path / "g.json", videos)
    thr = np.array([0.5, 0.1, 0.3, 0.7, 0.95])  # unsorted on purpose
    ev = ANETdetection(gt, "test", tiou_thresholds=thr)
    mAP, avg, rec = ev.evaluate(preds_dict(preds), verbose=False)
    ap_ref = reference_ap(gt_rows, oracle_rows, 4, thr)
    hits, n_gt = reference_hits(gt_rows, oracle_rows, 4, thr, (1, 5))
    assert np.array_equal(ev.ap, ap_ref)
    assert np.array_equal(mAP, ap_ref.mean(axis=1)) and avg == ap_ref.mean(axis=1).mean()
    rec_ref = np.moveaxis(hits / n_gt[:, None, None], 0, -1)
    assert np.array_equal(ev.recall, rec_ref)
    assert np.array_equal(rec, rec_ref.mean(axis=2))
    eg = ANETdetection(gt, "test", tiou_thresholds=thr, mode="ego4d_official")
    _, _, rec_eg = eg.evaluate(preds_dict(preds), verbose=False)
    # ego4d indexes classes by first appearance: compare column by raw label
    ap_off = reference_ap(gt_rows, official_rows, 4, thr)
    for raw, i in eg.activity_index.items():
        assert np.array_equal(eg.ap[:, i], ap_off[:, [2, 4, 5, 9].index(raw)])
    hits_eg, _ = reference_hits(gt_rows, official_rows, 4, [0.3, 0.5, 0.7], (1, 2, 3, 4, 5),
                                strict=True, sort=False, span_union=True)
    assert np.array_equal(rec_eg, hits_eg.sum(axis=0) / n_gt.sum())
