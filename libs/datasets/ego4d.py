"""Ego4D Moment Queries (registry name ``ego4d``; docs/reference.md §2.2–§2.5).

Differs from the base: ``feat_folder`` may be a list of folders whose per-video features are
concatenated along channels (in folder order; all must have the same length); a video is kept
only if its file exists in every folder; ``.pt`` files (torch tensors) are read as well as
``.npy``; videos without ``annotations`` do not enter the label dictionary; items carry the
JSON ``offset``. New: one summary warning names the skipped clips; clips of different lengths
in different folders get an error naming the files (the original's concatenation fails).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from .base import FeatureDataset
from .datasets import register_dataset
from .validation import DatasetError
from .types import VideoItem, VideoRecord

__all__ = ["EGO4DDataset"]


@register_dataset("ego4d")
class EGO4DDataset(FeatureDataset):
    dataset_name = "ego4d"
    tiou_thresholds = np.linspace(0.1, 0.5, 5)
    skip_missing_features = True  # a clip must have its file in every folder

    @property
    def feat_folders(self) -> Tuple[str, ...]:
        folder = self.feat_folder
        return (folder,) if isinstance(folder, str) else tuple(folder)

    def _check_feat_folder(self) -> None:
        for folder in self.feat_folders:
            if not os.path.exists(folder):
                raise FileNotFoundError(f"feature folder not found: {folder}")

    def _has_features(self, video_id: str) -> bool:
        return all(os.path.exists(self._feature_path(video_id, f)) for f in self.feat_folders)

    def _describe_path(self, video_id: str) -> str:
        return " + ".join(self._feature_path(video_id, f) for f in self.feat_folders)

    def _video_record(self, video_id: str, video: Dict[str, Any], fps: float, duration: float,
                      segments: Optional[np.ndarray], labels: Optional[np.ndarray]
                      ) -> VideoRecord:
        record = super()._video_record(video_id, video, fps, duration, segments, labels)
        record["offset"] = video.get("offset")
        return record

    def _read_one(self, path: str) -> np.ndarray:
        if path.endswith(".pt"):
            data = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(data, torch.Tensor):
                raise DatasetError(f"{path}: expected a (T, C) tensor saved with torch.save, "
                                 f"found {type(data).__name__}")
            return data.float().numpy()
        return np.load(path, allow_pickle=False)

    def _read_features(self, video_id: str) -> np.ndarray:
        parts: List[np.ndarray] = [np.asarray(self._read_one(self._feature_path(video_id, f)),
                                              dtype=np.float32)
                                   for f in self.feat_folders]
        if len({p.shape[0] if p.ndim == 2 else -1 for p in parts}) != 1:
            raise DatasetError(f"features of video '{video_id}' ({self._describe_path(video_id)})"
                             f" have shapes {[p.shape for p in parts]}; expected (T, C_i) "
                             "arrays sharing T")
        return np.concatenate(parts, axis=1)

    def _make_item(self, video: VideoRecord, feats: torch.Tensor, feat_stride: float,
                   num_frames: float, feat_offset: float) -> VideoItem:
        item = super()._make_item(video, feats, feat_stride, num_frames, feat_offset)
        item["offset"] = video["offset"]
        return item
