"""Classification and regression heads (docs/reference.md §3.9).

Mirrors ``PtTransformerClsHead`` / ``PtTransformerRegHead`` of the original's
``libs/modeling/meta_archs.py``. Frozen attribute names and order: ``act, head, norm,
cls_head`` and ``act, head, norm, scale, offset_head``. The shared conv tower is built by one
helper that keeps these names.

Difference (speed only, ``fuse_levels``, on by default): the original runs the shared tower
once per pyramid level (6 levels x ~10 small operators per layer). Here the levels are
concatenated along time with ``kernel_size // 2`` zero columns between them and the tower runs
once. The zero columns play the role of each level's conv zero padding: they are masked off
after every conv and re-zeroed after every norm / activation (a LayerNorm turns a zero column
into its bias), so every output position sees exactly the inputs it sees level by level,
including the padded positions inside each level (docs/reference.md §9 item 11). Outputs are views
of
the fused result split per level. Same arithmetic per output element; the convolution library
may block a longer input differently, so results agree to float rounding (tested).
``fuse_levels = False`` restores the per-level loop.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .blocks import LayerNorm, MaskedConv1D, Scale

__all__ = ["PtTransformerClsHead", "PtTransformerRegHead"]


def concat_levels(feats: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], gap: int
                  ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], List[int]]:
    """Concatenates pyramid levels along time with ``gap`` zero columns between them.

    Args:
        feats: per level (B, C, T_l); masks: per level (B, 1, T_l) bool.
        gap: zero columns between consecutive levels (the convs' ``kernel_size // 2``).

    Returns:
        (x (B, C, L), mask (B, 1, L) with the gaps off, keep (1, 1, L) float with 0 at the
        gaps or None when ``gap == 0``, sizes: the split sizes ``[T_0, gap, T_1, ..., T_n]``).
    """
    sizes: List[int] = []
    for level, feat in enumerate(feats):
        if level > 0 and gap > 0:
            sizes.append(gap)
        sizes.append(feat.shape[-1])
    if gap == 0:
        return torch.cat(list(feats), dim=-1), torch.cat(list(masks), dim=-1), None, sizes
    B, C = feats[0].shape[:2]
    zeros = feats[0].new_zeros(B, C, gap)
    off = masks[0].new_zeros(B, 1, gap)
    x = torch.cat([t for feat in feats for t in (zeros, feat)][1:], dim=-1)
    mask = torch.cat([t for m in masks for t in (off, m)][1:], dim=-1)
    keep = torch.ones(1, 1, x.shape[-1], dtype=x.dtype, device=x.device)
    end = 0
    for idx, size in enumerate(sizes):
        end += size
        if idx % 2 == 1:
            keep[..., end - size:end] = 0
    return x, mask, keep, sizes


class _ConvTower(nn.Module):
    """Registers ``act``, ``head`` and ``norm``: (num_layers - 1) x (conv -> norm -> act)."""

    def _build_tower(self, input_dim: int, feat_dim: int, num_layers: int, kernel_size: int,
                     act_layer, with_ln: bool) -> None:
        self.fuse_levels = True
        self._gap = kernel_size // 2
        self.act = act_layer()
        self.head = nn.ModuleList()
        self.norm = nn.ModuleList()
        for idx in range(num_layers - 1):
            self.head.append(MaskedConv1D(input_dim if idx == 0 else feat_dim, feat_dim,
                                          kernel_size, stride=1, padding=kernel_size // 2,
                                          bias=not with_ln))
            self.norm.append(LayerNorm(feat_dim) if with_ln else nn.Identity())

    def _tower(self, x: torch.Tensor, mask: torch.Tensor,
               keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        for conv, norm in zip(self.head, self.norm):
            x, _ = conv(x, mask)
            x = self.act(norm(x))
            if keep is not None:
                x = x * keep.to(x.dtype)
        return x

    def _levels(self, fpn_feats: Sequence[torch.Tensor], fpn_masks: Sequence[torch.Tensor],
                out_conv: MaskedConv1D) -> List[torch.Tensor]:
        """``out_conv(tower(x))`` on every level: per level (B, C_out, T_l)."""
        assert len(fpn_feats) == len(fpn_masks)
        if not self.fuse_levels or len(fpn_feats) == 1:
            return [out_conv(self._tower(feat, mask), mask)[0]
                    for feat, mask in zip(fpn_feats, fpn_masks)]
        x, mask, keep, sizes = concat_levels(fpn_feats, fpn_masks, self._gap)
        out, _ = out_conv(self._tower(x, mask, keep), mask)
        step = 2 if self._gap > 0 else 1
        return list(out.split(sizes, dim=-1))[::step]


class PtTransformerClsHead(_ConvTower):
    """Per-level classification logits.

    Args:
        input_dim: input channels (fpn_dim).
        feat_dim: hidden channels (head_dim).
        num_classes: K.
        prior_prob: classifier bias = -log((1 - p) / p) when p > 0.
        num_layers: depth including the prediction conv.
        kernel_size: kernel of every conv.
        act_layer: activation class.
        with_ln: LayerNorm in the hidden layers (then those convs have no bias).
        empty_cls: class ids whose bias is -log((1 - 1e-6) / 1e-6) (never predicted).
    """

    def __init__(self, input_dim: int, feat_dim: int, num_classes: int,
                 prior_prob: float = 0.01, num_layers: int = 3, kernel_size: int = 3,
                 act_layer=nn.ReLU, with_ln: bool = False,
                 empty_cls: Sequence[int] = ()) -> None:
        super().__init__()
        self._build_tower(input_dim, feat_dim, num_layers, kernel_size, act_layer, with_ln)
        self.cls_head = MaskedConv1D(feat_dim, num_classes, kernel_size, stride=1,
                                     padding=kernel_size // 2)
        if prior_prob > 0:
            bias_value = -math.log((1 - prior_prob) / prior_prob)
            nn.init.constant_(self.cls_head.conv.bias, bias_value)
        if len(empty_cls) > 0:
            bias_value = -math.log((1 - 1e-6) / 1e-6)
            with torch.no_grad():
                for idx in empty_cls:
                    self.cls_head.conv.bias[idx] = bias_value

    def forward(self, fpn_feats: Sequence[torch.Tensor], fpn_masks: Sequence[torch.Tensor]
                ) -> List[torch.Tensor]:
        """Args: per-level features (B, C, T_l), masks (B, 1, T_l).

        Returns: per-level logits (B, K, T_l), zero at padded positions.
        """
        return self._levels(fpn_feats, fpn_masks, self.cls_head)


class PtTransformerRegHead(_ConvTower):
    """Per-level regression of (distance to start, distance to end) in stride units.

    Args:
        input_dim, feat_dim, num_layers, kernel_size, act_layer, with_ln: as the cls head.
        fpn_levels: number of pyramid levels (one learnable ``Scale`` each).
    """

    def __init__(self, input_dim: int, feat_dim: int, fpn_levels: int, num_layers: int = 3,
                 kernel_size: int = 3, act_layer=nn.ReLU, with_ln: bool = False) -> None:
        super().__init__()
        self.fpn_levels = fpn_levels
        self._build_tower(input_dim, feat_dim, num_layers, kernel_size, act_layer, with_ln)
        self.scale = nn.ModuleList([Scale() for _ in range(fpn_levels)])
        self.offset_head = MaskedConv1D(feat_dim, 2, kernel_size, stride=1,
                                        padding=kernel_size // 2)

    def forward(self, fpn_feats: Sequence[torch.Tensor], fpn_masks: Sequence[torch.Tensor]
                ) -> List[torch.Tensor]:
        """Args: per-level features (B, C, T_l), masks (B, 1, T_l).

        Returns: per-level non-negative offsets (B, 2, T_l) = relu(scale_l * conv(h)).
        """
        assert len(fpn_feats) == len(fpn_masks) == self.fpn_levels
        offsets = self._levels(fpn_feats, fpn_masks, self.offset_head)
        return [torch.relu(scale(x)) for scale, x in zip(self.scale, offsets)]
