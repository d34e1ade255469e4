"""The clip-encoder interface every video backbone implements (feature extraction, issue 17).

A backbone maps a batch of clips of RGB frames in [0, 1], ``(N, 3, T, H, W)``, to one feature
vector per clip, ``(N, feature_dim)``. It also states the preprocessing the extraction pipeline
applies before it (resize, centre crop) and the normalisation it applies itself.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple, Union

import torch
from torch import nn

__all__ = ["VideoBackbone", "Size", "pool_to_vector"]

# a short side in pixels (aspect ratio kept) or an exact (height, width)
Size = Union[int, Tuple[int, int]]


class VideoBackbone(nn.Module):
    """A clip encoder: ``(N, 3, T, H, W)`` float RGB frames in [0, 1] -> ``(N, feature_dim)``.

    Class attributes (each registered subclass sets them):
        name: the registry name.
        feature_dim: length of one clip feature.
        crop_size: side of the square centre crop the network sees.
        resize_to: frames are resized to this before the centre crop: an ``int`` is the short
            side (aspect ratio kept), a ``(height, width)`` pair an exact size.
        default_clip_len: frames per clip unless the user chooses otherwise.
        pixel_mean, pixel_std: per-channel normalisation of the [0, 1] RGB input applied in
            ``clip_features`` (``(x - mean) / std``).
        min_size: smallest frame height / width the network's pooling accepts.
        min_frames: smallest clip length the network's pooling accepts.
        input_desc: one line saying what the network is fed (for the manifest).

    Instance attribute set by ``make_backbone``: ``weights_info``, a dict saying where the
    weights came from (``{"kind": "random"}`` or ``{"kind": "file", "files": [...]}``, ...).
    """

    name: str = ""
    feature_dim: int = 0
    crop_size: int = 224
    resize_to: Size = 256
    default_clip_len: int = 16
    pixel_mean: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    pixel_std: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    min_size: int = 1
    min_frames: int = 1
    input_desc: str = "RGB in [0, 1], normalised with pixel_mean / pixel_std"

    def __init__(self) -> None:
        super().__init__()
        self.weights_info: Dict[str, Any] = {"kind": "random"}

    # ------------------------------------------------------------------ checks
    def check_frame_size(self, height: int, width: int, source: str = "") -> None:
        """Raises a ValueError when frames of ``height`` x ``width`` are too small for the network."""
        if height < self.min_size or width < self.min_size:
            where = f"{source}: " if source else ""
            raise ValueError(
                f"{where}backbone '{self.name}' needs frames of at least {self.min_size}x"
                f"{self.min_size} pixels for its pooling, got {height}x{width} (H x W)")

    def check_clip(self, x: torch.Tensor, channels: int, source: str = "") -> None:
        """Raises a ValueError unless ``x`` is a float ``(N, channels, T, H, W)`` batch the network takes."""
        where = f"{source}: " if source else ""
        if x.dim() != 5 or x.shape[1] != channels:
            raise ValueError(f"{where}backbone '{self.name}' expects clips of shape "
                             f"(N, {channels}, T, H, W), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{where}backbone '{self.name}' expects floating-point clips, "
                             f"got {x.dtype}")
        if x.shape[2] < self.min_frames:
            raise ValueError(f"{where}backbone '{self.name}' needs clips of at least "
                             f"{self.min_frames} frames, got {x.shape[2]}")
        self.check_frame_size(int(x.shape[3]), int(x.shape[4]), source)

    # ------------------------------------------------------------------ preprocessing
    def normalise(self, rgb01: torch.Tensor) -> torch.Tensor:
        """``(x - pixel_mean) / pixel_std`` per channel of an ``(N, 3, T, H, W)`` batch."""
        shape = (1, 3, 1, 1, 1)
        mean = torch.tensor(self.pixel_mean, dtype=rgb01.dtype, device=rgb01.device).view(shape)
        std = torch.tensor(self.pixel_std, dtype=rgb01.dtype, device=rgb01.device).view(shape)
        return (rgb01 - mean) / std

    def describe(self) -> Dict[str, Any]:
        """The preprocessing facts a feature manifest records about this backbone."""
        resize = self.resize_to if isinstance(self.resize_to, int) else list(self.resize_to)
        return {
            "backbone": self.name, "feature_dim": self.feature_dim,
            "crop_size": self.crop_size, "resize_to": resize,
            "resize_mode": "short_side" if isinstance(self.resize_to, int) else "exact",
            "default_clip_len": self.default_clip_len,
            "pixel_mean": list(self.pixel_mean), "pixel_std": list(self.pixel_std),
            "input": self.input_desc, "weights": dict(self.weights_info),
        }

    # ------------------------------------------------------------------ network
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The network on already-normalised input (see each subclass for the output shape)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward_features")

    def clip_features(self, rgb01: torch.Tensor) -> torch.Tensor:
        """``(N, 3, T, H, W)`` RGB in [0, 1] -> ``(N, feature_dim)``: normalise, run, average-pool."""
        self.check_clip(rgb01, 3)
        feats = self.forward_features(self.normalise(rgb01))
        return pool_to_vector(feats)


def pool_to_vector(feats: torch.Tensor) -> torch.Tensor:
    """Averages every dimension after the channel one: ``(N, D, ...)`` -> ``(N, D)``."""
    if feats.dim() > 2:
        feats = feats.flatten(2).mean(dim=2)
    return feats
