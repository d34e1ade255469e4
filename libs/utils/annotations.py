"""Annotation clean-up shared by the datasets and the evaluator.

Behaviour: docs/reference.md §6.1 (``remove_duplicate_annotations``), applied to the GT by the
evaluator (§6.2) and to the training annotations by the datasets.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

__all__ = ["remove_duplicate_annotations"]


def remove_duplicate_annotations(ants: Sequence[Dict[str, Any]],
                                 tol: float = 1e-3) -> List[Dict[str, Any]]:
    """Drops too-short events and repeats of an already kept event.

    Events are visited in order; one is kept iff ``end - start >= tol`` and no kept event has
    the same ``label_id`` with ``|start difference| <= tol`` and ``|end difference| <= tol``.

    Args:
        ants: events ``{'segment': [start, end], 'label_id': ..., ...}`` (seconds).
        tol: tolerance in seconds.

    Returns:
        The kept events (the same dict objects), in input order.
    """
    kept: List[Dict[str, Any]] = []
    for event in ants:
        start, end = event["segment"][0], event["segment"][1]
        if end - start < tol:
            continue
        label = event["label_id"]
        if any(abs(start - k["segment"][0]) <= tol and abs(end - k["segment"][1]) <= tol
               and label == k["label_id"] for k in kept):
            continue
        kept.append(event)
    return kept
