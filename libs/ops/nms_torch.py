"""Pure-PyTorch 1-D NMS and Soft-NMS: the exact fallback for the C++ extension ``libs.ops._C``.

Behaviour: docs/reference.md §5.4 (the original's ``nms_1d_cpu``) and STYLE.md §3.9. The two
functions have the C++ signatures and return the same indices (and, for Soft-NMS, the same
decayed scores), on any device. What is reproduced, point by point (tests/ops/test_nms.py
checks each one against a scalar transcription of §5.4 and against the C++ extension):

1. Areas are ``x2 - x1 + 1e-6`` and every IoU / decay is computed in float32, with the same
   operation order as the C++ (``inter / (area_i + area_j - inter)``, ``inter = max(0, ...)``).
   Thresholds are float32 values (a C ``float`` in the original, e.g. 0.1 -> 0.1f).
2. Hard NMS visits candidates in the order of ``scores.sort(descending=True)``, ATen's default
   (non-stable) sort, so exact ties break the same way. The sort always runs on the CPU, so the
   tie order does not depend on the device. Suppression uses ``IoU >= iou_threshold``.
3. Soft-NMS, each outer step ``i``:

   * picks the first maximum among the live entries in their *current* order
     (``torch.argmax`` returns the first occurrence, like the C++ strict ``<`` scan);
   * swaps it to position ``i`` (that position and its score never change again);
   * decays every other live score exactly once: method 0 hard (``0`` if ``IoU >= thr``),
     1 linear (``1 - IoU`` if ``IoU >= thr``), 2 Gaussian ``exp(-IoU^2 / sigma)`` whatever
     ``thr``;
   * deletes a score that fell strictly below ``min_score`` by moving the *last* live entry
     into its slot and re-examining that slot. This swap-with-last reorders the live entries,
     which decides how later ties break, so it is reproduced exactly (see
     :func:`_compact_like_swap_with_last`).

   It returns the surviving original indices in selection order and writes ``dets[:K] =
   (x1, x2, decayed score)``. The top-scoring candidate is never checked against
   ``min_score``; ``iou_threshold`` has no effect for the Gaussian method.

The C++ Gaussian weight uses the float ``expf``, which is (nearly always) correctly rounded;
``torch.exp`` on float32 may differ by one ulp, so the weight here is ``exp`` evaluated in
float64 and rounded to float32, which gives the correctly rounded value too.

The outer loops run once per *kept* segment; all per-candidate work (IoU, decay, argmax,
deletions) is tensor operations over the live candidates.
"""
from __future__ import annotations

import torch

__all__ = ["nms", "softnms", "check_inputs"]

_MAX_SOFT_N = 2 ** 24  # original indices are carried as exact float32 integers


def check_inputs(fn: str, segs: torch.Tensor, scores: torch.Tensor) -> None:
    """Raises ValueError unless segs is float32 (N, 2) and scores float32 (N,) on one device.

    The same messages as the C++ extension (which also requires CPU and contiguous tensors;
    this implementation runs anywhere).
    """
    if not isinstance(segs, torch.Tensor) or not isinstance(scores, torch.Tensor):
        raise ValueError(f"{fn}: segs and scores must be tensors, got "
                         f"{type(segs).__name__} and {type(scores).__name__}")
    if segs.dtype != torch.float32:
        raise ValueError(f"{fn}: segs must be float32, got {segs.dtype}")
    if scores.dtype != torch.float32:
        raise ValueError(f"{fn}: scores must be float32, got {scores.dtype}")
    if segs.dim() != 2 or segs.shape[1] != 2:
        raise ValueError(f"{fn}: segs must have shape (N, 2), got {tuple(segs.shape)}")
    if scores.dim() != 1 or scores.shape[0] != segs.shape[0]:
        raise ValueError(f"{fn}: scores must have shape (N,) with N = segs.size(0) = "
                         f"{segs.shape[0]}, got {tuple(scores.shape)}")
    if segs.device != scores.device:
        raise ValueError(f"{fn}: segs and scores must be on one device, got {segs.device} "
                         f"and {scores.device}")


def _f32(value: float, device: torch.device) -> torch.Tensor:
    """A float32 0-d tensor: thresholds compare in float32 like the C ``float`` arguments."""
    return torch.tensor(float(value), dtype=torch.float32, device=device)


def _iou(x1: torch.Tensor, x2: torch.Tensor, area: torch.Tensor,
         ox1: torch.Tensor, ox2: torch.Tensor, oarea: torch.Tensor) -> torch.Tensor:
    """IoU of one segment (0-d x1, x2, area) with many (M,), in the C++ operation order."""
    inter = (torch.minimum(x2, ox2) - torch.maximum(x1, ox1)).clamp_(min=0)
    return inter / ((area + oarea) - inter)


def nms(segs: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy hard 1-D NMS.

    Args:
        segs: (N, 2) float32 ``(start, end)``.
        scores: (N,) float32.
        iou_threshold: a later candidate is suppressed when its IoU with a kept one is
            ``>= iou_threshold``.

    Returns:
        (K,) int64 indices into the inputs of the kept segments, in descending score order
        (the order of ``scores.sort(descending=True)``), on the device of ``segs``.
    """
    check_inputs("nms", segs, scores)
    device = segs.device
    if segs.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    thr = _f32(iou_threshold, device)
    x1, x2 = segs[:, 0], segs[:, 1]
    area = x2 - x1 + 1e-6
    order = scores.cpu().sort(descending=True)[1].to(device)
    # live candidates, compacted after each step, in visiting order: rows x1, x2, area
    live = torch.stack([x1, x2, area])[:, order]
    live_idx = order
    keep = []
    while live_idx.numel() > 0:
        keep.append(live_idx[:1])
        head, rest = live[:, 0], live[:, 1:]
        ovr = _iou(head[0], head[1], head[2], rest[0], rest[1], rest[2])
        survive = ~(ovr >= thr)  # NaN IoU suppresses nothing, as the C++ comparison
        live, live_idx = rest[:, survive], live_idx[1:][survive]
    return torch.cat(keep)


def _compact_like_swap_with_last(deleted: torch.Tensor) -> torch.Tensor:
    """Final arrangement of a run of entries after the C++ swap-with-last deletions.

    The C++ scans positions left to right; a deleted position receives the current last entry
    (and is re-examined), the live count shrinks by one. Deleted entries moved in from the end
    are thus dropped, and each deleted slot among the first K positions (K = number of kept
    entries) ends up holding a kept entry from beyond K: the lowest such slot gets the
    highest-positioned one, and so on. Kept entries already inside the first K stay put.

    Args:
        deleted: (L,) bool, one flag per live position (in current order).

    Returns:
        (K,) int64 positions: entry ``j`` of the new order is old position ``result[j]``.
    """
    kept = ~deleted
    k = int(kept.sum())
    perm = torch.arange(k, device=deleted.device)
    holes = torch.nonzero(deleted[:k]).squeeze(1)  # ascending
    if holes.numel() > 0:
        donors = torch.nonzero(kept[k:]).squeeze(1).flip(0) + k  # descending positions
        perm[holes] = donors
    return perm


def softnms(segs: torch.Tensor, scores: torch.Tensor, dets: torch.Tensor,
            iou_threshold: float, sigma: float, min_score: float,
            method: int) -> torch.Tensor:
    """1-D Soft-NMS, the C++ ``softnms`` step for step.

    Args:
        segs: (N, 2) float32 ``(start, end)``.
        scores: (N,) float32.
        dets: (N, 3) float32 output buffer on the same device; rows ``[:K]`` receive
            ``(x1, x2, decayed score)`` of the kept segments in selection order (rows beyond
            K are left untouched).
        iou_threshold: used by methods 0 and 1 only.
        sigma: Gaussian width (method 2).
        min_score: a decayed score strictly below it is deleted.
        method: 0 hard, 1 linear, 2 Gaussian.

    Returns:
        (K,) int64 original indices of the kept segments in selection order.
    """
    check_inputs("softnms", segs, scores)
    if (not isinstance(dets, torch.Tensor) or dets.dtype != torch.float32
            or dets.dim() != 2 or dets.shape[0] != segs.shape[0] or dets.shape[1] != 3):
        got = (f"{dets.dtype} {tuple(dets.shape)}" if isinstance(dets, torch.Tensor)
               else type(dets).__name__)
        raise ValueError(f"softnms: dets must be float32 with shape (N, 3) with N = "
                         f"segs.size(0) = {segs.shape[0]}, got {got}")
    if method not in (0, 1, 2):
        raise ValueError(f"softnms: method must be 0 (hard), 1 (linear) or 2 (gaussian), "
                         f"got {method}")
    device = segs.device
    num = segs.shape[0]
    if num == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    thr = _f32(iou_threshold, device)
    sig = _f32(sigma, device)
    min_sc = _f32(min_score, device)

    if num > _MAX_SOFT_N:
        raise ValueError(f"softnms: at most {_MAX_SOFT_N} candidates are supported, got {num}")
    x1, x2 = segs[:, 0], segs[:, 1]
    # Work rows (copies): x1, x2, score, area, original index. The index rides along as a
    # float32 (exact below 2**24) so that one indexing op moves a whole entry.
    index = torch.arange(num, device=device, dtype=torch.float32)
    work = torch.stack([x1, x2, scores, x2 - x1 + 1e-6, index])
    neg_sig = -sig  # -(a * a) / s == (a * a) / (-s) exactly in IEEE arithmetic
    n = num
    i = 0
    while i < n:
        # positions [0, i) are final; pick the first maximum among the live ones
        p = i + int(torch.argmax(work[2, i:n]))
        if p != i:
            entry = work[:, p].clone()
            work[:, p] = work[:, i]
            work[:, i] = entry
        if i + 1 < n:
            head, rest = work[:, i], work[:, i + 1:n]
            ovr = _iou(head[0], head[1], head[3], rest[0], rest[1], rest[3])
            if method == 2:
                # float64 exp rounded to float32 = the correctly rounded expf of the C++
                weight = torch.square(ovr).div_(neg_sig).double().exp_().float()
            elif method == 1:
                weight = torch.where(ovr >= thr, 1 - ovr, torch.ones_like(ovr))
            else:
                weight = torch.where(ovr >= thr, torch.zeros_like(ovr), torch.ones_like(ovr))
            decayed = rest[2].mul_(weight)  # in place: rest is a view of work
            deleted = decayed < min_sc
            if bool(deleted.any()):
                perm = _compact_like_swap_with_last(deleted) + (i + 1)
                work[:, i + 1:i + 1 + perm.numel()] = work[:, perm]
                n = i + 1 + perm.numel()
        i += 1
    dets[:n] = work[:3, :n].t()
    return work[4, :n].to(torch.int64)
