#!/usr/bin/env python
"""Writes a synthetic action-localization data set in the original on-disk layout.

The output is what every dataset class reads (REFERENCE.md §2.3, §2.4): an ActivityNet-style
annotation JSON plus one (T, C) float32 feature file per video, so any config can point at it.

Two modes:

* fully synthetic (default): ``--videos`` videos of ``--min-len``..``--max-len`` feature steps
  with 1..``--max-actions`` actions of ``--classes`` classes each;
* ``--from-json FILE``: features for every video of an existing annotation file (e.g. the real
  THUMOS14 one), with ``T = round(duration * fps / feat_stride)`` steps like real features and
  the file's actions placed at their annotated times. The annotation file is copied unchanged.

How the features carry the actions: each class has a random prototype direction; inside an
action the prototype is added with an envelope that ramps up and down over a few steps (soft
boundaries) and a random per-action strength; everything is buried in Gaussian noise plus a
slowly drifting background, and a few "distractor" bursts of a class prototype are placed
outside actions. ``--noise`` sets the difficulty: a small model learns to localise the
actions well above chance but not perfectly.

Seconds and grid steps follow the datasets' convention: feature ``i`` is centred at frame
``i * feat_stride + num_frames / 2``.

Formats (``--format``): ``npy`` (one ``<prefix><id>.npy`` per video; thumos/anet/ego4d),
``npz`` (array ``feats``; epic), ``h5`` (one HDF5 file, dataset ``<prefix><id>``; anet),
``ego4d`` (the channels split over several folders, one ``.npy`` per video in each).

Example:
    python tools/make_synthetic_dataset.py data/synthetic --videos 120 --classes 5 --dim 64
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

FORMATS = ("npy", "npz", "h5", "ego4d")


def _envelope(num_steps: int, start: float, end: float, ramp: float) -> np.ndarray:
    """A soft box over [start, end] (grid units): sigmoid ramps of width ``ramp``."""
    t = np.arange(num_steps, dtype=np.float64)
    width = max(ramp, 1e-3)
    rise = 1.0 / (1.0 + np.exp(np.clip(-(t - start) / width, -60.0, 60.0)))
    fall = 1.0 / (1.0 + np.exp(np.clip((t - end) / width, -60.0, 60.0)))
    return rise * fall


def synthesise_features(num_steps: int, actions: Sequence[Dict[str, float]],
                        prototypes: np.ndarray, rng: np.random.Generator, noise: float,
                        ramp: float = 1.5, distractors: int = 1) -> np.ndarray:
    """(T, C) float32 features with class signal inside ``actions`` (grid-unit start/end/label)."""
    dim = prototypes.shape[1]
    feats = rng.normal(0.0, noise, size=(num_steps, dim))
    # slowly drifting background shared by all channels of a video
    drift = np.cumsum(rng.normal(0.0, 0.05, size=(num_steps, 1)), axis=0)
    feats += drift * rng.normal(0.0, 1.0, size=(1, dim)) * 0.2
    for act in actions:
        strength = rng.uniform(0.7, 1.3)
        env = _envelope(num_steps, act["start"], act["end"], ramp)
        feats += strength * env[:, None] * prototypes[int(act["label"])][None, :]
    for _ in range(distractors):
        if num_steps < 4:
            break
        centre = rng.uniform(0, num_steps)
        width = rng.uniform(1.0, 3.0)
        label = rng.integers(len(prototypes))
        env = _envelope(num_steps, centre - width, centre + width, ramp)
        feats += rng.uniform(0.3, 0.6) * env[:, None] * prototypes[label][None, :]
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
            import h5py

            os.makedirs(out_dir, exist_ok=True)
            self.feat_path = os.path.join(out_dir, "features.hdf5")
            self.h5 = h5py.File(self.feat_path, "w")
        elif fmt == "ego4d":
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


def make_synthetic_dataset(out_dir: str, *, num_videos: int = 100, num_classes: int = 5,
                           dim: int = 64, min_len: int = 200, max_len: int = 800,
                           max_actions: int = 4, min_action_len: float = 4.0,
                           max_action_len: float = 60.0, overlap: float = 0.1,
                           noise: float = 1.0, fps: float = 30.0, feat_stride: int = 4,
                           num_frames: int = 16, test_fraction: float = 0.3,
                           train_subset: str = "Validation", test_subset: str = "Test",
                           fmt: str = "npy", prefix: str = "", ego4d_splits: int = 2,
                           from_json: Optional[str] = None, seed: int = 0,
                           json_name: str = "synthetic.json") -> Dict[str, Any]:
    """Writes the data set and returns a summary (paths, counts, class names).

    Deterministic for a seed. See the module docstring for the layout and the signal model.
    """
    rng = np.random.default_rng(seed)
    writer = _Writer(out_dir, fmt, prefix, ego4d_splits)
    ann_dir = os.path.join(out_dir, "annotations")
    os.makedirs(ann_dir, exist_ok=True)
    database: Dict[str, Any] = {}
    try:
        if from_json is None:
            class_names = [f"action_{k}" for k in range(num_classes)]
            protos = _prototypes(num_classes, dim, rng)
            num_test = int(round(num_videos * test_fraction))
            for v in range(num_videos):
                subset = test_subset if v >= num_videos - num_test else train_subset
                video_id = f"video_{subset.lower()}_{v:05d}"
                num_steps = int(rng.integers(min_len, max_len + 1))
                acts = _random_actions(num_steps, max_actions, min_action_len, max_action_len,
                                       num_classes, overlap, rng, first_label=v % num_classes)
                writer.write(video_id, synthesise_features(num_steps, acts, protos, rng, noise))
                duration = _grid_to_sec(num_steps, fps, feat_stride, num_frames)
                database[video_id] = {
                    "subset": subset, "duration": round(duration, 3), "fps": fps,
                    "annotations": [{
                        "label": class_names[a["label"]], "label_id": a["label"],
                        "segment": [round(_grid_to_sec(a["start"], fps, feat_stride,
                                                       num_frames), 3),
                                    round(_grid_to_sec(a["end"], fps, feat_stride,
                                                       num_frames), 3)]}
                        for a in acts]}
            data = {"version": f"synthetic-seed{seed}", "database": database}
        else:
            with open(from_json, "r", encoding="utf-8") as f:
                data = json.load(f)
            source = data["database"]
            labels = {a["label_id"]: a["label"] for v in source.values()
                      for a in v.get("annotations") or []}
            class_names = [labels.get(k, f"class_{k}") for k in range(max(labels) + 1)]
            protos = _prototypes(len(class_names), dim, rng)
            for video_id, video in source.items():
                video_fps = fps if "fps" not in video else video["fps"]
                num_steps = max(1, int(round(video["duration"] * video_fps / feat_stride)))
                acts = [{"start": _sec_to_grid(a["segment"][0], video_fps, feat_stride,
                                               num_frames),
                         "end": _sec_to_grid(a["segment"][1], video_fps, feat_stride,
                                             num_frames),
                         "label": a["label_id"]} for a in video.get("annotations") or []]
                writer.write(video_id, synthesise_features(num_steps, acts, protos, rng, noise))
            json_name = os.path.basename(from_json)
    finally:
        writer.close()

    json_path = os.path.join(ann_dir, json_name)
    tmp = json_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, json_path)
    return {"json_file": json_path, "feat_folder": writer.feat_path,
            "num_videos": len(data["database"]), "class_names": class_names,
            "input_dim": writer.channel_split(dim) if fmt == "ego4d" else dim}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out_dir", help="output folder (annotations/ and features/ are created)")
    p.add_argument("--videos", type=int, default=100, help="number of videos (synthetic mode)")
    p.add_argument("--classes", type=int, default=5, help="number of classes")
    p.add_argument("--dim", type=int, default=64, help="feature channels")
    p.add_argument("--min-len", type=int, default=200, help="shortest video (feature steps)")
    p.add_argument("--max-len", type=int, default=800, help="longest video (feature steps)")
    p.add_argument("--max-actions", type=int, default=4, help="most actions per video")
    p.add_argument("--min-action-len", type=float, default=4.0, help="grid steps")
    p.add_argument("--max-action-len", type=float, default=60.0, help="grid steps")
    p.add_argument("--overlap", type=float, default=0.1,
                   help="probability of accepting an overlapping action")
    p.add_argument("--noise", type=float, default=1.0, help="noise level (difficulty)")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--feat-stride", type=int, default=4)
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--train-subset", default="Validation")
    p.add_argument("--test-subset", default="Test")
    p.add_argument("--format", default="npy", choices=FORMATS)
    p.add_argument("--prefix", default="", help="feature file prefix (e.g. v_ for anet)")
    p.add_argument("--ego4d-splits", type=int, default=2, help="folders for --format ego4d")
    p.add_argument("--from-json", default=None,
                   help="synthesise features for every video of this annotation file")
    p.add_argument("--json-name", default="synthetic.json")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    summary = make_synthetic_dataset(
        args.out_dir, num_videos=args.videos, num_classes=args.classes, dim=args.dim,
        min_len=args.min_len, max_len=args.max_len, max_actions=args.max_actions,
        min_action_len=args.min_action_len, max_action_len=args.max_action_len,
        overlap=args.overlap, noise=args.noise, fps=args.fps, feat_stride=args.feat_stride,
        num_frames=args.num_frames, test_fraction=args.test_fraction,
        train_subset=args.train_subset, test_subset=args.test_subset, fmt=args.format,
        prefix=args.prefix, ego4d_splits=args.ego4d_splits, from_json=args.from_json,
        seed=args.seed, json_name=args.json_name)
    print(f"wrote {summary['num_videos']} videos: {summary['json_file']}, features in "
          f"{summary['feat_folder']} (input_dim {summary['input_dim']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
