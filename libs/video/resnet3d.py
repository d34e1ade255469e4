"""R3D-18 and R(2+1)D-18 video ResNets (Tran et al. 2018) with exactly torchvision's state_dict.

Written here (torchvision is not a dependency): module tree, names, shapes and order equal
torchvision's ``VideoResNet`` (../shared/spec/video_backbones/README.md), so the Kinetics-400
weights files torchvision publishes for ``r3d_18`` / ``r2plus1d_18`` load with ``strict=True``.
The two share one BasicBlock; they differ by their stem and their conv builder.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from .base import VideoBackbone
from .registry import register_backbone

__all__ = ["ConvBuilder", "conv3x3x3", "conv2plus1d", "BasicBlock", "VideoResNet", "R3D18",
           "R2Plus1D18", "KINETICS_MEAN", "KINETICS_STD"]

# (in_planes, out_planes, mid_planes, stride) -> the block's 3x3x3-equivalent convolution
ConvBuilder = Callable[[int, int, int, int], nn.Module]
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_LAYER = 2


def conv3x3x3(in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> nn.Module:
    """R3D's block conv: one 3x3x3 Conv3d, padding 1 (``mid_planes`` unused)."""
    return nn.Conv3d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv2plus1d(in_planes: int, out_planes: int, mid_planes: int, stride: int = 1) -> nn.Module:
    """R(2+1)D's block conv: spatial 1x3x3 -> BN -> ReLU -> temporal 3x1x1 (indices 0, 1, 3)."""
    return nn.Sequential(
        nn.Conv3d(in_planes, mid_planes, (1, 3, 3), stride=(1, stride, stride),
                  padding=(0, 1, 1), bias=False),
        nn.BatchNorm3d(mid_planes),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid_planes, out_planes, (3, 1, 1), stride=(stride, 1, 1),
                  padding=(1, 0, 0), bias=False),
    )


class BasicBlock(nn.Module):
    """Two convs from ``conv_builder`` with BatchNorm, a residual shortcut, ReLU.

    ``mid_planes = (in · out · 27) // (in · 9 + 3 · out)`` is computed once from the block's
    input and output widths and used by both convs, as torchvision does.
    """

    def __init__(self, in_planes: int, planes: int, conv_builder: ConvBuilder, stride: int = 1,
                 downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        mid = (in_planes * planes * 27) // (in_planes * 9 + 3 * planes)
        self.conv1 = nn.Sequential(conv_builder(in_planes, planes, mid, stride),
                                   nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, mid, 1), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + shortcut)


def _layer(in_planes: int, planes: int, conv_builder: ConvBuilder, stride: int) -> nn.Sequential:
    """Two BasicBlocks; the first strides (in time too) and gets a 1x1x1 conv + BN shortcut."""
    downsample = None
    if stride != 1 or in_planes != planes:
        downsample = nn.Sequential(nn.Conv3d(in_planes, planes, 1, stride=stride, bias=False),
                                   nn.BatchNorm3d(planes))
    blocks = [BasicBlock(in_planes, planes, conv_builder, stride, downsample)]
    blocks += [BasicBlock(planes, planes, conv_builder) for _ in range(BLOCKS_PER_LAYER - 1)]
    return nn.Sequential(*blocks)


class VideoResNet(VideoBackbone):
    """Stem, four layers of BasicBlocks (64, 128, 256, 512), global average pool, ``fc``.

    ``forward_features``: normalised ``(N, 3, T, H, W)`` -> the pooled ``(N, 512)`` (the
    output before ``fc``); ``forward`` gives the 400-class logits.
    """

    feature_dim = WIDTHS[-1]
    crop_size = 112
    resize_to = (128, 171)
    default_clip_len = 16
    pixel_mean = KINETICS_MEAN
    pixel_std = KINETICS_STD
    min_size = 1                 # every stage rounds up and the pool is adaptive
    min_frames = 1
    input_desc = "RGB in [0, 1] normalised with the Kinetics mean / std of torchvision"

    def __init__(self, stem: nn.Module, conv_builder: ConvBuilder, num_classes: int = 400) -> None:
        super().__init__()
        self.stem = stem
        in_planes = WIDTHS[0]
        for i, planes in enumerate(WIDTHS):
            self.add_module(f"layer{i + 1}", _layer(in_planes, planes, conv_builder,
                                                    1 if i == 0 else 2))
            in_planes = planes
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(WIDTHS[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_clip(x, 3)
        x = self.stem(x)
        for i in range(len(WIDTHS)):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


@register_backbone("r3d_18")
class R3D18(VideoResNet):
    """R3D-18: 3x3x3 convs throughout; stem Conv3d(3, 64, (3, 7, 7), stride (1, 2, 2))."""

    def __init__(self, num_classes: int = 400) -> None:
        stem = nn.Sequential(
            nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(64), nn.ReLU(inplace=True))
        super().__init__(stem, conv3x3x3, num_classes)


@register_backbone("r2plus1d_18")
class R2Plus1D18(VideoResNet):
    """R(2+1)D-18: (2+1)D convs; stem 1x7x7 (45 channels) then 3x1x1 (64 channels)."""

    def __init__(self, num_classes: int = 400) -> None:
        stem = nn.Sequential(
            nn.Conv3d(3, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(45), nn.ReLU(inplace=True),
            nn.Conv3d(45, 64, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(64), nn.ReLU(inplace=True))
        super().__init__(stem, conv2plus1d, num_classes)
