"""Data sets: THUMOS14, ActivityNet 1.3, EPIC-Kitchens 100, Ego4D (docs/reference.md §2).

Importing the package registers the four dataset classes (``thumos``, ``anet``, ``epic``,
``ego4d``) in ``DATASETS``.
"""
from .data_utils import trivial_batch_collator, truncate_feats, worker_init_reset_seed
from .datasets import DATASETS, make_data_loader, make_dataset, register_dataset
from . import anet, ego4d, epic_kitchens, thumos14  # noqa: F401  (registration)
from .base import FeatureDataset, read_annotation_json
from .types import Batch, VideoItem, VideoRecord

__all__ = ["DATASETS", "FeatureDataset", "make_data_loader", "make_dataset",
           "read_annotation_json", "register_dataset", "trivial_batch_collator",
           "truncate_feats", "worker_init_reset_seed", "Batch", "VideoItem", "VideoRecord"]
