"""Comparison of two detection / candidate sets within tolerances, order-insensitive: used by
the tests and the benchmarks to check that a faster path gives the same detections.

Near-tied scores may come out in another order when the arithmetic is rearranged (threads,
fused operators), so sets are compared as multisets: same label, every segment coordinate and
the score within tolerances, matched one to one (greedily, closest partner first).
"""
from __future__ import annotations

from typing import Mapping

import torch

__all__ = ["count_unmatched", "matched_share"]


def count_unmatched(got: Mapping[str, torch.Tensor], want: Mapping[str, torch.Tensor],
                    seg_tol: float, score_tol: float) -> int:
    """Entries of ``want`` left without a partner in ``got``.

    Args:
        got, want: dicts with ``segments`` (N, 2), ``scores`` (N,) and ``labels`` (N,).
        seg_tol: largest difference of a segment's start or end.
        score_tol: largest score difference.
    """
    seg = (want["segments"][:, None] - got["segments"][None]).abs().amax(-1)
    score = (want["scores"][:, None] - got["scores"][None]).abs()
    ok = ((want["labels"][:, None] == got["labels"][None]) & (seg <= seg_tol)
          & (score <= score_tol))
    used = torch.zeros(ok.shape[1], dtype=torch.bool)
    missing = 0
    for i in range(ok.shape[0]):
        free = (ok[i] & ~used).nonzero().flatten()
        if len(free) == 0:
            missing += 1
            continue
        used[free[torch.argmin(score[i, free] + seg[i, free])]] = True
    return missing


def matched_share(got: Mapping[str, torch.Tensor], want: Mapping[str, torch.Tensor],
                  seg_tol: float, score_tol: float) -> float:
    """Share of ``want`` matched one to one by ``got`` (1.0 when both are empty)."""
    total = want["scores"].numel()
    if total == 0:
        return 1.0 if got["scores"].numel() == 0 else 0.0
    return 1.0 - count_unmatched(got, want, seg_tol, score_tol) / total
