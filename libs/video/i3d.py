"""Inception-v1 I3D (Carreira & Zisserman 2017): ``i3d_rgb``, ``i3d_flow`` and two-stream ``i3d``.

The module tree gives exactly the state_dict names, shapes and order of the widely used PyTorch
port of DeepMind's Kinetics I3D (``rgb_imagenet.pt`` / ``flow_imagenet.pt`` load with
``strict=True``; ../shared/spec/i3d/README.md): ``logits`` first, then the endpoints; every conv
is a ``Unit3D`` (conv3d, bn); padding is TensorFlow "SAME", computed per input size, with zeros
before convs and max-pools alike.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import VideoBackbone, pool_to_vector
from .flow import FLOW_DESC, clips_to_flow
from .registry import register_backbone
from .weights import WeightsError, load_strict, read_state_dict

__all__ = ["same_padding", "Unit3D", "MaxPool3dSame", "Mixed", "InceptionI3d", "I3DRgb",
           "I3DFlow", "I3DTwoStream", "MIXED_CHANNELS"]

Triple = Tuple[int, int, int]

# out-channels of b0, b1a, b1b, b2a, b2b, b3b of each mixed block
MIXED_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# (endpoint, kind, kernel, stride, out-channels) in network order; mixed blocks read MIXED_CHANNELS
ENDPOINTS = (
    ("Conv3d_1a_7x7", "conv", (7, 7, 7), (2, 2, 2), 64),
    ("MaxPool3d_2a_3x3", "pool", (1, 3, 3), (1, 2, 2), 0),
    ("Conv3d_2b_1x1", "conv", (1, 1, 1), (1, 1, 1), 64),
    ("Conv3d_2c_3x3", "conv", (3, 3, 3), (1, 1, 1), 192),
    ("MaxPool3d_3a_3x3", "pool", (1, 3, 3), (1, 2, 2), 0),
    ("Mixed_3b", "mixed", (), (), 0), ("Mixed_3c", "mixed", (), (), 0),
    ("MaxPool3d_4a_3x3", "pool", (3, 3, 3), (2, 2, 2), 0),
    ("Mixed_4b", "mixed", (), (), 0), ("Mixed_4c", "mixed", (), (), 0),
    ("Mixed_4d", "mixed", (), (), 0), ("Mixed_4e", "mixed", (), (), 0),
    ("Mixed_4f", "mixed", (), (), 0),
    ("MaxPool3d_5a_2x2", "pool", (2, 2, 2), (2, 2, 2), 0),
    ("Mixed_5b", "mixed", (), (), 0), ("Mixed_5c", "mixed", (), (), 0),
)
NUM_CLASSES = 400
FEATURE_DIM = 1024


def same_padding(sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> List[int]:
    """TensorFlow "SAME" padding of a (T, H, W) input in ``F.pad`` order (W front/back first).

    Per dimension: total = max(k - st, 0) if size % st == 0 else max(k - size % st, 0); the
    front gets total // 2, the back the rest.
    """
    pads: List[int] = []
    for size, k, st in zip(reversed(sizes), reversed(kernel), reversed(stride)):
        total = max(k - st, 0) if size % st == 0 else max(k - size % st, 0)
        pads += [total // 2, total - total // 2]
    return pads


class Unit3D(nn.Module):
    """SAME-padded Conv3d (bias only without BatchNorm), BatchNorm3d (eps 1e-3, momentum 0.01), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Triple = (1, 1, 1),
                 stride: Triple = (1, 1, 1), batch_norm: bool = True, relu: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0,
                                bias=not batch_norm)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max-pool after SAME zero padding (as the port does: zeros, not -inf; inputs follow a ReLU)."""

    def __init__(self, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Mixed(nn.Module):
    """Inception block: b0 (1x1x1) ‖ b1a -> b1b (3x3x3) ‖ b2a -> b2b (3x3x3) ‖ max-pool -> b3b."""

    def __init__(self, in_channels: int, channels: Sequence[int]) -> None:
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = channels
        self.b0 = Unit3D(in_channels, c0)
        self.b1a = Unit3D(in_channels, c1a)
        self.b1b = Unit3D(c1a, c1b, (3, 3, 3))
        self.b2a = Unit3D(in_channels, c2a)
        self.b2b = Unit3D(c2a, c2b, (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, c3b)
        self.out_channels = c0 + c1b + c2b + c3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                          self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(VideoBackbone):
    """One I3D stream. ``forward_features``: normalised ``(N, C, T, H, W)`` -> ``(N, 1024, T')``.

    ``forward`` / ``logits`` give the 400-class logits ``(N, 400, T')``. At 224 x 224 the final
    average pool (2 x 7 x 7, stride 1) leaves one spatial position; at larger sizes the
    positions it leaves are averaged. T' = ceil(T / 8) - 1.
    """

    feature_dim = FEATURE_DIM
    crop_size = 224
    resize_to = 256                      # short side 256, then the 224 centre crop (Kinetics)
    default_clip_len = 16
    min_size = 193                       # ceil(H / 32) >= 7 for the 7x7 average pool
    min_frames = 9                       # ceil(T / 8) >= 2 for the temporal kernel of 2
    in_channels = 3

    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        # registered first, as in the port: its state_dict starts with logits.*
        self.logits = Unit3D(FEATURE_DIM, NUM_CLASSES, batch_norm=False, relu=False)
        self.dropout = nn.Dropout(dropout)
        self.avg_pool = nn.AvgPool3d(kernel_size=(2, 7, 7), stride=(1, 1, 1))
        self.endpoints: List[str] = []
        channels = self.in_channels
        for name, kind, kernel, stride, out in ENDPOINTS:
            if kind == "conv":
                block: nn.Module = Unit3D(channels, out, kernel, stride)
                channels = out
            elif kind == "pool":
                block = MaxPool3dSame(kernel, stride)
            else:
                block = Mixed(channels, MIXED_CHANNELS[name])
                channels = block.out_channels
            self.add_module(name, block)
            self.endpoints.append(name)

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Endpoints then the average pool: ``(N, 1024, T', h, w)`` (h = w = 1 at 224)."""
        self.check_clip(x, self.in_channels)
        for name in self.endpoints:
            x = getattr(self, name)(x)
        return self.avg_pool(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._pooled(x).flatten(3).mean(dim=3)

    def logits_of(self, x: torch.Tensor) -> torch.Tensor:
        """The 400-class logits ``(N, 400, T')`` of normalised input ``x``."""
        return self.logits(self.dropout(self._pooled(x))).flatten(3).mean(dim=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_of(x)


@register_backbone("i3d_rgb")
class I3DRgb(InceptionI3d):
    """I3D RGB stream: frames scaled to [-1, 1] (mean 0.5, std 0.5), 1024-d features."""

    in_channels = 3
    pixel_mean = (0.5, 0.5, 0.5)
    pixel_std = (0.5, 0.5, 0.5)
    input_desc = "RGB scaled to [-1, 1]"


@register_backbone("i3d_flow")
class I3DFlow(InceptionI3d):
    """I3D optical-flow stream: TV-L1 flow (x, y) of the clip, clipped to [-20, 20] px, scaled to [-1, 1]."""

    in_channels = 2
    input_desc = FLOW_DESC

    def clip_features(self, rgb01: torch.Tensor) -> torch.Tensor:
        self.check_clip(rgb01, 3)
        return pool_to_vector(self.forward_features(clips_to_flow(rgb01)))


@register_backbone("i3d")
class I3DTwoStream(VideoBackbone):
    """Two-stream I3D, RGB ‖ flow = 2048-d (the kind of the THUMOS14 features).

    State_dict: the streams under ``rgb.`` and ``flow.``. Weights: one file holding both
    (prefixed keys) or ``"rgb.pt,flow.pt"``, the two single-stream files in that order.
    ``forward_features`` takes the normalised RGB and the flow stacked on channels,
    ``(N, 3 + 2, T, H, W)``, and returns ``(N, 2048, T')``.
    """

    feature_dim = 2 * FEATURE_DIM
    crop_size, resize_to, default_clip_len = 224, 256, 16
    min_size, min_frames = InceptionI3d.min_size, InceptionI3d.min_frames
    pixel_mean = I3DRgb.pixel_mean
    pixel_std = I3DRgb.pixel_std
    input_desc = f"RGB stream: {I3DRgb.input_desc}; flow stream: {FLOW_DESC}"

    def __init__(self, dropout: float = 0.5) -> None:
        super().__init__()
        self.rgb = I3DRgb(dropout)
        self.flow = I3DFlow(dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_clip(x, 5)
        return torch.cat([self.rgb.forward_features(x[:, :3]),
                          self.flow.forward_features(x[:, 3:])], dim=1)

    def clip_features(self, rgb01: torch.Tensor) -> torch.Tensor:
        self.check_clip(rgb01, 3)
        x = torch.cat([self.normalise(rgb01), clips_to_flow(rgb01)], dim=1)
        return pool_to_vector(self.forward_features(x))

    def load_weight_files(self, paths: Sequence) -> None:
        """One file with ``rgb.*`` and ``flow.*`` keys, or two files: RGB stream, flow stream."""
        if len(paths) == 1:
            load_strict(self, read_state_dict(paths[0]), str(paths[0]))
        elif len(paths) == 2:
            load_strict(self.rgb, read_state_dict(paths[0]), str(paths[0]))
            load_strict(self.flow, read_state_dict(paths[1]), str(paths[1]))
        else:
            raise WeightsError(f"backbone 'i3d' takes one weights file (rgb.* and flow.* keys) "
                               f"or two ('rgb.pt,flow.pt'), got {len(paths)}")
