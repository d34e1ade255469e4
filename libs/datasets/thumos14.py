"""THUMOS14 (registry name ``thumos``; REFERENCE.md §2.2–§2.5).

Differs from the base only in that videos without a feature file are skipped (as the
original: the THUMOS14 release lacks features for some annotated videos).
"""
from __future__ import annotations

import os

import numpy as np

from .base import FeatureDataset
from .datasets import register_dataset

__all__ = ["THUMOS14Dataset"]


@register_dataset("thumos")
class THUMOS14Dataset(FeatureDataset):
    dataset_name = "thumos-14"
    tiou_thresholds = np.linspace(0.3, 0.7, 5)

    def _keep_video(self, video_id: str) -> bool:
        return os.path.exists(self._feature_path(video_id))
