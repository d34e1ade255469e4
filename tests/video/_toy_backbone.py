"""A tiny deterministic ``VideoBackbone`` for extraction tests: it reports which frames it saw.

Feature of a clip = for each of its frames, the mean (x 255) of the green channel over the top
half, then the same over the bottom half: ``(N, 2 * clip_len)``. On ``_videos.make_video``
frames this reads back each frame's source index (``indices_of``).
"""
from __future__ import annotations

import numpy as np
import torch

from libs.video import VideoBackbone


class ToyFrames(VideoBackbone):
    """Not registered (the registry lists the real backbones only); pass the instance."""

    name = "toy_frames"
    crop_size = 48
    resize_to = 48
    min_size = 8
    input_desc = "RGB in [0, 1], no normalisation"

    def __init__(self, clip_len: int = 16) -> None:
        super().__init__()
        self.feature_dim = 2 * clip_len
        self.default_clip_len = clip_len

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[3] // 2
        green = x[:, 1].double() * 255.0  # (N, T, H, W)
        top = green[:, :, :half].mean(dim=(2, 3))
        bottom = green[:, :, half:].mean(dim=(2, 3))
        return torch.cat([top, bottom], dim=1).float()


def indices_of(feature: np.ndarray) -> list:
    """Source frame index of each frame a ``ToyFrames`` feature (2 * L,) saw."""
    length = feature.shape[0] // 2
    top = np.round((feature[:length] - 8) / 15).astype(int)
    bottom = np.round((feature[length:] - 8) / 15).astype(int)
    return [int(t + 16 * b) for t, b in zip(top, bottom)]
