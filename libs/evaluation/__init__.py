"""Evaluation: the ActivityNet-style mAP / Recall@kx evaluator and external score fusion.

``metrics`` implements REFERENCE.md §6 (``ANETdetection`` and helpers); ``postprocessing``
implements §5.5 (``postprocess_results``). See docs/metrics.md.
"""
from __future__ import annotations

from .metrics import (EVAL_MODES, OFFICIAL_TIOU_THRESHOLDS, ANETdetection,
                      compute_average_precision_detection, compute_topkx_recall_detection,
                      interpolated_prec_rec, k_segment_iou, load_gt_seg_from_json,
                      load_pred_seg_from_json, mode_tiou_thresholds, segment_iou)
from .postprocessing import (load_results_from_json, load_results_from_pkl, postprocess_results,
                             results_to_array)

__all__ = [
    "ANETdetection",
    "EVAL_MODES",
    "OFFICIAL_TIOU_THRESHOLDS",
    "mode_tiou_thresholds",
    "compute_average_precision_detection",
    "compute_topkx_recall_detection",
    "interpolated_prec_rec",
    "k_segment_iou",
    "load_gt_seg_from_json",
    "load_pred_seg_from_json",
    "segment_iou",
    "postprocess_results",
    "load_results_from_pkl",
    "load_results_from_json",
    "results_to_array",
]
