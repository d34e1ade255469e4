"""The evaluator's public names in one place (kept for ``libs.evaluation.metrics`` imports).

The code lives in one module per concern: ``loading`` (GT / prediction files, GT clean-up),
``tiou`` (detection and Ego4D retrieval tIoU), ``matching`` (greedy AP matcher and top-k x
recall counter, fast and plain), ``average_precision`` (AP / recall), ``modes`` (what each
metric mode does) and ``detection`` (``ANETdetection``). Behaviour: docs/reference.md §6,
docs/metrics.md.
"""
from __future__ import annotations

from .average_precision import (compute_average_precision_detection,
                                compute_topkx_recall_detection, interpolated_prec_rec)
from .detection import ANETdetection
from .loading import PRED_COLUMNS, load_gt_seg_from_json, load_pred_seg_from_json
from .modes import (EVAL_MODES, MODES, OFFICIAL_TIOU_THRESHOLDS, UPSTREAM_TIOU_THRESHOLDS,
                    ModeRules, mode_tiou_thresholds)
from .tiou import k_segment_iou, segment_iou

__all__ = [
    "ANETdetection",
    "EVAL_MODES",
    "MODES",
    "ModeRules",
    "OFFICIAL_TIOU_THRESHOLDS",
    "UPSTREAM_TIOU_THRESHOLDS",
    "PRED_COLUMNS",
    "mode_tiou_thresholds",
    "load_gt_seg_from_json",
    "load_pred_seg_from_json",
    "segment_iou",
    "k_segment_iou",
    "interpolated_prec_rec",
    "compute_average_precision_detection",
    "compute_topkx_recall_detection",
]
