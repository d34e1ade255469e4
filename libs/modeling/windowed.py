"""Inference on videos longer than the model's point buffers: overlapping windows, one NMS.

New (the original has no such path: a video whose padded length exceeds
``max_seq_len * max_buffer_len_factor`` stops at the point generator's assertion "Reached max
buffer length for point generator").

Procedure (``detect_windowed``): the video's feature grid is cut into windows of ``window``
steps that overlap by ``2 * margin``; window k starts at ``k * (window - 2 * margin)``. Each
window runs through the network on its own (memory: one window). Of each window only the
candidates whose **anchor point** lies in its *core* are kept: ``[start + margin, end - margin)``,
the first window's core starting at 0 and the last one's ending at the video's end, so the
cores tile the video and every point is decoded exactly once. Per pyramid level the best
``pre_nms_topk`` candidates over all windows are kept (a running top-k, so memory stays bounded
by one window plus ``levels x pre_nms_topk`` candidates), then the model's own post-processing
(``libs.ops.batched_nms`` with the config's ``test_cfg``) merges them and converts to seconds.

Why this equals whole-video inference: an output at a point depends only on the inputs within
the network's receptive field (``receptive_radius``: convolutions, local attention windows,
strided pooling and heads; masks stop it at the video's ends). When ``margin`` is at least that
radius, window starts are multiples of the coarsest stride (so every level's grid is aligned)
and the model has no absolute position encoding and no global-attention level, every core
point sees exactly the inputs it sees in the whole video: the same logits and offsets (to float
rounding), the same per-level top-k, hence the same detections (up to the order of exactly
tied scores). ``tests/modeling/test_windowed.py`` measures it. With global attention or
absolute position encoding (the ActivityNet configs; they resize every video to
``max_seq_len`` and never need windows) the windows are an approximation.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .decoding import inference_single_video

__all__ = ["receptive_radius", "fits_whole", "window_plan", "default_window", "detect_windowed",
           "detect_video"]


def _windows_per_level(model_cfg: Mapping) -> List[int]:
    arch = model_cfg["backbone_arch"]
    windows = model_cfg["n_mha_win_size"]
    if isinstance(windows, int):
        windows = [windows] * (1 + arch[-1])
    return list(windows)


def receptive_radius(model_cfg: Mapping) -> Optional[int]:
    """Upper bound (input-grid steps) on how far an output point sees; None if unbounded.

    Args:
        model_cfg: the config's ``model`` section (backbone_arch, scale_factor,
            n_mha_win_size, embd_kernel_size, head_kernel_size, head_num_layers, ...).

    Sums, per stage, the reach of one step of that stage times its stride: embedding convs
    ``k // 2``; a stride-1 transformer block ``w // 2 + 1`` (window and the depthwise q/k/v
    convs); a strided block at output stride ``s`` ``(w // 2) * s + s / 2`` (window, and the
    kernel-3 convs / max-pool at the input level); conv blocks their two convs; the FPN convs
    and the heads at the coarsest stride. None when a level uses global attention
    (``w <= 1``) or absolute position encoding (then no margin makes windows exact).
    """
    arch, scale = model_cfg["backbone_arch"], model_cfg["scale_factor"]
    windows = _windows_per_level(model_cfg)
    conv_backbone = model_cfg["backbone_type"] == "conv"
    if not conv_backbone and (model_cfg.get("use_abs_pe") or min(windows) <= 1):
        return None
    radius = arch[0] * (model_cfg["embd_kernel_size"] // 2)
    for _ in range(arch[1]):
        radius += 2 if conv_backbone else windows[0] // 2 + 1
    for level in range(1, arch[2] + 1):
        s_out, s_in = scale ** level, scale ** (level - 1)
        radius += s_in + s_out if conv_backbone else (windows[level] // 2) * s_out + s_in
    top = scale ** arch[2]
    if model_cfg["fpn_type"] == "fpn":
        radius += top
    radius += model_cfg["head_num_layers"] * (model_cfg["head_kernel_size"] // 2) * top
    return radius


def _buffer_len(model) -> int:
    return int(model.point_generator.buffer_points[0].shape[0])


def fits_whole(model, length: int) -> bool:
    """Whether a video of ``length`` grid steps runs in one pass (padded length <= buffer)."""
    return model.padded_length([length], model.padding) <= _buffer_len(model)


def window_plan(length: int, window: int, margin: int) -> List[Tuple[int, int, int, int]]:
    """Windows ``(start, end, core_start, core_end)`` in grid steps covering ``[0, length)``.

    Window k starts at ``k * (window - 2 * margin)``; cores tile ``[0, length)`` without
    overlap. One window ``(0, length, 0, length)`` when ``length <= window``.
    """
    if window <= 2 * margin:
        raise ValueError(f"window ({window} steps) must be longer than twice the margin "
                         f"({margin} steps)")
    step = window - 2 * margin
    plan, start = [], 0
    while True:
        end = min(start + window, length)
        last = end >= length
        core_start = 0 if start == 0 else start + margin
        plan.append((start, end, core_start, length if last else end - margin))
        if last:
            return plan
        start += step


def default_window(model, model_cfg: Mapping) -> Tuple[int, int]:
    """(window, margin): the longest window the buffers take, the receptive radius as margin.

    Both are multiples of the coarsest stride (and the window of ``max_div_factor``), so the
    pyramid grids of all windows align with the whole video's. Without a finite radius
    (global attention / absolute PE) the margin is a quarter of the window.
    """
    div = model.max_div_factor
    window = max(div, _buffer_len(model) // div * div)
    top = model.scale_factor ** (model_cfg["backbone_arch"][-1])
    radius = receptive_radius(model_cfg)
    margin = window // 4 if radius is None else radius
    margin = math.ceil(margin / top) * top
    if window <= 2 * margin:
        raise ValueError(f"the model's buffers allow windows of {window} steps, too short for "
                         f"the receptive-field margin of {margin} steps on each side; raise "
                         "model.max_buffer_len_factor")
    return window, margin


def _level_masks(core: Tuple[int, int], start: int, points: Sequence[torch.Tensor],
                 fpn_masks: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Valid-point masks restricted to the core (point positions are window-local)."""
    lo, hi = core[0] - start, core[1] - start
    return [m & (p[:, 0] >= lo) & (p[:, 0] < hi) for p, m in zip(points, fpn_masks)]


def _merge_topk(kept: Optional[Dict[str, torch.Tensor]], new: Dict[str, torch.Tensor],
                topk: int) -> Dict[str, torch.Tensor]:
    """Running per-level top-k: concatenates and keeps the ``topk`` best scores (stable)."""
    if kept is not None:
        new = {k: torch.cat((kept[k], new[k])) for k in new}
    order = torch.argsort(new["scores"], descending=True, stable=True)[:topk]
    return {k: v[order] for k, v in new.items()}


@torch.no_grad()
def detect_windowed(model, item: Mapping, window: int, margin: int) -> Dict:
    """Detections of one video item decoded window by window (see the module docstring).

    Args:
        model: a ``PtTransformer`` in eval mode.
        item: the video item (``feats`` (C, T), ``video_id``, ``fps``, ``duration``,
            ``feat_stride``, ``feat_num_frames``).
        window, margin: grid steps (multiples of the coarsest stride; see ``default_window``).

    Returns:
        ``{'video_id', 'segments' (n, 2) seconds, 'scores' (n,), 'labels' (n,)}``, as
        ``model([item])[0]``.
    """
    s = model.test_settings
    feats = item["feats"]
    per_level: List[Optional[Dict[str, torch.Tensor]]] = []
    for start, end, core_start, core_end in window_plan(feats.shape[-1], window, margin):
        sub = dict(item, feats=feats[:, start:end])
        with torch.autocast(model.device.type, dtype=torch.bfloat16,
                            enabled=model.bf16_inference):
            out = model.forward_features([sub], padding=model.padding)
        masks = _level_masks((core_start, core_end), start, out["points"],
                             [m[0] for m in out["fpn_masks"]])
        if not per_level:
            per_level = [None] * len(masks)
        for level, mask in enumerate(masks):
            cand = inference_single_video(
                [out["points"][level]], [mask], [out["cls_logits"][level][0].float()],
                [out["offsets"][level][0].float()], s.pre_nms_thresh, s.pre_nms_topk,
                s.duration_thresh)
            cand["segments"] = cand["segments"] + start
            per_level[level] = _merge_topk(per_level[level], cand, s.pre_nms_topk)
    result = {k: torch.cat([c[k] for c in per_level]) for k in ("segments", "scores", "labels")}
    for key in ("video_id", "fps", "duration", "feat_stride", "feat_num_frames"):
        result[key] = item[key]
    return model.postprocessing(result)


def detect_video(model, item: Mapping, model_cfg: Mapping, window: Optional[int] = None,
                 margin: Optional[int] = None) -> Tuple[Dict, int]:
    """One video: whole when it fits the buffers (and no window is forced), else windowed.

    Returns:
        (detections as ``model([item])[0]``, number of windows used; 1 = whole video).
    """
    length = item["feats"].shape[-1]
    if window is None and fits_whole(model, length):
        return model([item])[0], 1
    auto_window, auto_margin = default_window(model, model_cfg)
    window = auto_window if window is None else window
    margin = auto_margin if margin is None else margin
    for name, value in (("window", window), ("margin", margin)):
        top = model.scale_factor ** (model_cfg["backbone_arch"][-1])
        if value % top:
            raise ValueError(f"{name} ({value} steps) must be a multiple of the coarsest "
                             f"pyramid stride ({top})")
    if not fits_whole(model, min(window, length)):
        raise ValueError(f"window of {window} steps does not fit the model's point buffers "
                         f"({_buffer_len(model)} steps)")
    return detect_windowed(model, item, window, margin), len(window_plan(length, window,
                                                                         margin))
