"""A scalar transcription of docs/reference.md §5.4, the test oracle for both NMS backends.

Written line by line from the specification (not from libs/ops): float32 scalars through NumPy,
one candidate at a time, the literal swap-with-last deletion. Slow, so only for small inputs.
"""
from __future__ import annotations

import math

import numpy as np
import torch

F = np.float32


def _iou(ax1, ax2, aarea, bx1, bx2, barea):
    inter = max(F(0), F(min(ax2, bx2) - max(ax1, bx1)))
    return F(inter / F(F(aarea + barea) - inter))


def ref_nms(segs: torch.Tensor, scores: torch.Tensor, thr: float) -> list:
    """Hard NMS: visit in ``scores.sort(descending=True)`` order, suppress IoU >= thr."""
    if len(segs) == 0:
        return []
    x1 = segs[:, 0].numpy()
    x2 = segs[:, 1].numpy()
    area = (segs[:, 1] - segs[:, 0] + 1e-6).numpy()  # float32 tensor arithmetic as §5.4
    order = scores.sort(descending=True)[1].tolist()
    thr = F(thr)
    suppressed = set()
    keep = []
    for a, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        for j in order[a + 1:]:
            if j not in suppressed and _iou(x1[i], x2[i], area[i], x1[j], x2[j], area[j]) >= thr:
                suppressed.add(j)
    return keep


def ref_softnms(segs: torch.Tensor, scores: torch.Tensor, thr: float, sigma: float,
                min_score: float, method: int):
    """Soft-NMS as §5.4; returns (indices, dets as a (K, 3) float32 array)."""
    x1 = [F(v) for v in segs[:, 0].tolist()]
    x2 = [F(v) for v in segs[:, 1].tolist()]
    sc = [F(v) for v in scores.tolist()]
    area = [F(v) for v in (segs[:, 1] - segs[:, 0] + 1e-6).tolist()]
    ind = list(range(len(sc)))
    thr, sigma, min_score = F(thr), F(sigma), F(min_score)
    dets = []
    n = len(sc)
    i = 0
    while i < n:
        best = i
        for p in range(i + 1, n):
            if sc[best] < sc[p]:
                best = p
        dets.append((x1[best], x2[best], sc[best]))
        for arr in (x1, x2, sc, area, ind):
            arr[i], arr[best] = arr[best], arr[i]
        p = i + 1
        while p < n:
            ovr = _iou(x1[i], x2[i], area[i], x1[p], x2[p], area[p])
            if method == 0:
                w = F(0) if ovr >= thr else F(1)
            elif method == 1:
                w = F(F(1) - ovr) if ovr >= thr else F(1)
            else:
                w = F(math.exp(float(F(-(ovr * ovr)) / sigma)))
            sc[p] = F(sc[p] * w)
            if sc[p] < min_score:
                for arr in (x1, x2, sc, area, ind):
                    arr[p] = arr[n - 1]
                n -= 1
            else:
                p += 1
        i += 1
    return ind[:n], np.array(dets, dtype=np.float32).reshape(-1, 3)


def random_case(gen: torch.Generator, max_n: int = 60, span: float = 50.0,
                num_classes: int = 0):
    """Random candidates with the awkward cases mixed in: exact score ties, duplicate
    segments, zero-length segments, and sizes 0 and 1.

    Returns:
        (segs (N, 2) float32, scores (N,) float32, labels (N,) int64 or None).
    """
    kind = int(torch.randint(0, 10, (1,), generator=gen))
    n = {0: 0, 1: 1}.get(kind, int(torch.randint(2, max_n + 1, (1,), generator=gen)))
    center = torch.rand(n, generator=gen) * span
    length = torch.rand(n, generator=gen) * span / 8
    length[torch.rand(n, generator=gen) < 0.1] = 0.0  # zero-length segments
    segs = torch.stack([center - length / 2, center + length / 2], dim=1)
    scores = torch.rand(n, generator=gen)
    if kind in (2, 3, 4) and n > 0:  # coarse scores: many exact ties
        scores = (scores * 5).floor() / 5 + 0.1
    if kind in (3, 5, 6) and n > 2:  # duplicated segments, some with the same score too
        src = torch.randint(0, n, (n // 3,), generator=gen)
        dst = torch.randint(0, n, (n // 3,), generator=gen)
        segs[dst] = segs[src]
        tie = dst[: len(dst) // 2]
        scores[tie] = scores[src[: len(dst) // 2]]
    labels = None
    if num_classes:
        labels = torch.randint(0, num_classes, (n,), generator=gen)
    return segs, scores, labels
