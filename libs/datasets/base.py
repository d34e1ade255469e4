"""What the four dataset classes share (docs/reference.md §2.2–§2.6).

:class:`FeatureDataset` reads the ActivityNet-style annotation JSON, builds the label
dictionary, selects the videos of the requested split, loads one feature file per video and
converts action boundaries from seconds to the feature grid. Subclasses (thumos14.py, anet.py,
epic_kitchens.py, ego4d.py) hold only what differs: the class-count rule, which videos are
skipped, how features are read, and (ActivityNet) the resizing.

Items are identical to the original's for the same files and seeds. What is new is checking
(cheap: file existence at construction, shape / finiteness of the array already loaded):
a missing file, a malformed JSON, an empty split, a label id outside ``num_classes``,
features of the wrong width, stored transposed (C x T), with zero steps or non-finite values
raise an error naming the file or video and what was expected (docs/reference.md §9 items 23, 24).
The annotation consistency rules (one label with two ids, end <= start, malformed entries:
refused; segments before 0 s or past the duration: one warning per rule) are the shared ones
of validation.py, applied before anything is built; feature files are read with
``allow_pickle=False`` and an unreadable one is a :class:`DatasetError` naming it.

Decisions that keep the original's numbers:

* segments that extend past (or start after) a video's duration (real THUMOS14 has some,
  e.g. video_test_0000270) are NOT clipped: the original keeps them, and clipping would change
  the training targets and the mAP; one warning per rule names the videos and segments;
* videos without feature files are skipped where the original skips them (thumos, ego4d), with
  one summary warning; anet / epic, whose original crashes later, refuse to build instead;
* a video without an ``annotations`` key is treated as having none (the original raises a
  KeyError while building the label dictionary).
"""
from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from libs.utils.safe_pickle import load_error_reason

from .data_utils import truncate_feats
from .types import VideoItem, VideoRecord
from .validation import DatasetError, enforce, first_few, validate_database

__all__ = ["FeatureDataset", "read_annotation_json"]


def read_annotation_json(json_file: str) -> Dict[str, Any]:
    """Reads the ``database`` mapping of an annotation file, with errors naming the file."""
    data = read_json_file(json_file)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise DatasetError(f"{json_file}: expected an object with a 'database' mapping of "
                         "video id -> {subset, duration, fps, annotations}")
    return data["database"]


def read_json_file(json_file: str) -> Any:
    """Reads an annotation JSON file; a missing, malformed or non-UTF-8 file raises
    :class:`DatasetError` naming it."""
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"annotation file not found: {json_file}")
    with open(json_file, "r", encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{json_file}: malformed JSON at line {err.lineno}, column "
                               f"{err.colno}: {err.msg}") from None
        except UnicodeDecodeError as err:
            raise DatasetError(f"{json_file}: not a UTF-8 text (JSON) file: {err}") from None
    return data


class FeatureDataset(Dataset):
    """Base class: one annotation JSON, one feature file (or one per folder) per video.

    Constructor arguments are the original's (docs/reference.md §2.2), passed as
    ``**cfg['dataset']``.

    Args:
        is_training: training items are cropped by :func:`truncate_feats`.
        split: subset names to keep (compared with the lower-cased JSON ``subset``).
        feat_folder: folder of the feature files (a list of folders for ego4d).
        json_file: annotation JSON.
        feat_stride: frames between consecutive features.
        num_frames: frames covered by one feature.
        default_fps: fps of every video, or None to read ``fps`` from the JSON.
        downsample_rate: keep every n-th feature.
        max_seq_len: training length (longer inputs are cropped).
        trunc_thresh: fraction of an action that must survive a crop.
        crop_ratio: None or [lo, hi] random crop of shorter inputs.
        input_dim: feature channels (int, or a list for ego4d's concatenated folders).
        num_classes: number of action classes.
        file_prefix, file_ext: feature file name = prefix + video id + ext.
        force_upsampling: (anet) resize to ``max_seq_len``.
    """

    dataset_name: str = ""
    tiou_thresholds: np.ndarray = np.linspace(0.3, 0.7, 5)
    require_duration: bool = False
    # True: a video of the split without features is skipped (thumos, ego4d, as the
    # original); False: the data set refuses to build and lists them (anet, epic, whose
    # original crashes at the first missing file during training)
    skip_missing_features: bool = True

    def __init__(self, is_training: bool, split: Sequence[str], feat_folder: Any,
                 json_file: str, feat_stride: float, num_frames: float,
                 default_fps: Optional[float], downsample_rate: int, max_seq_len: int,
                 trunc_thresh: float, crop_ratio: Optional[Sequence[float]], input_dim: Any,
                 num_classes: int, file_prefix: Optional[str], file_ext: str,
                 force_upsampling: bool) -> None:
        if not isinstance(split, (list, tuple)):
            raise TypeError(f"split must be a list or tuple of subset names, got {split!r}")
        if crop_ratio is not None and len(crop_ratio) != 2:
            raise DatasetError(f"crop_ratio must be None or [lo, hi], got {crop_ratio!r}")
        if not os.path.isfile(json_file):
            raise FileNotFoundError(f"annotation file not found: {json_file}")
        self.feat_folder = feat_folder
        self._check_feat_folder()
        self.file_prefix = "" if file_prefix is None else file_prefix
        self.file_ext = file_ext
        self.json_file = json_file
        self.split = split
        self.is_training = is_training
        self.feat_stride = feat_stride
        self.num_frames = num_frames
        self.input_dim = input_dim
        self.default_fps = default_fps
        self.downsample_rate = downsample_rate
        self.max_seq_len = max_seq_len
        self.trunc_thresh = trunc_thresh
        self.num_classes = num_classes
        self.crop_ratio = crop_ratio
        self.force_upsampling = force_upsampling

        database = read_annotation_json(json_file)
        # the shared rules (validation.py): refuse what breaks, warn about what the
        # original kept (one warning per rule, naming videos and segments)
        enforce(validate_database(database, self.split, self._annotations), json_file,
                stacklevel=3)
        self.label_dict = self._build_label_dict(database)
        self._check_num_classes(self.label_dict)
        self.data_list = tuple(self._select_videos(database))
        if not self.data_list:
            self._raise_empty_split(database)
        self.db_attributes = {
            "dataset_name": self.dataset_name,
            "tiou_thresholds": np.array(self.tiou_thresholds),  # a copy per data set
            "empty_label_ids": self._empty_label_ids(),
        }

    def _raise_empty_split(self, database: Dict[str, Any]) -> None:
        in_split = [k for k, v in database.items()
                    if str(v.get("subset", "")).lower() in self.split]
        if in_split:
            raise FileNotFoundError(
                f"{self.json_file}: none of the {len(in_split)} video(s) of split "
                f"{list(self.split)} has its feature file (expected e.g. "
                f"{self._describe_path(in_split[0])}); check dataset.feat_folder, "
                "file_prefix and file_ext")
        subsets = sorted({str(v.get("subset", "?")) for v in database.values()})
        raise DatasetError(f"{self.json_file}: no video of split {list(self.split)} (subsets "
                         f"present: {', '.join(subsets) or 'none, the database is empty'}; "
                         "the split is compared with the lower-cased 'subset')")

    # ------------------------------------------------------------------ subclass hooks
    def _check_feat_folder(self) -> None:
        if not os.path.exists(self.feat_folder):
            raise FileNotFoundError(f"feature folder not found: {self.feat_folder}")

    def _check_num_classes(self, label_dict: Dict[str, int]) -> None:
        if len(label_dict) != self.num_classes:
            raise DatasetError(f"{self.json_file}: {len(label_dict)} classes in the annotations, "
                             f"but dataset.num_classes is {self.num_classes}")

    def _empty_label_ids(self) -> List[int]:
        return []

    def _has_features(self, video_id: str) -> bool:
        """Whether the feature file(s) of a video exist (a cheap check: no file is read)."""
        return os.path.exists(self._feature_path(video_id))

    def _annotations(self, video: Dict[str, Any]) -> List[Dict[str, Any]]:
        return video.get("annotations") or []

    def _read_features(self, video_id: str) -> np.ndarray:
        """Returns the (T, C) features of a video (any float dtype)."""
        return np.load(self._feature_path(video_id), allow_pickle=False)

    def _describe_path(self, video_id: str) -> str:
        """The feature file(s) of a video, for messages."""
        return self._feature_path(video_id)

    # ------------------------------------------------------------------ JSON
    def _feature_path(self, video_id: str, folder: Optional[str] = None) -> str:
        return os.path.join(folder or self.feat_folder,
                            self.file_prefix + video_id + self.file_ext)

    def _build_label_dict(self, database: Dict[str, Any]) -> Dict[str, int]:
        # all videos of all subsets, in JSON order; later occurrences overwrite (as original)
        label_dict: Dict[str, int] = {}
        for video in database.values():
            for act in video.get("annotations") or []:
                label_dict[act["label"]] = act["label_id"]
        return label_dict

    def _select_videos(self, database: Dict[str, Any]) -> List[VideoRecord]:
        videos: List[VideoRecord] = []
        skipped: List[str] = []
        for video_id, video in database.items():
            if str(video.get("subset", "")).lower() not in self.split:
                continue
            if not self._has_features(video_id):
                skipped.append(video_id)
                continue
            if self.default_fps is not None:
                fps = self.default_fps
            elif "fps" in video:
                fps = video["fps"]
            else:
                raise DatasetError(f"{self.json_file}: video '{video_id}' has no 'fps' and "
                                 "dataset.default_fps is not set (unknown video FPS)")
            if "duration" in video:
                duration = video["duration"]
            elif self.require_duration:
                raise DatasetError(f"{self.json_file}: video '{video_id}' has no 'duration' "
                                 f"(required by the '{self.dataset_name}' dataset)")
            else:
                duration = 1e8
            segments, labels = self._segments_and_labels(video_id, video)
            videos.append(self._video_record(video_id, video, fps, duration, segments, labels))
        # one summary warning / error per data set, never one per video
        if skipped and not self.skip_missing_features:
            raise FileNotFoundError(
                f"{self.json_file}: {len(skipped)} video(s) of split {list(self.split)} have "
                f"no feature file ({first_few(skipped)}; expected e.g. "
                f"{self._describe_path(skipped[0])})")
        if skipped and videos:  # (no video at all: the empty-split error says more)
            warnings.warn(f"{self.json_file}: {len(skipped)} video(s) of split "
                          f"{list(self.split)} skipped: no feature file "
                          f"({first_few(skipped)}; expected e.g. "
                          f"{self._describe_path(skipped[0])})", stacklevel=4)
        return videos

    def _video_record(self, video_id: str, video: Dict[str, Any], fps: float, duration: float,
                      segments: Optional[np.ndarray], labels: Optional[np.ndarray]
                      ) -> VideoRecord:
        return {"id": video_id, "fps": fps, "duration": duration, "segments": segments,
                "labels": labels}

    def _segments_and_labels(self, video_id: str, video: Dict[str, Any]
                             ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        acts = self._annotations(video)
        if len(acts) == 0:
            return None, None
        segments = np.asarray([act["segment"] for act in acts], dtype=np.float32)
        labels = np.asarray([self._label_of(video_id, act) for act in acts], dtype=np.int64)
        if segments.ndim != 2 or segments.shape[1] != 2:
            raise DatasetError(f"{self.json_file}: video '{video_id}' has a segment that is not "
                             "[start, end] in seconds")
        return segments, labels

    def _label_of(self, video_id: str, act: Dict[str, Any]) -> int:
        label = self.label_dict[act["label"]]
        if not isinstance(label, (int, np.integer)) or not 0 <= label < self.num_classes:
            raise DatasetError(f"{self.json_file}: video '{video_id}' has label "
                             f"'{act['label']}' with label_id {label!r}; expected an integer "
                             f"in [0, {self.num_classes}) (dataset.num_classes)")
        return int(label)

    # ------------------------------------------------------------------ items
    def get_attributes(self) -> Dict[str, Any]:
        return self.db_attributes

    def __len__(self) -> int:
        return len(self.data_list)

    def load_features(self, video_id: str) -> np.ndarray:
        """The (T, C) float32 features of a video, checked (shape, width, finite values)."""
        path = self._describe_path(video_id)
        try:
            feats = self._read_features(video_id)
        except FileNotFoundError:
            raise FileNotFoundError(f"feature file of video '{video_id}' not found: "
                                    f"{path}") from None
        except DatasetError:
            raise
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile,
                pickle.UnpicklingError, RuntimeError) as err:
            # e.g. an .npy holding pickled objects (never unpickled), a truncated file, a .pt
            # file refused by torch.load(weights_only=True)
            raise DatasetError(f"feature file of video '{video_id}' ({path}) cannot be read "
                               f"as a numeric array: {load_error_reason(err)}") from None
        feats = np.asarray(feats, dtype=np.float32)
        self._check_features(video_id, path, feats)
        return feats

    def _expected_dim(self) -> int:
        dims = self.input_dim
        return int(sum(dims)) if isinstance(dims, (list, tuple)) else int(dims)

    def _check_features(self, video_id: str, path: str, feats: np.ndarray) -> None:
        dim = self._expected_dim()
        if feats.ndim != 2:
            raise DatasetError(f"features of video '{video_id}' ({path}) must be a 2-d (T, C) "
                             f"array, got shape {feats.shape}")
        if feats.shape[0] == 0:
            raise DatasetError(f"features of video '{video_id}' ({path}) have zero time steps")
        if feats.shape[1] != dim:
            hint = ""
            if feats.shape[0] == dim:
                hint = (f"; it looks transposed (C x T): store features as (T, C), e.g. "
                        "np.save(path, feats.T)")
            raise DatasetError(f"features of video '{video_id}' ({path}) have shape "
                             f"{feats.shape}, expected (T, {dim}) with dataset.input_dim "
                             f"= {self.input_dim}{hint}")
        if not np.isfinite(feats).all():
            bad = int((~np.isfinite(feats)).any(axis=1).sum())
            raise DatasetError(f"features of video '{video_id}' ({path}) contain NaN or inf "
                             f"values at {bad} time step(s)")

    def __getitem__(self, idx: int) -> VideoItem:
        video = self.data_list[idx]
        feats = self.load_features(video["id"])
        # temporal subsampling, then the grid: feature i is centred at frame
        # i * stride + num_frames / 2 (docs/reference.md §2.5)
        feats = feats[::self.downsample_rate, :]
        feat_stride = self.feat_stride * self.downsample_rate
        feat_offset = 0.5 * self.num_frames / feat_stride
        feats = torch.from_numpy(np.ascontiguousarray(feats.transpose()))
        item = self._make_item(video, feats, feat_stride, self.num_frames, feat_offset)
        return self._maybe_truncate(item, feat_offset)

    def _make_item(self, video: VideoRecord, feats: torch.Tensor, feat_stride: float,
                   num_frames: float, feat_offset: float) -> VideoItem:
        if video["segments"] is not None:
            segments = torch.from_numpy(
                video["segments"] * video["fps"] / feat_stride - feat_offset)
            labels = torch.from_numpy(video["labels"])
        else:
            segments, labels = None, None
        return {"video_id": video["id"], "feats": feats, "segments": segments,
                "labels": labels, "fps": video["fps"], "duration": video["duration"],
                "feat_stride": feat_stride, "feat_num_frames": num_frames}

    def _maybe_truncate(self, item: VideoItem, feat_offset: float) -> VideoItem:
        if self.is_training and item["segments"] is not None:
            item = truncate_feats(item, self.max_seq_len, self.trunc_thresh, feat_offset,
                                  self.crop_ratio)
        return item
