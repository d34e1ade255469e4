"""Construction of the ActionFormer model: the parsed train/test options, the pyramid geometry
(strides, windows, length divisors) and the backbone choice (docs/reference.md §1.3, §3.10).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Mapping, Sequence, Tuple, Union

from torch import nn

from .registry import make_backbone

__all__ = ["TrainSettings", "TestSettings", "max_divisor", "window_sizes", "check_max_seq_len",
           "build_backbone", "IntOrList"]

IntOrList = Union[int, Sequence[int]]


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """The ``train_cfg`` options the model reads (docs/reference.md §1.1)."""
    center_sample: str
    center_sample_radius: float
    loss_weight: float
    cls_prior_prob: float
    init_loss_norm: float
    dropout: float
    droppath: float
    label_smoothing: float
    head_empty_cls: Tuple[int, ...]

    @classmethod
    def from_cfg(cls, cfg: Mapping) -> "TrainSettings":
        values = _pick(cfg, "train_cfg", [f.name for f in dataclasses.fields(cls)])
        values["head_empty_cls"] = tuple(values["head_empty_cls"])
        if values["center_sample"] not in ("radius", "none"):
            raise ValueError("train_cfg.center_sample must be 'radius' or 'none', got "
                             f"'{values['center_sample']}'")
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class TestSettings:
    """The ``test_cfg`` options the model reads (docs/reference.md §1.1)."""
    pre_nms_thresh: float
    pre_nms_topk: int
    iou_threshold: float
    min_score: float
    max_seg_num: int
    nms_method: str
    duration_thresh: float
    multiclass_nms: bool
    nms_sigma: float
    voting_thresh: float

    @classmethod
    def from_cfg(cls, cfg: Mapping) -> "TestSettings":
        values = _pick(cfg, "test_cfg", [f.name for f in dataclasses.fields(cls)])
        if values["nms_method"] not in ("soft", "hard", "none"):
            raise ValueError("test_cfg.nms_method must be 'soft', 'hard' or 'none', got "
                             f"'{values['nms_method']}'")
        return cls(**values)


def _pick(cfg: Mapping, section: str, names: Sequence[str]) -> Dict:
    missing = [name for name in names if name not in cfg]
    if missing:
        raise KeyError(f"model.{section} lacks the key(s) {missing}")
    return {name: cfg[name] for name in names}


def max_divisor(fpn_strides: Sequence[int], mha_win_size: Sequence[int]) -> int:
    """Largest length divisor the levels need: s * 2 * (w // 2) for local windows, else s.

    As in the original, strides and windows are zipped from level 0 (§9 item 26).
    """
    divisors = [s * (w // 2) * 2 if w > 1 else s for s, w in zip(fpn_strides, mha_win_size)]
    return max(1, max(divisors, default=1))


def window_sizes(n_mha_win_size: IntOrList, num_levels: int) -> List[int]:
    """The local attention window of every level (an int applies to all ``num_levels``)."""
    if isinstance(n_mha_win_size, int):
        return [n_mha_win_size] * num_levels
    sizes = list(n_mha_win_size)
    if len(sizes) != num_levels:
        raise ValueError(f"model.n_mha_win_size needs {num_levels} entries, got {len(sizes)}")
    return sizes


def check_max_seq_len(max_seq_len: int, fpn_strides: Sequence[int],
                      mha_win_size: Sequence[int]) -> None:
    """Raises unless ``max_seq_len`` is divisible by every level's stride x window divisor."""
    for s, w in zip(fpn_strides, mha_win_size):
        d = s * (w // 2) * 2 if w > 1 else s
        if max_seq_len % d != 0:
            raise ValueError("max_seq_len must be divisible by fpn stride and window size "
                             f"(max_seq_len {max_seq_len}, stride {s}, window {w})")


def build_backbone(backbone_type: str, input_dim: IntOrList, embd_dim: IntOrList, n_head: int,
                   embd_kernel_size: int, max_seq_len: int, backbone_arch: Sequence[int],
                   mha_win_size: Sequence[int], scale_factor: int, embd_with_ln: bool,
                   use_abs_pe: bool, use_rel_pe: bool, train: "TrainSettings") -> nn.Module:
    """The 'convTransformer' or 'conv' backbone with the model's keywords (the original's)."""
    if backbone_type not in ("convTransformer", "conv"):
        raise ValueError(f"model.backbone_type must be 'convTransformer' or 'conv', got "
                         f"'{backbone_type}'")
    if backbone_type == "convTransformer":
        return make_backbone(
            "convTransformer", n_in=input_dim, n_embd=embd_dim, n_head=n_head,
            n_embd_ks=embd_kernel_size, max_len=max_seq_len, arch=backbone_arch,
            mha_win_size=mha_win_size, scale_factor=scale_factor,
            with_ln=embd_with_ln, attn_pdrop=0.0, proj_pdrop=train.dropout,
            path_pdrop=train.droppath, use_abs_pe=use_abs_pe, use_rel_pe=use_rel_pe)
    return make_backbone(
        "conv", n_in=input_dim, n_embd=embd_dim, n_embd_ks=embd_kernel_size,
        arch=backbone_arch, scale_factor=scale_factor, with_ln=embd_with_ln)
