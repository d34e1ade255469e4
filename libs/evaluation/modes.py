"""Metric modes: the rules ``ANETdetection`` applies in each mode, one declarative record per
mode (upstream = the original ActionFormer evaluator; the official ActivityNet,
EPIC-KITCHENS-100 and Ego4D evaluators). docs/metrics.md explains every rule and its source.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = ["ModeRules", "MODES", "EVAL_MODES", "OFFICIAL_TIOU_THRESHOLDS",
           "UPSTREAM_TIOU_THRESHOLDS", "get_mode", "mode_tiou_thresholds"]

#: the original's default thresholds (upstream mode without explicit thresholds)
UPSTREAM_TIOU_THRESHOLDS = tuple(np.linspace(0.1, 0.5, 5).tolist())


@dataclass(frozen=True)
class ModeRules:
    """What one metric mode does where the modes differ."""
    name: str
    dedup_gt: bool           # GT through remove_duplicate_annotations (tol 1e-3 s)
    label_names: bool        # GT classes are the events' ``label`` names (else label ids)
    first_appearance: bool   # classes indexed in order of first appearance (else sorted)
    drop_unknown: bool       # predictions of a class absent from the GT are dropped (else
    #                          upstream's raw-label collision, docs/reference.md §9 item 21)
    tiou_thresholds: Tuple[float, ...]  # mAP thresholds when none are given
    recall_tiou_thresholds: Optional[Tuple[float, ...]]  # None: the mAP thresholds
    top_k: Tuple[int, ...]   # Recall@kx when none is given
    ego4d_recall: bool       # Ego4D retrieval rules: input order, intersection over span,
    #                          strict >, pooled over GT instances (else upstream §6.4)

    @property
    def is_upstream(self) -> bool:
        """The original's messages (no mode in the header, missing-class warnings twice)."""
        return self.name == "upstream"


# The official thresholds are the very floats each official evaluator uses: ActivityNet's
# get_detection_performance.py and EPIC-KITCHENS-100's evaluate_detection_json_ek100.py write
# np.linspace (0.30000000000000004, 0.8999999999999999 and all); the Ego4D moment-queries
# opts.py writes [0.1, 0.2, 0.3, 0.4, 0.5] (exact 0.3), its retrieval code a fixed grid.
MODES: Dict[str, ModeRules] = {
    "upstream": ModeRules(
        "upstream", dedup_gt=True, label_names=False, first_appearance=False,
        drop_unknown=False, tiou_thresholds=UPSTREAM_TIOU_THRESHOLDS,
        recall_tiou_thresholds=None, top_k=(1, 5), ego4d_recall=False),
    "anet_official": ModeRules(
        "anet_official", dedup_gt=False, label_names=True, first_appearance=True,
        drop_unknown=True, tiou_thresholds=tuple(np.linspace(0.5, 0.95, 10).tolist()),
        recall_tiou_thresholds=None, top_k=(1, 5), ego4d_recall=False),
    "epic_official": ModeRules(
        "epic_official", dedup_gt=False, label_names=False, first_appearance=False,
        drop_unknown=True, tiou_thresholds=tuple(np.linspace(0.1, 0.5, 5).tolist()),
        recall_tiou_thresholds=None, top_k=(1, 5), ego4d_recall=False),
    "ego4d_official": ModeRules(
        "ego4d_official", dedup_gt=False, label_names=False, first_appearance=True,
        drop_unknown=True, tiou_thresholds=(0.1, 0.2, 0.3, 0.4, 0.5),
        recall_tiou_thresholds=(0.3, 0.5, 0.7), top_k=(1, 2, 3, 4, 5), ego4d_recall=True),
}
EVAL_MODES = tuple(MODES)
#: tIoU thresholds of each official evaluator
OFFICIAL_TIOU_THRESHOLDS: Dict[str, Tuple[float, ...]] = {
    name: rules.tiou_thresholds for name, rules in MODES.items() if not rules.is_upstream}


def get_mode(mode: str) -> ModeRules:
    """The rules of ``mode``.

    Raises:
        ValueError: an unknown mode (the message lists the known ones).
    """
    if mode not in MODES:
        raise ValueError(f"unknown evaluation mode '{mode}'; expected one of {EVAL_MODES}")
    return MODES[mode]


def mode_tiou_thresholds(mode: str, dataset_thresholds: Sequence[float]) -> np.ndarray:
    """mAP thresholds for ``mode``: the data set's for ``'upstream'`` (as the original's
    eval.py), the official evaluator's own for the official modes.

    Raises:
        ValueError: an unknown mode.
    """
    rules = get_mode(mode)
    chosen = dataset_thresholds if rules.is_upstream else rules.tiou_thresholds
    return np.asarray(chosen, dtype=np.float64).reshape(-1)
