"""Data statistics on the feature grid, for deriving a config (config_builder.py).

Lengths are in feature-grid steps: a video of ``d`` seconds has
``T = (floor(d * fps) - num_frames) // feat_stride + 1`` features (the extractor's count,
libs/video/manifest.py; the manifest's own per-video count when there is one); an action of
``s`` seconds is ``s * fps / feat_stride`` steps long. This module imports only libs.core.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from libs.core.config import max_div_factor

__all__ = ["FeatureGrid", "DataStats", "Entry", "estimate_num_features", "default_splits",
           "collect_stats", "div_factor"]


@dataclass(frozen=True)
class FeatureGrid:
    """How the features were made: frames between features, frames per feature, fps, width."""
    feat_stride: int
    num_frames: int
    fps: float
    input_dim: int
    file_ext: str = ".npy"


@dataclass(frozen=True)
class Entry:
    """One config value and the comment that says why (``section`` '' = top level)."""
    section: str
    key: str
    value: Any
    why: str


@dataclass
class DataStats:
    """What the rules read: lengths (steps) of videos and actions, per split."""
    train_lengths: np.ndarray      # (V_train,) features per training video
    eval_lengths: np.ndarray       # (V_eval,)
    action_steps: np.ndarray       # (A,) training action lengths in steps
    action_rel: np.ndarray         # (A,) training action length / video duration
    train_actions: np.ndarray      # (V_train,) actions per training video
    eval_actions: np.ndarray       # (V_eval,) actions per evaluation video
    num_classes: int               # largest label id + 1
    num_labels: int                # label names that occur (< num_classes: unused ids)
    train_split: str
    val_split: str


def estimate_num_features(duration: float, grid: FeatureGrid) -> int:
    """Features of a video of ``duration`` s on the grid (at least 1: short videos pad)."""
    frames = int(duration * grid.fps)
    return 1 if frames < grid.num_frames else (frames - grid.num_frames) // grid.feat_stride + 1


def default_splits(database: Mapping[str, Any]) -> Tuple[str, str]:
    """(train, val) subset names: 'training' / 'validation' when present; THUMOS14's
    'validation' / 'test' when there is no 'training'; a single subset serves as both."""
    subsets = sorted({str(v.get("subset", "")).lower() for v in database.values()} - {""})
    if "training" in subsets:
        train = "training"
    elif "validation" in subsets and "test" in subsets:
        train = "validation"
    elif subsets:
        train = subsets[0]
    else:
        raise ValueError("the annotation file has no video with a 'subset'")
    rest = [s for s in ("validation", "test") if s in subsets and s != train]
    return train, (rest[0] if rest else train)


def _label_count(database: Mapping[str, Any], source: str) -> Tuple[int, int]:
    """(num_classes = largest label id + 1, number of label names that occur)."""
    ids: Dict[str, int] = {}
    for video in database.values():
        for act in video.get("annotations") or []:
            ids[act["label"]] = act["label_id"]
    values = set(ids.values())
    if len(values) != len(ids) or any(not isinstance(v, int) or v < 0 for v in values):
        raise ValueError(f"{source}: every label name needs its own integer label_id >= 0 "
                         f"({len(ids)} names share {len(values)} ids)")
    return (max(values) + 1 if values else 0), len(ids)


def collect_stats(database: Mapping[str, Any], grid: FeatureGrid,
                  lengths: Optional[Mapping[str, int]] = None,
                  splits: Optional[Tuple[str, str]] = None, source: str = "annotations"
                  ) -> DataStats:
    """Lengths of the training / evaluation videos and actions on the feature grid.

    Args:
        database: the annotation JSON's ``database``.
        grid: the feature grid.
        lengths: features per video id (the manifest's); missing ids are estimated from
            their duration (``estimate_num_features``).
        splits: (train, val) subset names (lower case); default ``default_splits``.
    """
    train, val = splits or default_splits(database)
    out: Dict[str, List[float]] = {k: [] for k in ("tl", "el", "st", "rel", "ta", "ea")}
    for vid, video in database.items():
        subset = str(video.get("subset", "")).lower()
        if subset not in (train, val):
            continue
        if "duration" not in video and vid not in (lengths or {}):
            raise ValueError(f"{source}: video '{vid}' has no 'duration' and no feature count")
        T = (lengths or {}).get(vid) or estimate_num_features(float(video["duration"]), grid)
        acts = video.get("annotations") or []
        if subset == train:
            out["tl"].append(T)
            out["ta"].append(len(acts))
            for act in acts:
                start, end = act["segment"]
                out["st"].append((end - start) * grid.fps / grid.feat_stride)
                out["rel"].append((end - start) / float(video.get("duration") or 1e8))
        if subset == val:
            out["el"].append(T)
            out["ea"].append(len(acts))
    if not out["st"]:
        raise ValueError(f"{source}: no action in the training subset '{train}'")
    arr = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    return DataStats(arr["tl"], arr["el"], arr["st"], arr["rel"], arr["ta"], arr["ea"],
                     *_label_count(database, source), train, val)


def div_factor(windows: Sequence[int], levels: int) -> int:
    """``max_div_factor`` of a pyramid with these windows (libs.core.config's rule)."""
    return max_div_factor({"backbone_arch": [2, 2, levels - 1], "scale_factor": 2,
                           "n_mha_win_size": list(windows), "fpn_start_level": 0})
