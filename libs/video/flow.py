"""Optical flow for the I3D flow stream: TV-L1 (OpenCV contrib, an optional extra), clipped and scaled.

A T-frame clip gives T flow fields: field t is the flow from frame t to frame t + 1 and the
last field repeats the one before it (a clip does not see the frame after its end). Flow is
computed on 8-bit grey frames (ITU-R 601 luma), clipped to [-20, 20] pixels and divided by
20, as DeepMind's I3D flow input; channels are (x, y). Pairs are cached, so the overlapping
clips of one video compute each pair once.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable, Optional

import numpy as np
import torch

__all__ = ["FLOW_DESC", "FLOW_EXTRA", "FLOW_BOUND", "TVL1Flow", "to_gray_uint8", "clip_flow",
           "clips_to_flow", "default_flow"]

FLOW_BOUND = 20.0
FLOW_EXTRA = "opencv-contrib-python-headless"
FLOW_DESC = ("TV-L1 optical flow (x, y; OpenCV defaults) between consecutive 8-bit grey frames, "
             "clipped to [-20, 20] pixels and scaled to [-1, 1]; a T-frame clip gives T fields, "
             "the last repeating the one before")
PairFlow = Callable[[np.ndarray, np.ndarray], np.ndarray]
_LUMA = (0.299, 0.587, 0.114)


class TVL1Flow:
    """Callable ``(grey_a, grey_b) -> (H, W, 2)`` float32 TV-L1 flow with a small LRU cache of pairs."""

    def __init__(self, cache_size: int = 64) -> None:
        try:
            import cv2
            self._tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        except (ImportError, AttributeError) as err:
            raise ImportError(
                f"the I3D flow stream (backbones 'i3d_flow', 'i3d') needs TV-L1 optical flow from "
                f"OpenCV's contrib module (cv2.optflow), which does not import here ({err}); "
                f"install the optional extra: pip install {FLOW_EXTRA}") from None
        self.cache_size = cache_size
        self._cache: "OrderedDict[bytes, np.ndarray]" = OrderedDict()

    def __call__(self, grey_a: np.ndarray, grey_b: np.ndarray) -> np.ndarray:
        key = hashlib.blake2b(grey_a.tobytes() + grey_b.tobytes(), digest_size=16).digest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        flow = self._tvl1.calc(grey_a, grey_b, None).astype(np.float32, copy=False)
        self._cache[key] = flow
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return flow


_DEFAULT: Optional[TVL1Flow] = None


def default_flow() -> TVL1Flow:
    """The process-wide TV-L1 estimator (built on first use; raises the extra's ImportError)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = TVL1Flow()
    return _DEFAULT


def to_gray_uint8(clip01: torch.Tensor) -> np.ndarray:
    """``(3, T, H, W)`` RGB in [0, 1] -> ``(T, H, W)`` uint8 grey (0.299 R + 0.587 G + 0.114 B)."""
    weights = torch.tensor(_LUMA, dtype=torch.float32).view(3, 1, 1, 1)
    grey = (clip01.detach().to("cpu", torch.float32).clamp(0, 1) * weights).sum(dim=0)
    return (grey * 255.0).round().to(torch.uint8).numpy()


def clip_flow(grey: np.ndarray, pair_flow: PairFlow) -> np.ndarray:
    """``(T, H, W)`` uint8 frames -> ``(2, T, H, W)`` float32 flow in [-1, 1] (see the module doc)."""
    frames = grey.shape[0]
    fields = [pair_flow(grey[t], grey[t + 1]) for t in range(frames - 1)]
    if not fields:  # a one-frame clip has no motion
        fields = [np.zeros(grey.shape[1:] + (2,), dtype=np.float32)]
    fields.append(fields[-1])
    flow = np.stack(fields[:frames], axis=0)                       # (T, H, W, 2)
    flow = np.clip(flow, -FLOW_BOUND, FLOW_BOUND) / FLOW_BOUND
    return np.ascontiguousarray(flow.transpose(3, 0, 1, 2), dtype=np.float32)


def clips_to_flow(rgb01: torch.Tensor, pair_flow: Optional[PairFlow] = None) -> torch.Tensor:
    """``(N, 3, T, H, W)`` RGB in [0, 1] -> ``(N, 2, T, H, W)`` scaled flow, same device and dtype."""
    estimate = pair_flow if pair_flow is not None else default_flow()
    flows = [clip_flow(to_gray_uint8(clip), estimate) for clip in rgb01]
    return torch.from_numpy(np.stack(flows, axis=0)).to(device=rgb01.device, dtype=rgb01.dtype)
