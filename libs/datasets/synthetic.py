"""The synthetic data set generator: feature signal model, feature-file writers, the two modes.

tools/make_synthetic_dataset.py is its command line; its docstring describes the on-disk
layout, the two modes (fully synthetic, ``--from-json``) and the signal model.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from libs.utils.atomic import write_json_atomic

__all__ = ["FORMATS", "DEFAULT_FPS", "synthesise_features", "make_synthetic_dataset"]

FORMATS = ("npy", "npz", "h5", "ego4d")
DEFAULT_FPS = 30.0  # fully synthetic mode, when --fps is not given


def _envelope(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """A soft box over [start, end] (grid units) at steps ``t``: sigmoid ramps of width ``ramp``."""
    width = max(ramp, 1e-3)
    rise = 1.0 / (1.0 + np.exp(np.clip(-(t - start) / width, -60.0, 60.0)))
    fall = 1.0 / (1.0 + np.exp(np.clip((t - end) / width, -60.0, 60.0)))
    return rise * fall


def _add_burst(activation: np.ndarray, label: int, start: float, end: float, ramp: float,
               strength: float) -> None:
    """Adds ``strength * envelope`` to column ``label`` of the (T, K) activation, in place.

    Only the steps within 40 ramp widths of the box are touched: the envelope is below
    1e-17 further out, i.e. nothing a float32 feature can show.
    """
    num_steps = activation.shape[0]
    reach = 40.0 * max(ramp, 1e-3)
    lo = max(int(np.floor(start - reach)), 0)
    hi = min(int(np.ceil(end + reach)) + 1, num_steps)
    if hi <= lo:
        return
    t = np.arange(lo, hi, dtype=np.float64)
    activation[lo:hi, label] += strength * _envelope(t, start, end, ramp)


def synthesise_features(num_steps: int, actions: Sequence[Dict[str, float]],
                        prototypes: np.ndarray, rng: np.random.Generator, noise: float,
                        ramp: float = 1.5, distractors: int = 1) -> np.ndarray:
    """(T, C) float32 features with class signal inside ``actions``.

    Args:
        num_steps: T.
        actions: dicts with ``start``, ``end`` (grid units, may lie outside [0, T)) and
            ``label`` (row of ``prototypes``).
        prototypes: (K, C) class directions.
        rng: the generator (draw order: noise, drift, one strength per action, then four
            numbers per distractor).
        noise: std of the i.i.d. Gaussian noise.
        ramp: width of the soft boundaries, in steps.
        distractors: class bursts (2-6 steps, half strength) placed anywhere.

    Returns:
        (T, C) float32 array.
    """
    num_classes, dim = prototypes.shape
    feats = rng.normal(0.0, noise, size=(num_steps, dim))
    # slowly drifting background shared by all channels of a video
    drift = np.cumsum(rng.normal(0.0, 0.05, size=(num_steps, 1)), axis=0)
    feats += drift * rng.normal(0.0, 1.0, size=(1, dim)) * 0.2
    # per-class activations (T, K), then one (T, K) x (K, C) product for all actions
    activation = np.zeros((num_steps, num_classes), dtype=np.float64)
    for act in actions:
        strength = rng.uniform(0.7, 1.3)
        _add_burst(activation, int(act["label"]), act["start"], act["end"], ramp, strength)
    for _ in range(distractors):
        if num_steps < 4:
            break
        centre = rng.uniform(0, num_steps)
        width = rng.uniform(1.0, 3.0)
        label = int(rng.integers(num_classes))
        _add_burst(activation, label, centre - width, centre + width, ramp,
                   rng.uniform(0.3, 0.6))
    feats += activation @ prototypes
    return feats.astype(np.float32)


def _prototypes(num_classes: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    protos = rng.normal(0.0, 1.0, size=(num_classes, dim))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    return protos * np.sqrt(dim) * 0.5  # per-channel amplitude ~0.5


def _grid_to_sec(grid: float, fps: float, feat_stride: float, num_frames: float) -> float:
    return (grid * feat_stride + 0.5 * num_frames) / fps


def _sec_to_grid(sec: float, fps: float, feat_stride: float, num_frames: float) -> float:
    return sec * fps / feat_stride - 0.5 * num_frames / feat_stride


class _Writer:
    """Writes feature arrays in one of the supported formats."""

    def __init__(self, out_dir: str, fmt: str, prefix: str, ego4d_splits: int) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
        self.fmt, self.prefix = fmt, prefix
        self.ego4d_splits = ego4d_splits
        self.h5 = None
        if fmt == "h5":
            import h5py  # only for this format

            os.makedirs(out_dir, exist_ok=True)
            self.feat_path = os.path.join(out_dir, "features.hdf5")
            self.h5 = h5py.File(self.feat_path, "w")
        elif fmt == "ego4d":
            if ego4d_splits < 1:
                raise ValueError(f"ego4d_splits must be >= 1, got {ego4d_splits}")
            self.feat_path = [os.path.join(out_dir, f"features_{i}") for i in range(ego4d_splits)]
            for folder in self.feat_path:
                os.makedirs(folder, exist_ok=True)
        else:
            self.feat_path = os.path.join(out_dir, "features")
            os.makedirs(self.feat_path, exist_ok=True)

    def channel_split(self, dim: int) -> List[int]:
        base = dim // self.ego4d_splits
        return [base] * (self.ego4d_splits - 1) + [dim - base * (self.ego4d_splits - 1)]

    def write(self, video_id: str, feats: np.ndarray) -> None:
        name = self.prefix + video_id
        if self.fmt == "npy":
            np.save(os.path.join(self.feat_path, name + ".npy"), feats)
        elif self.fmt == "npz":
            np.savez(os.path.join(self.feat_path, name + ".npz"), feats=feats)
        elif self.fmt == "h5":
            self.h5.create_dataset(name, data=feats)
        else:
            start = 0
            for folder, width in zip(self.feat_path, self.channel_split(feats.shape[1])):
                np.save(os.path.join(folder, name + ".npy"), feats[:, start:start + width])
                start += width

    def close(self) -> None:
        if self.h5 is not None:
            self.h5.close()


def _random_actions(num_steps: int, max_actions: int, min_len: float, max_len: float,
                    num_classes: int, overlap: float, rng: np.random.Generator,
                    first_label: int) -> List[Dict[str, float]]:
    """Random actions; the first has ``first_label`` (so that every class occurs)."""
    actions: List[Dict[str, float]] = []
    for n in range(int(rng.integers(1, max_actions + 1))):
        length = float(rng.uniform(min_len, min(max_len, 0.8 * num_steps)))
        for _trial in range(20):
            start = float(rng.uniform(0, num_steps - length))
            end = start + length
            clash = any(min(end, a["end"]) - max(start, a["start"]) > 0 for a in actions)
            if not clash or rng.uniform() < overlap:
                label = first_label if n == 0 else int(rng.integers(num_classes))
                actions.append({"start": start, "end": end, "label": label})
                break
    return sorted(actions, key=lambda a: a["start"])


def _check_options(num_videos: int, num_classes: int, dim: int, min_len: int, max_len: int,
                   max_actions: int, min_action_len: float, max_action_len: float,
                   test_fraction: float, noise: float) -> None:
    problems = []
    if num_videos < 1 or num_classes < 1 or dim < 1 or max_actions < 1:
        problems.append("videos, classes, dim and max_actions must be >= 1")
    if not 4 <= min_len <= max_len:
        problems.append(f"need 4 <= min_len <= max_len, got {min_len}, {max_len}")
    if not 0 < min_action_len <= max_action_len:
        problems.append(f"need 0 < min_action_len <= max_action_len, got {min_action_len}, "
                        f"{max_action_len}")
    if not 0.0 <= test_fraction < 1.0:
        problems.append(f"test_fraction must be in [0, 1), got {test_fraction}")
    if noise < 0:
        problems.append(f"noise must be >= 0, got {noise}")
    if problems:
        raise ValueError("make_synthetic_dataset: " + "; ".join(problems))


def _synthetic_database(writer: _Writer, rng: np.random.Generator, *, num_videos: int,
                        num_classes: int, dim: int, min_len: int, max_len: int,
                        max_actions: int, min_action_len: float, max_action_len: float,
                        overlap: float, noise: float, ramp: float, distractors: int,
                        fps: float, feat_stride: float, num_frames: float,
                        test_fraction: float, train_subset: str, test_subset: str):
    class_names = [f"action_{k}" for k in range(num_classes)]
    protos = _prototypes(num_classes, dim, rng)
    num_test = int(round(num_videos * test_fraction))
    database: Dict[str, Any] = {}
    for v in range(num_videos):
        subset = test_subset if v >= num_videos - num_test else train_subset
        video_id = f"video_{subset.lower()}_{v:05d}"
        num_steps = int(rng.integers(min_len, max_len + 1))
        acts = _random_actions(num_steps, max_actions, min_action_len, max_action_len,
                               num_classes, overlap, rng, first_label=v % num_classes)
        writer.write(video_id, synthesise_features(num_steps, acts, protos, rng, noise,
                                                   ramp=ramp, distractors=distractors))
        duration = _grid_to_sec(num_steps, fps, feat_stride, num_frames)

        def sec(grid: float) -> float:
            return round(_grid_to_sec(grid, fps, feat_stride, num_frames), 3)

        database[video_id] = {
            "subset": subset, "duration": round(duration, 3), "fps": fps,
            "annotations": [{"label": class_names[a["label"]], "label_id": a["label"],
                             "segment": [sec(a["start"]), sec(a["end"])]} for a in acts]}
    return database, class_names


def _database_from_json(writer: _Writer, rng: np.random.Generator, source: Dict[str, Any],
                        from_json: str, *, dim: int, noise: float, ramp: float,
                        distractors: int, fps: Optional[float], feat_stride: float,
                        num_frames: float):
    labels: Dict[int, str] = {}
    for video_id, video in source.items():
        for act in video.get("annotations") or []:
            if not isinstance(act.get("label_id"), int) or act["label_id"] < 0:
                raise ValueError(f"{from_json}: video '{video_id}' has an annotation without a "
                                 f"non-negative integer 'label_id': {act}")
            labels[act["label_id"]] = act.get("label", f"class_{act['label_id']}")
    num_classes = max(labels) + 1 if labels else 1
    class_names = [labels.get(k, f"class_{k}") for k in range(num_classes)]
    protos = _prototypes(num_classes, dim, rng)
    for video_id, video in source.items():
        video_fps = fps if fps is not None else video.get("fps")
        if video_fps is None or "duration" not in video:
            raise ValueError(f"{from_json}: video '{video_id}' needs 'duration' and 'fps' (or "
                             "pass fps=/--fps) to size its features")
        num_steps = max(1, int(round(video["duration"] * video_fps / feat_stride)))
        acts = [{"start": _sec_to_grid(a["segment"][0], video_fps, feat_stride, num_frames),
                 "end": _sec_to_grid(a["segment"][1], video_fps, feat_stride, num_frames),
                 "label": a["label_id"]} for a in video.get("annotations") or []]
        writer.write(video_id, synthesise_features(num_steps, acts, protos, rng, noise,
                                                   ramp=ramp, distractors=distractors))
    return class_names


def _source_annotations(from_json: str, subsets: Optional[Sequence[str]],
                        max_videos: Optional[int]) -> Dict[str, Any]:
    """The annotation file of the ``from_json`` mode, restricted to ``subsets`` (lower-cased)
    and then to the first ``max_videos`` videos."""
    with open(from_json, "r", encoding="utf-8") as f:
        data = json.load(f)
    source = data["database"]
    if subsets is not None:
        wanted = {s.lower() for s in subsets}
        source = {k: v for k, v in source.items()
                  if str(v.get("subset", "")).lower() in wanted}
    if max_videos is not None:
        source = dict(list(source.items())[:max_videos])
    if not source:
        raise ValueError(f"{from_json}: no video left to synthesise (subsets={subsets}, "
                         f"max_videos={max_videos})")
    return dict(data, database=source)


def make_synthetic_dataset(out_dir: str, *, num_videos: int = 100, num_classes: int = 5,
                           dim: int = 64, min_len: int = 200, max_len: int = 800,
                           max_actions: int = 4, min_action_len: float = 4.0,
                           max_action_len: float = 60.0, overlap: float = 0.1,
                           noise: float = 1.0, ramp: float = 1.5, distractors: int = 1,
                           fps: Optional[float] = None, feat_stride: float = 4,
                           num_frames: float = 16, test_fraction: float = 0.3,
                           train_subset: str = "Validation", test_subset: str = "Test",
                           fmt: str = "npy", prefix: str = "", ego4d_splits: int = 2,
                           from_json: Optional[str] = None,
                           subsets: Optional[Sequence[str]] = None,
                           max_videos: Optional[int] = None, seed: int = 0,
                           json_name: str = "synthetic.json") -> Dict[str, Any]:
    """Writes the data set and returns a summary.

    Deterministic for a seed. See the module docstring for the layout and the signal model.
    Options of one mode are ignored by the other (``num_videos``, lengths, actions, subsets
    names: synthetic; ``subsets``, ``max_videos``: from_json).

    Args:
        out_dir: output folder (``annotations/`` and the features are created in it).
        fps: synthetic mode: fps of every video (default 30). ``from_json`` mode: as a
            config's ``default_fps``, overrides the videos' own fps for sizing the features.
        feat_stride, num_frames: the feature grid (frames per step, frames per feature).
        from_json: annotation file whose videos get features (the second mode).
        subsets: from_json mode: keep only videos whose lower-cased subset is listed.
        max_videos: from_json mode: keep only the first N videos (after ``subsets``).
        json_name: synthetic mode: name of the annotation file (from_json keeps the source's).
        others: see ``--help``.

    Returns:
        ``{'json_file', 'feat_folder' (str, or list of folders for 'ego4d'), 'num_videos',
        'class_names', 'input_dim' (int, or the per-folder list for 'ego4d')}``.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    if from_json is None:
        _check_options(num_videos, num_classes, dim, min_len, max_len, max_actions,
                       min_action_len, max_action_len, test_fraction, noise)
    else:
        data = _source_annotations(from_json, subsets, max_videos)
        json_name = os.path.basename(from_json)

    writer = _Writer(out_dir, fmt, prefix, ego4d_splits)
    try:
        if from_json is None:
            database, class_names = _synthetic_database(
                writer, rng, num_videos=num_videos, num_classes=num_classes, dim=dim,
                min_len=min_len, max_len=max_len, max_actions=max_actions,
                min_action_len=min_action_len, max_action_len=max_action_len,
                overlap=overlap, noise=noise, ramp=ramp, distractors=distractors,
                fps=DEFAULT_FPS if fps is None else fps, feat_stride=feat_stride,
                num_frames=num_frames, test_fraction=test_fraction,
                train_subset=train_subset, test_subset=test_subset)
            data = {"version": f"synthetic-seed{seed}", "database": database}
        else:
            class_names = _database_from_json(
                writer, rng, data["database"], from_json, dim=dim, noise=noise, ramp=ramp,
                distractors=distractors, fps=fps, feat_stride=feat_stride,
                num_frames=num_frames)
    finally:
        writer.close()

    json_path = os.path.join(out_dir, "annotations", json_name)
    write_json_atomic(data, json_path)
    return {"json_file": json_path, "feat_folder": writer.feat_path,
            "num_videos": len(data["database"]), "class_names": class_names,
            "input_dim": writer.channel_split(dim) if fmt == "ego4d" else dim}
