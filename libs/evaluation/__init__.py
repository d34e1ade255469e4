"""Evaluation: the ActivityNet-style mAP / Recall@kx evaluator and external score fusion.

``detection.ANETdetection`` implements docs/reference.md §6 with the helpers of ``loading``,
``tiou``, ``matching``, ``average_precision`` and the metric modes of ``modes``
(``metrics`` re-exports them all); ``postprocessing`` implements §5.5
(``postprocess_results``). See docs/metrics.md.
"""
from __future__ import annotations

from .average_precision import (compute_average_precision_detection,
                                compute_topkx_recall_detection, interpolated_prec_rec)
from .detection import ANETdetection
from .loading import load_gt_seg_from_json, load_pred_seg_from_json
from .modes import EVAL_MODES, OFFICIAL_TIOU_THRESHOLDS, mode_tiou_thresholds
from .postprocessing import (load_results_from_json, load_results_from_pkl, postprocess_results,
                             results_to_array)
from .tiou import k_segment_iou, segment_iou

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
