"""Public NMS API: ``batched_nms``, ``seg_voting`` and the choice of backend.

Behaviour: docs/reference.md §5.2-§5.4 and §9 items 2, 18, 19, 33 (the original's
``libs/utils/nms.py``); design: STYLE.md §3.9.

Backends. The kernels exist twice with identical results: the optional C++ extension
``libs.ops._C`` (built by ``pip install -e .`` when a compiler works) and the pure-PyTorch
``libs.ops.nms_torch``. The environment variable ``ACTIONFORMER_NMS_BACKEND`` picks one:

* ``auto`` (default): C++ when ``libs.ops._C`` imports, else PyTorch, announced once at INFO;
* ``cpp``: C++, and a clear error when the extension is not built;
* ``torch``: PyTorch.

It is read at every call, so tests and benchmarks can switch backends with the variable.

Like the original, detections are moved to the CPU before NMS and the outputs are CPU tensors.
Unlike the original, inputs are checked, non-float32 floating inputs are cast to float32 (the
original read their memory as float32), and there is no ``autograd.Function`` wrapper (NMS is
not differentiable; the original's wrapper also computed an unused ``valid_inds``).
"""
from __future__ import annotations

import logging
import os
from typing import Optional, Tuple

import torch

from . import nms_torch

__all__ = ["batched_nms", "seg_voting", "nms_backend", "extension_available", "BACKEND_ENV"]

BACKEND_ENV = "ACTIONFORMER_NMS_BACKEND"
_BACKENDS = ("auto", "cpp", "torch")
_FALLBACK_MSG = "C++ NMS not built; using the PyTorch implementation (same results, slower)"

logger = logging.getLogger(__name__)

try:  # the optional compiled extension (setup.py); everything works without it
    from . import _C  # type: ignore[attr-defined]
    _C_IMPORT_ERROR: Optional[str] = None
except ImportError as _err:
    _C = None
    _C_IMPORT_ERROR = str(_err)

_fallback_announced = False


def extension_available() -> bool:
    """True when the compiled extension ``libs.ops._C`` was imported."""
    return _C is not None


def nms_backend() -> str:
    """The backend the next NMS call uses: ``'cpp'`` or ``'torch'``.

    Raises:
        ValueError: ``ACTIONFORMER_NMS_BACKEND`` holds an unknown value.
        RuntimeError: it says ``cpp`` but the extension is not built.
    """
    global _fallback_announced
    wanted = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if wanted not in _BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={os.environ.get(BACKEND_ENV)!r}: expected one of "
                         f"{', '.join(_BACKENDS)}")
    if wanted == "torch":
        return "torch"
    if _C is not None:
        return "cpp"
    if wanted == "cpp":
        raise RuntimeError(
            f"{BACKEND_ENV}=cpp but the C++ NMS extension libs.ops._C is not built "
            f"({_C_IMPORT_ERROR}). Rebuild it with `pip install -e . --no-build-isolation` "
            f"(needs a C++ compiler; see INSTALL.md) or unset {BACKEND_ENV}.")
    if not _fallback_announced:
        _fallback_announced = True
        logger.info(_FALLBACK_MSG)
    return "torch"


def _kernels():
    return _C if nms_backend() == "cpp" else nms_torch


def _soft_nms(segs: torch.Tensor, scores: torch.Tensor, cls_idxs: torch.Tensor,
              iou_threshold: float, sigma: float, min_score: float, method: int,
              max_num: int, kernels) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The original's Soft-NMS wrapper (§5.3): kernel call, then cap at ``max_num`` if > 0."""
    dets = segs.new_empty((segs.shape[0], 3))
    inds = kernels.softnms(segs.contiguous(), scores.contiguous(), dets, float(iou_threshold),
                           float(sigma), float(min_score), int(method))
    n = min(len(inds), max_num) if max_num > 0 else len(inds)
    return dets[:n, :2].clone(), dets[:n, 2].clone(), cls_idxs[inds[:n]]


def _hard_nms(segs: torch.Tensor, scores: torch.Tensor, cls_idxs: torch.Tensor,
              iou_threshold: float, min_score: float, max_num: int,
              kernels) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The original's hard-NMS wrapper (§5.3): ``score > min_score`` filter first (so a score
    equal to ``min_score`` is dropped, while Soft-NMS keeps it), kernel, cap."""
    if min_score > 0:
        valid = scores > torch.tensor(float(min_score), dtype=scores.dtype)
        segs, scores, cls_idxs = segs[valid], scores[valid], cls_idxs[valid]
    inds = kernels.nms(segs.contiguous(), scores.contiguous(), float(iou_threshold))
    if max_num > 0:
        inds = inds[:min(max_num, len(inds))]
    return segs[inds], scores[inds], cls_idxs[inds]


def seg_voting(nms_segs: torch.Tensor, all_segs: torch.Tensor, all_scores: torch.Tensor,
               iou_threshold: float, score_offset: float = 1.5) -> torch.Tensor:
    """Refines each kept segment as the score- and IoU-weighted mean of all candidates.

    ``W[m, n] = [IoU(m, n) >= iou_threshold] * score_n * IoU(m, n)`` with the plain IoU (no
    epsilon), each row normalised to sum 1; the result is ``W @ all_segs``.

    Args:
        nms_segs: (M, 2) kept segments.
        all_segs: (N, 2) all candidates before NMS.
        all_scores: (N,) their original (undecayed) scores.
        iou_threshold: the voting threshold (``voting_thresh``).
        score_offset: unused, kept for the original's signature (§9 item 19).

    Returns:
        (M, 2) refined segments.
    """
    del score_offset  # the original computes an offset score from it and never uses it
    m, n = nms_segs.shape[0], all_segs.shape[0]
    ms = nms_segs[:, None, :].expand(m, n, 2)
    al = all_segs[None, :, :].expand(m, n, 2)
    inter = (torch.minimum(ms[..., 1], al[..., 1])
             - torch.maximum(ms[..., 0], al[..., 0])).clamp(min=0)
    len_m = ms[..., 1] - ms[..., 0]
    len_n = al[..., 1] - al[..., 0]
    iou = inter / (len_m + len_n - inter)
    weights = (iou >= iou_threshold).to(all_scores.dtype) * all_scores[None, :] * iou
    weights = weights / torch.sum(weights, dim=1, keepdim=True)
    return weights @ all_segs


def _as_cpu_inputs(segs: torch.Tensor, scores: torch.Tensor, cls_idxs: torch.Tensor):
    for name, t in (("segs", segs), ("scores", scores), ("cls_idxs", cls_idxs)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"batched_nms: {name} must be a tensor, got {type(t).__name__}")
    if segs.dim() != 2 or segs.shape[1] != 2:
        raise ValueError(f"batched_nms: segs must have shape (N, 2), got {tuple(segs.shape)}")
    n = segs.shape[0]
    if scores.shape != (n,) or cls_idxs.shape != (n,):
        raise ValueError(f"batched_nms: scores and cls_idxs must have shape (N,) with N = {n}, "
                         f"got {tuple(scores.shape)} and {tuple(cls_idxs.shape)}")
    if not segs.is_floating_point() or not scores.is_floating_point():
        raise ValueError(f"batched_nms: segs and scores must be floating point, got "
                         f"{segs.dtype} and {scores.dtype}")
    # the original runs NMS on the CPU in float32 (meta_archs moves detections to the CPU)
    return (segs.detach().to("cpu", torch.float32), scores.detach().to("cpu", torch.float32),
            cls_idxs.detach().cpu())


def batched_nms(segs: torch.Tensor, scores: torch.Tensor, cls_idxs: torch.Tensor,
                iou_threshold: float, min_score: float, max_seg_num: int,
                use_soft_nms: bool = True, multiclass: bool = True, sigma: float = 0.5,
                voting_thresh: float = 0.75) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NMS over one video's candidates, exactly as the original post-processing (§5.3).

    * multiclass: Soft-NMS (Gaussian, method 2) or hard NMS per class id, classes in ascending
      ``torch.unique`` order, each capped at ``max_seg_num``, outputs concatenated; no voting;
    * class-agnostic: one (Soft-)NMS over all candidates capped at ``max_seg_num``, then, if
      ``voting_thresh > 0``, the kept segments are replaced by :func:`seg_voting` over all
      inputs (scores unchanged);
    * finally sorted by score, descending (PyTorch's default non-stable sort, as the original,
      so ties keep its order), and cut to ``min(max_seg_num, n)``.

    Args:
        segs: (N, 2) candidate segments (feature-grid units), any device.
        scores: (N,) candidate scores.
        cls_idxs: (N,) int64 class ids.
        iou_threshold: NMS IoU threshold (no effect for Gaussian Soft-NMS).
        min_score: Soft-NMS deletes decayed scores ``< min_score``; hard NMS first keeps only
            ``score > min_score`` (when ``min_score > 0``).
        max_seg_num: cap per class (multiclass) or overall, and on the final output.
        use_soft_nms: Gaussian Soft-NMS if True, else hard NMS.
        multiclass: per-class NMS if True, else class-agnostic.
        sigma: Soft-NMS Gaussian width.
        voting_thresh: IoU threshold of segment voting (class-agnostic only; <= 0 disables).

    Returns:
        ``(segs (K, 2) float32, scores (K,) float32, cls_idxs (K,))`` on the CPU, sorted by
        score. With no candidates: float32 zeros (0, 2), (0,) and an empty tensor of
        ``cls_idxs``' dtype.
    """
    segs, scores, cls_idxs = _as_cpu_inputs(segs, scores, cls_idxs)
    if segs.shape[0] == 0:
        return (torch.zeros(0, 2), torch.zeros(0),
                torch.zeros(0, dtype=cls_idxs.dtype))
    kernels = _kernels()

    def run(s: torch.Tensor, sc: torch.Tensor, c: torch.Tensor):
        if use_soft_nms:
            return _soft_nms(s, sc, c, iou_threshold, sigma, min_score, 2, max_seg_num,
                             kernels)
        return _hard_nms(s, sc, c, iou_threshold, min_score, max_seg_num, kernels)

    if multiclass:
        outs = []
        for class_id in torch.unique(cls_idxs):
            idx = torch.where(cls_idxs == class_id)[0]
            outs.append(run(segs[idx], scores[idx], cls_idxs[idx]))
        new_segs = torch.cat([o[0] for o in outs])
        new_scores = torch.cat([o[1] for o in outs])
        new_cls = torch.cat([o[2] for o in outs])
    else:
        new_segs, new_scores, new_cls = run(segs, scores, cls_idxs)
        if voting_thresh > 0:
            new_segs = seg_voting(new_segs, segs, scores, voting_thresh)

    order = new_scores.sort(descending=True)[1]
    # Python slicing as the original (a non-positive cap behaves as it did there)
    cap = min(max_seg_num, new_segs.shape[0])
    keep = order[:cap]
    return new_segs[keep], new_scores[keep], new_cls[keep]
