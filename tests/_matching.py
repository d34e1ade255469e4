"""Order-insensitive comparison of candidate / detection sets (shared by the model tests; the
matcher itself is libs/evaluation/compare.py, which the benchmarks use too).

Near-tied scores may come out in another order when the arithmetic is rearranged (threads,
fused operators), so sets are compared as multisets: same label, segment and score within
tolerances, matched one to one.
"""
from __future__ import annotations

from typing import Mapping, Tuple

import torch

from libs.evaluation.compare import count_unmatched


def sort_by_label_score(c: Mapping[str, torch.Tensor]
                        ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(segments, scores, labels) sorted by (label, score), stable."""
    key = c["labels"].double() * 10 + c["scores"].double()
    order = torch.argsort(key, stable=True)
    return c["segments"][order], c["scores"][order], c["labels"][order]


def assert_same_multiset(got: Mapping[str, torch.Tensor], want: Mapping[str, torch.Tensor],
                         seg_tol: float, score_tol: float) -> None:
    """Same number of entries and a one-to-one match within the tolerances: rows equal after
    sorting by (label, score) are accepted at once, the others are matched greedily."""
    assert got["scores"].shape == want["scores"].shape
    (g_seg, g_sc, g_lab), (w_seg, w_sc, w_lab) = sort_by_label_score(got), \
        sort_by_label_score(want)
    assert torch.equal(g_lab, w_lab)
    bad = ~(((g_seg - w_seg).abs().amax(-1) <= seg_tol) & ((g_sc - w_sc).abs() <= score_tol))
    rest_g = {"segments": g_seg[bad], "scores": g_sc[bad], "labels": g_lab[bad]}
    rest_w = {"segments": w_seg[bad], "scores": w_sc[bad], "labels": w_lab[bad]}
    missing = count_unmatched(rest_g, rest_w, seg_tol, score_tol)
    assert missing == 0, f"{missing} of {len(w_lab)} entries have no partner"
