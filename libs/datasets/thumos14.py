"""THUMOS14 (registry name ``thumos``; docs/reference.md §2.2–§2.5).

Everything is the base's: ``.npy`` (T, C) features, ``len(label_dict) == num_classes``, and
videos without a feature file are skipped (as the original: the THUMOS14 feature release lacks
some annotated videos); new is one summary warning naming the skipped videos.
"""
from __future__ import annotations

import numpy as np

from .base import FeatureDataset
from .datasets import register_dataset

__all__ = ["THUMOS14Dataset"]


@register_dataset("thumos")
class THUMOS14Dataset(FeatureDataset):
    dataset_name = "thumos-14"
    tiou_thresholds = np.linspace(0.3, 0.7, 5)
    skip_missing_features = True
