"""Classification and regression heads (REFERENCE §3.9).

Mirrors ``PtTransformerClsHead`` / ``PtTransformerRegHead`` of the original's
``libs/modeling/meta_archs.py``. Frozen attribute names and order: ``act, head, norm,
cls_head`` and ``act, head, norm, scale, offset_head``. The shared conv tower is built by one
helper that keeps these names. Differences: none in behaviour.
"""
from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import nn

from .blocks import LayerNorm, MaskedConv1D, Scale

__all__ = ["PtTransformerClsHead", "PtTransformerRegHead"]


class _ConvTower(nn.Module):
    """Registers ``act``, ``head`` and ``norm``: (num_layers - 1) x (conv -> norm -> act)."""

    def _build_tower(self, input_dim: int, feat_dim: int, num_layers: int, kernel_size: int,
                     act_layer, with_ln: bool) -> None:
        self.act = act_layer()
        self.head = nn.ModuleList()
        self.norm = nn.ModuleList()
        for idx in range(num_layers - 1):
            self.head.append(MaskedConv1D(input_dim if idx == 0 else feat_dim, feat_dim,
                                          kernel_size, stride=1, padding=kernel_size // 2,
                                          bias=not with_ln))
            self.norm.append(LayerNorm(feat_dim) if with_ln else nn.Identity())

    def _tower(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.head, self.norm):
            x, _ = conv(x, mask)
            x = self.act(norm(x))
        return x


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
        assert len(fpn_feats) == len(fpn_masks)
        return [self.cls_head(self._tower(feat, mask), mask)[0]
                for feat, mask in zip(fpn_feats, fpn_masks)]


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
        out = []
        for level, (feat, mask) in enumerate(zip(fpn_feats, fpn_masks)):
            offsets, _ = self.offset_head(self._tower(feat, mask), mask)
            out.append(torch.relu(self.scale[level](offsets)))
        return out
