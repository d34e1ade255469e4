"""Ego4D Moment Queries (registry name ``ego4d``; REFERENCE.md §2.2–§2.5).

Differs from the base: ``feat_folder`` may be a list of folders whose per-video features are
concatenated along channels (in folder order; all must have the same length); a video is kept
only if its file exists in every folder; ``.pt`` files (torch tensors) are read as well as
``.npy``; videos without ``annotations`` do not enter the label dictionary; items carry the
JSON ``offset``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from .base import FeatureDataset
from .datasets import register_dataset

__all__ = ["EGO4DDataset"]


@register_dataset("ego4d")
class EGO4DDataset(FeatureDataset):
    dataset_name = "ego4d"
    tiou_thresholds = np.linspace(0.1, 0.5, 5)

    @property
    def feat_folders(self) -> Tuple[str, ...]:
        folder = self.feat_folder
        return (folder,) if isinstance(folder, str) else tuple(folder)

    def _check_feat_folder(self) -> None:
        for folder in self.feat_folders:
            if not os.path.exists(folder):
                raise FileNotFoundError(f"feature folder not found: {folder}")

    def _keep_video(self, video_id: str) -> bool:
        return all(os.path.exists(self._feature_path(video_id, f)) for f in self.feat_folders)

    def _describe_path(self, video_id: str) -> str:
        return " + ".join(self._feature_path(video_id, f) for f in self.feat_folders)

    def _video_record(self, video_id, video, fps, duration, segments, labels) -> Dict[str, Any]:
        record = super()._video_record(video_id, video, fps, duration, segments, labels)
        record["offset"] = video.get("offset")
        return record

    def _read_one(self, path: str) -> np.ndarray:
        if path.endswith(".pt"):
            return torch.load(path, map_location="cpu", weights_only=True).numpy()
        return np.load(path)

    def _read_features(self, video_id: str) -> np.ndarray:
        parts: List[np.ndarray] = [np.asarray(self._read_one(self._feature_path(video_id, f)),
                                              dtype=np.float32)
                                   for f in self.feat_folders]
        lengths = {p.shape[0] for p in parts}
        if len(lengths) != 1:
            raise ValueError(f"features of video '{video_id}' have different lengths in the "
                             f"folders {list(self.feat_folders)}: "
                             f"{[p.shape for p in parts]}; they must share T")
        return np.concatenate(parts, axis=1)

    def _make_item(self, video, feats, feat_stride, num_frames, feat_offset) -> Dict[str, Any]:
        item = super()._make_item(video, feats, feat_stride, num_frames, feat_offset)
        item["offset"] = video["offset"]
        return item
