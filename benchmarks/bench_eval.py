"""Benchmark of the vectorised ``ANETdetection`` against a row-by-row transcription.

The baseline below (``RowByRowEvaluator``) is a plain transcription of the original algorithm
as docs/reference.md §6.2-6.4 describe it: pandas ``groupby`` per class and per video, one
``iterrows`` step per prediction with the per-threshold GT lock walk, per-video top-k x recall,
single-pass label ``replace``. It runs in one process (the original used 8 joblib workers over
classes; this machine has few cores), so its time is a CPU-time figure.

Workloads (predictions seeded, realistic-ish: most on a GT class of the video, segments jittered
around GT instances, scores rounded to 4 decimals so that ties occur):
  (a) THUMOS-scale: real THUMOS14 test GT (212 videos), 200 predictions per video,
      tIoU 0.3:0.1:0.7;
  (b) ActivityNet-scale: real ActivityNet 1.3 validation GT (4,728 videos, label_id = row of
      action_name.csv), 100 predictions per video, tIoU 0.5:0.05:0.95.
The baseline is too slow for (b) in full on a shared 2-core machine: by default it runs on the
first ``--anet-baseline-videos`` videos (GT and predictions restricted to them), and ours runs on
both that subset and the full set. Outputs must be identical (mAP, average, recall, per-class
AP, compared with ``==``). JSON goes to benchmarks/results/ only.

Usage: python benchmarks/bench_eval.py [--data DIR] [--anet-baseline-videos N] [--json]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.evaluation import ANETdetection  # noqa: E402
from libs.utils.annotations import remove_duplicate_annotations  # noqa: E402


# ----------------------------------------------------------------------------- baseline
def _seg_iou(target: np.ndarray, cands: np.ndarray) -> np.ndarray:
    tt1 = np.maximum(target[0], cands[:, 0])
    tt2 = np.minimum(target[1], cands[:, 1])
    inter = (tt2 - tt1).clip(0)
    union = (cands[:, 1] - cands[:, 0]) + (target[1] - target[0]) - inter
    return inter.astype(float) / union


def _interp(prec: np.ndarray, rec: np.ndarray) -> float:
    mprec = np.hstack([[0], prec, [0]])
    mrec = np.hstack([[0], rec, [1]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1::] != mrec[0:-1])[0] + 1
    return np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx])


def _ap_rows(gt: pd.DataFrame, pred: pd.DataFrame, thr: np.ndarray) -> np.ndarray:
    ap = np.zeros(len(thr))
    if pred.empty:
        return ap
    npos = float(len(gt))
    lock = np.ones((len(thr), len(gt))) * -1
    pred = pred.loc[pred["score"].values.argsort()[::-1]].reset_index(drop=True)
    tp = np.zeros((len(thr), len(pred)))
    fp = np.zeros((len(thr), len(pred)))
    gt_by_vid = gt.groupby("video-id")
    for idx, row in pred.iterrows():
        try:
            gt_vid = gt_by_vid.get_group(row["video-id"])
        except KeyError:
            fp[:, idx] = 1
            continue
        this_gt = gt_vid.reset_index()
        tiou = _seg_iou(row[["t-start", "t-end"]].values.astype(float),
                        this_gt[["t-start", "t-end"]].values)
        order = tiou.argsort()[::-1]
        for t, th in enumerate(thr):
            for j in order:
                if tiou[j] < th:
                    fp[t, idx] = 1
                    break
                if lock[t, this_gt.loc[j]["index"]] >= 0:
                    continue
                tp[t, idx] = 1
                lock[t, this_gt.loc[j]["index"]] = idx
                break
            if fp[t, idx] == 0 and tp[t, idx] == 0:
                fp[t, idx] = 1
    tp_cum = np.cumsum(tp, axis=1).astype(float)
    fp_cum = np.cumsum(fp, axis=1).astype(float)
    rec = tp_cum / npos
    prec = tp_cum / (tp_cum + fp_cum)
    for t in range(len(thr)):
        ap[t] = _interp(prec[t, :], rec[t, :])
    return ap


def _recall_rows(gt: pd.DataFrame, pred: pd.DataFrame, thr: np.ndarray,
                 top_k: Sequence[int]) -> np.ndarray:
    if pred.empty:
        return np.zeros((len(thr), len(top_k)))
    tp = np.zeros((len(thr), len(top_k)))
    n_gts = 0
    gt_by_vid = gt.groupby("video-id")
    pred_by_vid = pred.groupby("video-id")
    for vid in gt_by_vid.groups.keys():
        gt_vid = gt_by_vid.get_group(vid)
        n_gts += len(gt_vid)
        try:
            pred_vid = pred_by_vid.get_group(vid)
        except KeyError:
            continue
        this_gt = gt_vid.reset_index()
        this_pred = pred_vid.reset_index()
        top = this_pred["score"].values.argsort()[::-1][:max(top_k) * len(this_gt)]
        segs = this_pred[["t-start", "t-end"]].values[top]
        tiou = np.stack([_seg_iou(s, this_gt[["t-start", "t-end"]].values) for s in segs])
        for t, th in enumerate(thr):
            for ki, k in enumerate(top_k):
                sub = tiou[:k * len(this_gt)]
                tp[t, ki] += ((sub >= th).sum(axis=0) > 0).sum()
    return tp / n_gts


class RowByRowEvaluator:
    """Plain transcription of the original evaluator (GT from JSON, §6.2-6.4), one process."""

    def __init__(self, ant_file: str, split: str, tiou_thresholds: np.ndarray,
                 top_k: Sequence[int] = (1, 5)) -> None:
        with open(ant_file, "r", encoding="utf8") as f:
            db = json.load(f)["database"]
        rows: Dict[str, List[Any]] = {"video-id": [], "t-start": [], "t-end": [], "label": []}
        for vid, v in db.items():
            if v["subset"].lower() != split:
                continue
            for ev in remove_duplicate_annotations(v["annotations"]):
                rows["video-id"].append(vid)
                rows["t-start"].append(float(ev["segment"][0]))
                rows["t-end"].append(float(ev["segment"][1]))
                rows["label"].append(int(ev["label_id"]))
        self.gt = pd.DataFrame(rows)
        self.index = {j: i for i, j in enumerate(sorted(self.gt["label"].unique()))}
        self.gt["label"] = self.gt["label"].replace(self.index)
        self.thr = tiou_thresholds
        self.top_k = top_k

    def evaluate(self, preds: Dict[str, Any]) -> Tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        preds = pd.DataFrame({"video-id": preds["video-id"],
                              "t-start": preds["t-start"].tolist(),
                              "t-end": preds["t-end"].tolist(),
                              "label": preds["label"].tolist(),
                              "score": preds["score"].tolist()})
        preds["label"] = preds["label"].replace(self.index)
        gt_by = self.gt.groupby("label")
        pr_by = preds.groupby("label")
        n_cls = len(self.index)
        ap = np.zeros((len(self.thr), n_cls))
        recall = np.zeros((len(self.thr), len(self.top_k), n_cls))
        for _, c in self.index.items():
            g = gt_by.get_group(c).reset_index(drop=True)
            try:
                p = pr_by.get_group(c).reset_index(drop=True)
            except KeyError:
                p = pd.DataFrame()
            ap[:, c] = _ap_rows(g, p, self.thr)
            recall[..., c] = _recall_rows(g, p, self.thr, self.top_k)
        mAP = ap.mean(axis=1)
        return mAP, mAP.mean(), recall.mean(axis=2), ap


# ----------------------------------------------------------------------------- workloads
def build_anet_json(data_dir: Path, out_file: str, keep: int = 0) -> int:
    """ActivityNet 1.3 validation GT in the ActionFormer JSON format; returns #videos."""
    with open(data_dir / "anet1.3" / "anet_anno_action.json", "r", encoding="utf8") as f:
        anno = json.load(f)
    with open(data_dir / "anet1.3" / "action_name.csv", "r", encoding="utf8") as f:
        names = [r["action"] for r in csv.DictReader(f)]
    label_id = {n: i for i, n in enumerate(names)}
    with open(data_dir / "anet1.3" / "video_info_new.csv", "r", encoding="utf8") as f:
        subset = {r["video"]: r["subset"] for r in csv.DictReader(f)}
    db = {}
    for vid, v in anno.items():
        if subset.get(vid) != "validation":
            continue
        db[vid] = {"subset": "validation", "duration": v["duration_second"],
                   "annotations": [{"label": a["label"], "segment": a["segment"],
                                    "label_id": label_id[a["label"]]}
                                   for a in v["annotations"]]}
        if keep and len(db) >= keep:
            break
    with open(out_file, "w", encoding="utf8") as f:
        json.dump({"version": "anet1.3-val", "database": db}, f)
    return len(db)


def synth_predictions(ant_file: str, split: str, per_video: int, n_classes: int,
                      seed: int) -> Dict[str, Any]:
    """Seeded detections shaped like the eval loop's results dict."""
    rng = np.random.default_rng(seed)
    with open(ant_file, "r", encoding="utf8") as f:
        db = json.load(f)["database"]
    vids: List[str] = []
    starts, ends, labels, scores = [], [], [], []
    for vid, v in db.items():
        if v["subset"].lower() != split:
            continue
        dur = float(v.get("duration", 0.0)) or max(a["segment"][1] for a in v["annotations"])
        ants = v["annotations"]
        gt_labels = [a["label_id"] for a in ants] or [0]
        n = per_video
        near = rng.random(n) < 0.7
        pick = rng.integers(0, max(len(ants), 1), n)
        lab = np.where(rng.random(n) < 0.75, np.asarray(gt_labels)[pick % len(gt_labels)],
                       rng.integers(0, n_classes, n))
        s = rng.random(n) * dur * 0.9
        length = rng.random(n) * dur * 0.3 + 0.5
        for i in np.nonzero(near & (len(ants) > 0))[0]:
            a0, a1 = ants[pick[i]]["segment"]
            span = max(a1 - a0, 0.5)
            c = (a0 + a1) / 2 + rng.normal(0, 0.15) * span
            length[i] = span * float(np.exp(rng.normal(0, 0.25)))
            s[i] = c - length[i] / 2
        s = np.clip(s, 0, dur)
        e = np.clip(s + length, 0, dur)
        vids += [vid] * n
        starts.append(s)
        ends.append(e)
        labels.append(lab)
        scores.append(np.round(rng.random(n), 4))
    # a few detections on a video that is not in the GT (false positives)
    vids += ["video_not_in_gt"] * 5
    starts.append(np.arange(5.0))
    ends.append(np.arange(5.0) + 3)
    labels.append(np.zeros(5, dtype=np.int64))
    scores.append(np.full(5, 0.5))
    return {"video-id": vids,
            "t-start": np.concatenate(starts).astype(np.float32),
            "t-end": np.concatenate(ends).astype(np.float32),
            "label": np.concatenate(labels).astype(np.int64),
            "score": np.concatenate(scores).astype(np.float32)}


def run_case(name: str, ant_file: str, split: str, thr: np.ndarray, preds: Dict[str, Any],
             baseline: bool) -> Dict[str, Any]:
    t0 = time.perf_counter()
    ev = ANETdetection(ant_file, split, tiou_thresholds=thr, num_workers=1)
    t1 = time.perf_counter()
    ours = ev.evaluate(preds, verbose=False)
    t2 = time.perf_counter()
    row: Dict[str, Any] = {"case": name, "n_pred": len(preds["video-id"]),
                           "n_gt": len(ev.ground_truth), "ours_load_s": t1 - t0,
                           "ours_eval_s": t2 - t1, "mAP": float(ours[1])}
    if baseline:
        base = RowByRowEvaluator(ant_file, split, thr)
        t3 = time.perf_counter()
        ref = base.evaluate(preds)
        t4 = time.perf_counter()
        same = (np.array_equal(ours[0], ref[0]) and ours[1] == ref[1]
                and np.array_equal(ours[2], ref[2]) and np.array_equal(ev.ap, ref[3]))
        row.update(baseline_eval_s=t4 - t3, identical=bool(same),
                   ratio=(t4 - t3) / (t2 - t1))
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--anet-baseline-videos", type=int, default=500,
                    help="videos for the baseline at ANet scale (0: all 4,728)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--json", action="store_true", help="write benchmarks/results/eval.json")
    args = ap.parse_args()
    data = Path(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        thumos = str(data / "thumos14" / "thumos14.json")
        preds = synth_predictions(thumos, "test", 200, 20, seed=0)
        rows.append(run_case("THUMOS14 test x200", thumos, "test", np.linspace(0.3, 0.7, 5),
                             preds, not args.skip_baseline))

        anet_full = os.path.join(tmp, "anet_full.json")
        n_full = build_anet_json(data, anet_full)
        preds = synth_predictions(anet_full, "validation", 100, 200, seed=1)
        thr = np.linspace(0.5, 0.95, 10)
        sub_n = args.anet_baseline_videos
        if sub_n and sub_n < n_full:
            rows.append(run_case(f"ANet val x100 (all {n_full} videos)", anet_full,
                                 "validation", thr, preds, False))
            anet_sub = os.path.join(tmp, "anet_sub.json")
            build_anet_json(data, anet_sub, keep=sub_n)
            preds_sub = synth_predictions(anet_sub, "validation", 100, 200, seed=1)
            rows.append(run_case(f"ANet val x100 (first {sub_n} videos)", anet_sub,
                                 "validation", thr, preds_sub, not args.skip_baseline))
        else:
            rows.append(run_case(f"ANet val x100 (all {n_full} videos)", anet_full,
                                 "validation", thr, preds, not args.skip_baseline))

    print(f"\n{'case':38s} {'preds':>8s} {'GT':>6s} {'ours s':>8s} {'base s':>8s} "
          f"{'ratio':>7s} {'identical':>9s} {'avg mAP':>8s}")
    for r in rows:
        base = f"{r['baseline_eval_s']:8.2f}" if "baseline_eval_s" in r else f"{'-':>8s}"
        ratio = f"{r['ratio']:6.1f}x" if "ratio" in r else f"{'-':>7s}"
        ident = str(r.get("identical", "-"))
        print(f"{r['case']:38s} {r['n_pred']:8d} {r['n_gt']:6d} {r['ours_eval_s']:8.3f} "
              f"{base} {ratio} {ident:>9s} {100 * r['mAP']:8.4f}")
    print("(ours s: evaluate() only; GT loading shown in the JSON as ours_load_s)")
    if args.json:
        out = ROOT / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "eval.json", "w", encoding="utf8") as f:
            json.dump(rows, f, indent=1)
    ok = all(r.get("identical", True) for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
