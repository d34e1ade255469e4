"""ActivityNet 1.3 (registry name ``anet``; docs/reference.md §2.2–§2.5).

Differs from the base:

* ``duration`` is required; annotations are de-duplicated (``remove_duplicate_annotations``)
  and all labels become 0 when ``num_classes == 1`` (class-agnostic proposals);
* features come from per-video ``.npy`` files or, when ``feat_folder`` names an ``.hdf5`` file,
  from one HDF5 file (dataset ``prefix + id``; h5py is imported only then);
* the feature grid has three cases (stride and frames per step): native stride, stride of the
  features resized to ``max_seq_len`` (``force_upsampling``, both shipped configs), and
  fixed-length features (``feat_stride <= 0``); resizing is 1-D linear interpolation;
* at training time segments are sanitised before cropping (dropped when they start after the
  end, kept when at least ``trunc_thresh`` of them lies inside, clamped at the end).

New: when sanitising removes every segment of a training video, the item has empty (0, 2)
segments and (0,) labels instead of crashing (the video then contributes negatives only;
``truncate_feats`` still crops it, drawing the same random numbers it draws for a video whose
crops all miss the actions). Missing features (``.npy`` files, or dataset names in the HDF5
file) are reported, all in one error, when the data set is built; h5py is imported only for
the HDF5 format.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

import numpy as np
import torch
from torch.nn import functional as F

from libs.utils.annotations import remove_duplicate_annotations

from .base import FeatureDataset
from .datasets import register_dataset
from .validation import DatasetError

__all__ = ["ActivityNetDataset", "anet_feature_grid", "resize_features"]


def anet_feature_grid(feats: np.ndarray, feat_stride: float, num_frames: float,
                      downsample_rate: int, max_seq_len: int, force_upsampling: bool,
                      duration: float, fps: float, video_id: str = "?"):
    """The three ActivityNet grid cases (docs/reference.md §2.5).

    Args:
        feats: (T, C) features as loaded.
        others: the dataset options and the video's duration (s) and fps.

    Returns:
        (feats (T', C) after subsampling, effective stride in frames, frames per step).
    """
    num_steps = feats.shape[0]
    if feat_stride > 0 and not force_upsampling:
        stride, frames = feat_stride, num_frames
        if downsample_rate > 1:
            feats = feats[::downsample_rate, :]
            stride = feat_stride * downsample_rate
    elif feat_stride > 0 and force_upsampling:
        stride = float((num_steps - 1) * feat_stride + num_frames) / max_seq_len
        frames = stride
    else:
        if num_steps > max_seq_len:
            raise DatasetError(f"video '{video_id}' has {num_steps} fixed-length features, "
                             f"more than max_seq_len {max_seq_len}")
        seq_len = max_seq_len if force_upsampling else num_steps
        stride = duration * fps / seq_len
        frames = stride
    return feats, stride, frames


def resize_features(feats: torch.Tensor, length) -> torch.Tensor:
    """(C, T) -> (C, length) by 1-D linear interpolation (align_corners=False); None: as is."""
    if length is None or feats.shape[-1] == length:
        return feats
    return F.interpolate(feats.unsqueeze(0), size=length, mode="linear",
                         align_corners=False).squeeze(0)


@register_dataset("anet")
class ActivityNetDataset(FeatureDataset):
    dataset_name = "ActivityNet 1.3"
    tiou_thresholds = np.linspace(0.5, 0.95, 10)
    require_duration = True
    skip_missing_features = False  # the original crashes when the item is read

    @property
    def _is_hdf5(self) -> bool:
        return ".hdf5" in self.feat_folder

    def _check_num_classes(self, label_dict: Dict[str, int]) -> None:
        if self.num_classes != 1 and len(label_dict) != self.num_classes:
            raise DatasetError(f"{self.json_file}: {len(label_dict)} classes in the annotations, "
                             f"but dataset.num_classes is {self.num_classes} (use 1 for "
                             "class-agnostic proposals)")

    def _has_features(self, video_id: str) -> bool:
        if self._is_hdf5:
            return self.file_prefix + video_id in self._hdf5_keys()
        return super()._has_features(video_id)

    def _hdf5_keys(self) -> frozenset:
        """Dataset names of the HDF5 feature file, read once (no feature data is read)."""
        if getattr(self, "_h5_keys", None) is None:
            import h5py  # only needed for this format

            with h5py.File(self.feat_folder, "r") as h5:
                self._h5_keys = frozenset(h5.keys())
        return self._h5_keys

    def _annotations(self, video: Dict[str, Any]) -> List[Dict[str, Any]]:
        return remove_duplicate_annotations(video.get("annotations") or [])

    def _label_of(self, video_id: str, act: Dict[str, Any]) -> int:
        return 0 if self.num_classes == 1 else super()._label_of(video_id, act)

    def _describe_path(self, video_id: str) -> str:
        if self._is_hdf5:
            return f"{self.feat_folder}[{self.file_prefix + video_id}]"
        return self._feature_path(video_id)

    def _read_features(self, video_id: str) -> np.ndarray:
        if not self._is_hdf5:
            return np.load(self._feature_path(video_id), allow_pickle=False)
        import h5py  # only needed for this format

        key = self.file_prefix + video_id
        with h5py.File(self.feat_folder, "r") as h5:
            if key not in h5:
                raise FileNotFoundError(f"{self.feat_folder}: no dataset '{key}'")
            return np.asarray(h5[key][()])

    def _check_feat_folder(self) -> None:
        if not os.path.exists(self.feat_folder):
            what = "feature file" if ".hdf5" in self.feat_folder else "feature folder"
            raise FileNotFoundError(f"{what} not found: {self.feat_folder}")

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        video = self.data_list[idx]
        feats = self.load_features(video["id"])  # (T, C)
        feats, feat_stride, num_frames = anet_feature_grid(
            feats, self.feat_stride, self.num_frames, self.downsample_rate, self.max_seq_len,
            self.force_upsampling, video["duration"], video["fps"], video["id"])
        feat_offset = 0.5 * num_frames / feat_stride

        feats = resize_features(torch.from_numpy(np.ascontiguousarray(feats.transpose())),
                                self.max_seq_len if self.force_upsampling else None)
        item = self._make_item(video, feats, feat_stride, num_frames, feat_offset)
        if self.is_training and item["segments"] is not None:
            item = self._sanitise_segments(item, feat_offset)
        return self._maybe_truncate(item, feat_offset)

    def _sanitise_segments(self, item: Dict[str, Any], feat_offset: float) -> Dict[str, Any]:
        """Drops / clamps segments against the end of the (resized) video (training only)."""
        vid_len = item["feats"].shape[1] + feat_offset
        kept_segs, kept_labels = [], []
        for seg, label in zip(item["segments"], item["labels"]):
            if seg[0] >= vid_len:
                continue
            ratio = (min(seg[1].item(), vid_len) - seg[0].item()) / (seg[1].item() - seg[0].item())
            if ratio >= self.trunc_thresh:
                kept_segs.append(seg.clamp(max=vid_len))
                kept_labels.append(label.view(1))
        if kept_segs:
            item["segments"] = torch.stack(kept_segs, dim=0)
            item["labels"] = torch.cat(kept_labels)
        else:
            item["segments"] = item["segments"].new_zeros((0, 2))
            item["labels"] = item["labels"].new_zeros((0,))
        return item
