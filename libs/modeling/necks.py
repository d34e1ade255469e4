"""Necks: ``fpn`` (FPN1D) and ``identity`` (FPNIdentity) (docs/reference.md §3.7).

Mirrors the original's ``libs/modeling/necks.py``; attribute names ``lateral_convs``,
``fpn_convs``, ``fpn_norms`` are frozen. Differences: none in behaviour.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import LayerNorm, MaskedConv1D
from .registry import NECKS

__all__ = ["FPN1D", "FPNIdentity"]


def _level_range(in_channels: Sequence[int], start_level: int, end_level: int):
    end_level = len(in_channels) if end_level == -1 else end_level
    assert end_level <= len(in_channels)
    assert 0 <= start_level < end_level
    return start_level, end_level


@NECKS.register("fpn")
class FPN1D(nn.Module):
    """Feature pyramid with top-down nearest upsampling.

    Args:
        in_channels: channels of every backbone level.
        out_channel: output channels.
        scale_factor: upsampling factor between consecutive levels.
        start_level, end_level: used levels ``[start, end)`` (-1: up to the last).
        with_ln: LayerNorm at the outputs (then the convs have no bias).
    """

    def __init__(self, in_channels: Sequence[int], out_channel: int, scale_factor: float = 2.0,
                 start_level: int = 0, end_level: int = -1, with_ln: bool = True) -> None:
        super().__init__()
        assert isinstance(in_channels, (list, tuple))
        self.in_channels = in_channels
        self.out_channel = out_channel
        self.scale_factor = scale_factor
        self.start_level, self.end_level = _level_range(in_channels, start_level, end_level)
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        self.fpn_norms = nn.ModuleList()
        for i in range(self.start_level, self.end_level):
            self.lateral_convs.append(
                MaskedConv1D(in_channels[i], out_channel, 1, bias=not with_ln))
            self.fpn_convs.append(MaskedConv1D(out_channel, out_channel, 3, padding=1,
                                               bias=not with_ln, groups=out_channel))
            self.fpn_norms.append(LayerNorm(out_channel) if with_ln else nn.Identity())

    def forward(self, inputs: Sequence[torch.Tensor], fpn_masks: Sequence[torch.Tensor]
                ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """Args: per-level features (B, C_l, T_l) and masks (B, 1, T_l).

        Returns: per used level features (B, out_channel, T_l) and the input masks.
        """
        assert len(inputs) == len(self.in_channels)
        assert len(fpn_masks) == len(self.in_channels)
        s = self.start_level
        laterals = [conv(inputs[i + s], fpn_masks[i + s])[0]
                    for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], scale_factor=self.scale_factor, mode="nearest")
        feats, masks = (), ()
        for i in range(len(laterals)):
            x, _ = self.fpn_convs[i](laterals[i], fpn_masks[i + s])
            feats += (self.fpn_norms[i](x),)
            masks += (fpn_masks[i + s],)
        return feats, masks


@NECKS.register("identity")
class FPNIdentity(nn.Module):
    """Passes the backbone levels through, with an optional LayerNorm per level.

    Args: as FPN1D; every used level must already have ``out_channel`` channels.
    """

    def __init__(self, in_channels: Sequence[int], out_channel: int, scale_factor: float = 2.0,
                 start_level: int = 0, end_level: int = -1, with_ln: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channel = out_channel
        self.scale_factor = scale_factor
        self.start_level, self.end_level = _level_range(in_channels, start_level, end_level)
        self.fpn_norms = nn.ModuleList()
        for i in range(self.start_level, self.end_level):
            assert in_channels[i] == out_channel, "identity neck needs in == out channels"
            self.fpn_norms.append(LayerNorm(out_channel) if with_ln else nn.Identity())

    def forward(self, inputs: Sequence[torch.Tensor], fpn_masks: Sequence[torch.Tensor]
                ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """Args: per-level features (B, C, T_l) and masks. Returns the used levels, normed."""
        assert len(inputs) == len(self.in_channels)
        assert len(fpn_masks) == len(self.in_channels)
        s = self.start_level
        feats = tuple(norm(inputs[i + s]) for i, norm in enumerate(self.fpn_norms))
        masks = tuple(fpn_masks[i + s] for i in range(len(self.fpn_norms)))
        return feats, masks
