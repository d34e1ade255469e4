"""``ANETdetection``: the temporal detection evaluator (mAP per tIoU, Recall@kx; docs/reference.md
§6.2) in the mode chosen by ``mode`` (libs/evaluation/modes.py, docs/metrics.md).

The default ``mode='upstream'`` reproduces the original ActionFormer evaluator number for
number (the conformance vector ``conformance/eval_vector_*`` reproduces to the last bit).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .average_precision import average_precision
from .loading import is_string_array, label_names, prediction_columns, read_gt_rows
from .matching import Segments, group_gt, topkx_hits
from .modes import get_mode

__all__ = ["ANETdetection"]


class ANETdetection:
    """ActivityNet-style temporal detection evaluator: mAP per tIoU and Recall@kx (§6.2).

    ``mode`` selects whose rules are used (``libs.evaluation.modes.MODES``; every rule is
    listed in docs/metrics.md): ``'upstream'`` (default, the original: GT de-duplicated,
    sorted integer classes, unknown prediction labels left raw, class-averaged Recall@kx with
    tIoU >= threshold), ``'anet_official'``, ``'epic_official'`` or ``'ego4d_official'`` (no
    GT de-duplication, unknown labels dropped; Ego4D: first-appearance class order and the
    retrieval evaluator's Recall@1..5x at tIoU 0.3 / 0.5 / 0.7, pooled, strict, over the span).

    ``tiou_thresholds=None`` gives the mode's thresholds (upstream: the original's default
    ``np.linspace(0.1, 0.5, 5)``; official modes: ``OFFICIAL_TIOU_THRESHOLDS``; eval.py passes
    ``mode_tiou_thresholds(mode, dataset thresholds)``); ``top_k=None`` the mode's ``top_k``;
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
        self.rules = get_mode(mode)
        self.mode = mode
        if tiou_thresholds is None:
            tiou_thresholds = self.rules.tiou_thresholds
        self.tiou_thresholds = np.asarray(tiou_thresholds, dtype=np.float64).reshape(-1)
        rthr = self.rules.recall_tiou_thresholds
        self.recall_tiou_thresholds = (self.tiou_thresholds if rthr is None
                                       else np.asarray(rthr, dtype=np.float64))
        self.top_k = tuple(int(k) for k in (self.rules.top_k if top_k is None else top_k))
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
        self._load_ground_truth(remove_duplicates)

    def _load_ground_truth(self, remove_duplicates: Optional[bool]) -> None:
        """Reads the GT split and builds ``activity_index`` (raw label -> class index)."""
        rules = self.rules
        dedup = rules.dedup_gt if remove_duplicates is None else remove_duplicates
        gt, subsets = read_gt_rows(self.ant_file, self.split, self.label, self.label_offset,
                                   dedup, names=rules.label_names)
        if len(gt) == 0:
            raise ValueError(
                f"no ground-truth segments for split '{self.split}' in '{self.ant_file}' "
                f"(subsets present: {subsets}; the split is compared with subset.lower())")
        if rules.first_appearance:
            uniq = list(dict.fromkeys(gt["label"].tolist()))
        else:
            uniq = sorted(gt["label"].unique().tolist())
        self._id_to_name = label_names(self.ant_file, self.label) if rules.label_names else None
        self.activity_index: Dict[Any, int] = {raw: i for i, raw in enumerate(uniq)}
        gt["label"] = gt["label"].map(self.activity_index)
        self.ground_truth = gt
        self._gt_vid = gt["video-id"].to_numpy(dtype=object)
        self._gt_start = gt["t-start"].to_numpy(np.float64)
        self._gt_end = gt["t-end"].to_numpy(np.float64)
        self._gt_cls = gt["label"].to_numpy(np.int64)

    # ---------------------------------------------------------------------------------------
    def _class_of_predictions(self, labels: np.ndarray) -> Tuple[np.ndarray, int]:
        """Class index per prediction (-1: not evaluated) and the number of unknown labels."""
        n_cls = len(self.activity_index)
        series = pd.Series(labels)
        if self._id_to_name is not None and series.size and not is_string_array(labels):
            names = series.map(self._id_to_name)  # label_id -> class name
            series = names.where(names.notna(), series)
        mapped = series.map(self.activity_index)
        found = mapped.notna().to_numpy()
        cls = np.full(series.size, -1, dtype=np.int64)
        cls[found] = mapped[found].to_numpy(np.int64)
        n_unknown = int((~found).sum())
        if not self.rules.drop_unknown and n_unknown:
            # single-pass replace: an unmapped raw label stays as is and is scored as the class
            # with that index when it is one (docs/reference.md §6.2, §9 item 21); non-numbers
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

    def _segments(self, cols: Dict[str, np.ndarray], cls: np.ndarray
                  ) -> Tuple[Segments, Segments, int]:
        """GT and prediction column arrays with shared video codes, and the number of codes."""
        codes, _ = pd.factorize(np.concatenate([self._gt_vid, cols["video-id"]]))
        codes = codes.astype(np.int64)
        n_gt = self._gt_vid.size
        gt = Segments(codes[:n_gt], self._gt_start, self._gt_end, self._gt_cls)
        pred = Segments(codes[n_gt:], cols["t-start"], cols["t-end"], cls, cols["score"])
        return gt, pred, int(codes.max(initial=-1)) + 1

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
        cols = prediction_columns(preds)
        n_cls = len(self.activity_index)
        self.ap = None
        cls, n_unknown = self._class_of_predictions(cols["label"])
        if n_unknown and self.rules.drop_unknown:
            print(f"Note: {n_unknown} prediction(s) with a class absent from the ground truth "
                  f"were dropped ({self.mode} evaluation).")
        gt, pred, n_vid = self._segments(cols, cls)
        groups = group_gt(gt, n_vid)
        no_preds = cols["score"].size == 0
        if no_preds:
            print(f"Warning: no predictions were provided for {self.dataset_name}; "
                  "all metrics are zero.")
        self.ap, has_pred = average_precision(pred, gt, groups, n_cls, self.tiou_thresholds)
        if not no_preds:
            self._print_missing(has_pred)
        hits = topkx_hits(pred, gt, groups, n_cls, self.recall_tiou_thresholds, self.top_k,
                          ego4d=self.rules.ego4d_recall)
        if not no_preds and self.rules.is_upstream:
            self._print_missing(has_pred)  # the original warns once per wrapper
        n_gts = np.bincount(gt.cls, minlength=n_cls)
        self.recall = np.zeros(hits.shape[1:] + (n_cls,))
        for c in range(n_cls):
            if has_pred[c]:
                self.recall[..., c] = hits[c].astype(np.float64) / n_gts[c]
        mAP = self.ap.mean(axis=1)
        if self.rules.ego4d_recall:  # pooled over GT instances
            mRecall = hits.sum(axis=0).astype(np.float64) / n_gts.sum()
        else:
            mRecall = self.recall.mean(axis=2)
        average_mAP = mAP.mean()
        if verbose:
            self._report(mAP, average_mAP, mRecall)
        return mAP, average_mAP, mRecall

    # ---------------------------------------------------------------------------------------
    def _report(self, mAP: np.ndarray, average_mAP: float, mRecall: np.ndarray) -> None:
        if self.rules.is_upstream:
            print("[RESULTS] Action detection results on {:s}.".format(self.dataset_name))
        else:
            print("[RESULTS] Action detection results on {:s} ({:s} evaluation).".format(
                self.dataset_name, self.mode))
        if self.rules.recall_tiou_thresholds is None:  # the original's block: both per tIoU
            block = ""
            for tiou, tiou_mAP, tiou_mRecall in zip(self.tiou_thresholds, mAP, mRecall):
                block += "\n|tIoU = {:.2f}: ".format(tiou)
                block += "mAP = {:>4.2f} (%) ".format(tiou_mAP * 100)
                block += self._recall_text(tiou_mRecall)
            print(block)
            print("Average mAP: {:>4.2f} (%)".format(average_mAP * 100))
            return
        # mAP and recall on different tIoU grids (Ego4D): one block each
        print("".join("\n|tIoU = {:.2f}: mAP = {:>4.2f} (%) ".format(t, m * 100)
                      for t, m in zip(self.tiou_thresholds, mAP)))
        print("Average mAP: {:>4.2f} (%)".format(average_mAP * 100))
        print("".join("\n|tIoU = {:.2f}: ".format(t) + self._recall_text(r)
                      for t, r in zip(self.recall_tiou_thresholds, mRecall)))

    def _recall_text(self, recall_row: np.ndarray) -> str:
        return "".join("Recall@{:d}x = {:>4.2f} (%) ".format(k, r * 100)
                       for k, r in zip(self.top_k, recall_row))
