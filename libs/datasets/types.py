"""The per-video contracts of the data sets (docs/reference.md §2.3, §2.6).

``VideoRecord`` is what a dataset keeps per selected video after reading the annotation JSON
(seconds); ``VideoItem`` is what ``__getitem__`` returns and what the model, the training loop
and the evaluation loop consume (feature-grid units). A batch is a plain ``list`` of items
(``trivial_batch_collator``); padding happens inside the model.
"""
from __future__ import annotations

from typing import Any, List, Optional, TypedDict, Union

import numpy as np
import torch

__all__ = ["VideoRecord", "VideoItem", "Batch"]


class _VideoRecordBase(TypedDict):
    id: str                          # key of the video in the JSON ``database``
    fps: float                       # default_fps, else the JSON's fps
    duration: float                  # seconds (1e8 when the JSON has none; anet requires it)
    segments: Optional[np.ndarray]   # (N, 2) float32 [start, end] seconds, None: no actions
    labels: Optional[np.ndarray]     # (N,) int64 class ids, None: no actions


class VideoRecord(_VideoRecordBase, total=False):
    offset: Any                      # ego4d only: the JSON's ``offset`` (unused downstream)


class _VideoItemBase(TypedDict):
    video_id: str
    feats: torch.Tensor              # (C, T) float32
    segments: Optional[torch.Tensor]  # (N, 2) float32 grid units (may be < 0 or > T), or None
    labels: Optional[torch.Tensor]   # (N,) int64, or None
    fps: float
    duration: float
    feat_stride: Union[int, float]   # effective stride in frames of one feature step
    feat_num_frames: Union[int, float]  # frames covered by one feature step


class VideoItem(_VideoItemBase, total=False):
    offset: Any                      # ego4d only


Batch = List[VideoItem]
