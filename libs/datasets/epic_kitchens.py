"""EPIC-Kitchens 100 (registry name ``epic``; docs/reference.md §2.2–§2.5).

Differs from the base: features are ``.npz`` files holding the array ``feats``; the class
count may be smaller than ``num_classes`` and the classes without annotations are reported as
``empty_label_ids`` (their classifier bias is set very negative by train.py). New: missing
feature files are reported (all of them, in one error) when the data set is built, not when
the item is first read.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from .base import FeatureDataset
from .datasets import register_dataset
from .validation import DatasetError

__all__ = ["EpicKitchensDataset", "find_empty_cls"]


def find_empty_cls(label_dict: Dict[str, int], num_classes: int) -> List[int]:
    """Class ids in ``range(num_classes)`` that no annotation uses (ascending)."""
    if len(label_dict) == num_classes:
        return []
    used = set(label_dict.values())
    return [i for i in range(num_classes) if i not in used]


@register_dataset("epic")
class EpicKitchensDataset(FeatureDataset):
    dataset_name = "epic-kitchens-100"
    tiou_thresholds = np.linspace(0.1, 0.5, 5)
    skip_missing_features = False  # the original would crash when the item is read

    def _check_num_classes(self, label_dict: Dict[str, int]) -> None:
        if len(label_dict) > self.num_classes:
            raise DatasetError(f"{self.json_file}: {len(label_dict)} classes in the annotations, "
                             f"more than dataset.num_classes = {self.num_classes}")

    def _empty_label_ids(self) -> List[int]:
        return find_empty_cls(self.label_dict, self.num_classes)

    def _read_features(self, video_id: str) -> np.ndarray:
        with np.load(self._feature_path(video_id), allow_pickle=False) as data:
            if "feats" not in data:
                raise DatasetError(f"{self._feature_path(video_id)}: expected an array named "
                                 f"'feats' in the .npz file, found {list(data.keys())}")
            return data["feats"]
