#!/usr/bin/env python
"""Converts Ego4D Moment-Queries annotations and full-video features into per-clip data.

    python tools/convert_ego4d_trainval.py [--input-dir DIR] [--output-dir DIR]
        [--label-map FILE] [--ann-dir DIR] [--feat-dir DIR] [--out-feat-dir DIR]
        [--out-json FILE]

The 110-class label map ships with the repository (``tools/ego4d_label_map.txt``, byte for byte
the original's; tools/ego4d_label_map.md) and is the default; ``--label-map`` overrides it.

Behaviour: docs/reference.md §8.1 (the original's ``tools/convert_ego4d_trainval.py``); the numbers
it writes (clip fps, grid alignment, feature rows, segments, rounding) are the original's.

Input layout (the original's, relative to ``--input-dir``, default the current folder):

* the label map, ``NNN<TAB>label`` per line: the shipped ``tools/ego4d_label_map.txt`` unless
  ``--label-map`` names another (the original read ``ego4d_label_map.txt`` from the input
  folder; a different file there is reported and ignored, pass it with ``--label-map``);
* ``annotations/moments_train.json``, ``annotations/moments_val.json`` (official MQ files);
* ``features/slowfast8x8_r101_k400/<video_uid>.pt`` and
  ``features/omnivore_video_swinl/<video_uid>.pt``: full-video (T, C) feature tensors, one row
  per 16-frame step of 32-frame windows.

Output (relative to ``--output-dir``, default the input folder, as the original):
``features/slowfast_features/<clip_uid>.npy`` and ``features/omnivore_features/<clip_uid>.npy``
((T, C) float32) and ``annotations/ego4d.json`` (``{"version": "v1", "database": {clip_uid:
{subset, duration, fps, annotations}}}``). The ``ego4d`` configs read
``data/ego4d/{slowfast,omnivore,egovlp}_features/`` and ``data/ego4d/annotations/ego4d.json``:
``--output-dir data/ego4d --out-feat-dir data/ego4d`` writes exactly that layout. EgoVLP
features are obtained separately.

Algorithm per clip (constants: 32-frame windows, 16-frame stride):

1. ``ss = max(video_start_sec, 0)``, ``sf = max(video_start_frame, 0)``, ``es, ef`` the ends;
   ``fps = (ef - sf) / (es - ss)``; clips with ``fps < 10`` or ``fps > 100`` are skipped.
2. The clip is widened to the feature grid: ``sf mod 16`` frames are prepended, and frames are
   appended until ``frames - 32`` is a multiple of 16; ``duration`` grows by the same time.
3. Feature rows ``[(sf - prepend) // 16, (ef + append - 32) // 16)`` of both tensors are saved.
4. Every *primary* label of every annotator becomes an action, in seconds (and frames)
   relative to the widened clip start; actions shorter than 0.25 s are dropped; seconds are
   rounded to 2 decimals. Clips without actions get feature files but no JSON entry.

Differences from the original (none changes a number):

* the label map is the shipped copy unless ``--label-map`` is given (see above);
* the JSON is written once at the end, atomically (the original rewrote it after every video);
* a video whose SlowFast *or* Omnivore file is missing is skipped with a message naming the
  file (the original skipped only a missing Omnivore file and crashed on a missing SlowFast
  one);
* label-map labels wrapped in double quotes (the 7 labels that contain commas) are unquoted,
  so that they match the annotation labels (the original kept the quotes, so those labels
  could not be looked up);
* a malformed label-map line, an annotation label missing from the map, or a clip that needs
  more feature rows than a file has raise a ``ValueError`` naming the file / clip;
* a clip whose end is not after its (clamped) start is skipped like a bad-fps clip (the
  original divided by zero).
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.utils.atomic import write_json_atomic  # noqa: E402

__all__ = ["CLIP_FRAMES", "CLIP_STRIDE", "MIN_ACTION_SEC", "SUBSET_NAMES", "FEATURE_SETS",
           "DEFAULT_LABEL_MAP", "read_label_map", "align_clip", "convert_clip_annotations", "convert_ego4d", "main"]

CLIP_FRAMES = 32  # frames seen by one feature vector
CLIP_STRIDE = 16  # frames between consecutive feature vectors
MIN_ACTION_SEC = 0.25  # shorter actions are dropped
FPS_RANGE = (10.0, 100.0)  # clips whose fps falls outside are dropped
SUBSET_NAMES = {"train": "training", "val": "validation"}
# (input folder of full-video .pt tensors, output folder of per-clip .npy arrays)
FEATURE_SETS = (("slowfast8x8_r101_k400", "slowfast_features"),
                ("omnivore_video_swinl", "omnivore_features"))
# the original's 110-class Ego4D MQ label map, shipped beside this script
DEFAULT_LABEL_MAP = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "ego4d_label_map.txt")


def read_label_map(path: str) -> Dict[str, int]:
    """Reads ``NNN<TAB>label`` lines into ``{label: NNN}``.

    Labels wrapped in double quotes (those containing commas) are unquoted. Blank lines are
    ignored.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line that is not ``<integer><TAB><label>``, or a label listed twice.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label map not found: {path} (see tools/ego4d_label_map.md)")
    label_map: Dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0].strip().isdigit() or not parts[1].strip():
                raise ValueError(f"{path}:{lineno}: expected '<index><TAB><label>', got "
                                 f"{line!r}")
            label = parts[1].strip()
            if len(label) >= 2 and label[0] == label[-1] == '"':
                label = label[1:-1]
            if label in label_map:
                raise ValueError(f"{path}:{lineno}: label {label!r} is listed twice")
            label_map[label] = int(parts[0])
    return label_map


def align_clip(clip: Dict[str, Any]) -> Optional[Dict[str, float]]:
    """Clip timing widened to the feature grid (steps 1-3 of the module docstring).

    Args:
        clip: an Ego4D MQ clip with ``video_start_sec``, ``video_end_sec``,
            ``video_start_frame``, ``video_end_frame`` (times in the full video).

    Returns:
        ``None`` when the clip's fps is outside [10, 100]; else a dict with ``start_sec``
        (``ss``), ``start_frame`` (``sf``), ``fps``, ``prepend_frames``, ``prepend_sec``,
        ``append_frames``, ``append_sec``, ``duration`` (seconds, widened), ``frames``
        (widened) and the feature rows ``first_row`` (inclusive), ``end_row`` (exclusive).
    """
    ss = max(float(clip["video_start_sec"]), 0.0)
    es = float(clip["video_end_sec"])
    sf = max(int(clip["video_start_frame"]), 0)
    ef = int(clip["video_end_frame"])
    duration = es - ss
    frames = ef - sf
    if duration <= 0:
        return None
    fps = frames / duration
    if fps < FPS_RANGE[0] or fps > FPS_RANGE[1]:
        return None
    # widen to the start of the feature window that holds the first frame
    prepend_frames = sf % CLIP_STRIDE
    prepend_sec = prepend_frames / fps
    duration += prepend_sec
    frames += prepend_frames
    # and to the end of a whole number of strides after the first window
    append_frames, append_sec = 0, 0.0
    if (frames - CLIP_FRAMES) % CLIP_STRIDE != 0:
        append_frames = CLIP_STRIDE - (frames - CLIP_FRAMES) % CLIP_STRIDE
        append_sec = append_frames / fps
        duration += append_sec
        frames += append_frames
    return {
        "start_sec": ss, "start_frame": sf, "fps": fps,
        "prepend_frames": prepend_frames, "prepend_sec": prepend_sec,
        "append_frames": append_frames, "append_sec": append_sec,
        "duration": duration, "frames": frames,
        "first_row": (sf - prepend_frames) // CLIP_STRIDE,
        "end_row": (ef + append_frames - CLIP_FRAMES) // CLIP_STRIDE,
    }


def convert_clip_annotations(clip: Dict[str, Any], grid: Dict[str, float],
                             label_map: Dict[str, int]) -> Tuple[List[Dict[str, Any]], int]:
    """Primary labels of every annotator as actions relative to the widened clip (step 4).

    Returns:
        ``(actions, num_too_short)``; each action is ``{"label", "segment": [start, end]
        (seconds, 2 decimals), "segment(frames)": [start, end], "label_id"}``.

    Raises:
        ValueError: a label that is not in the label map.
    """
    actions: List[Dict[str, Any]] = []
    too_short = 0
    for annotator in clip.get("annotations", []):
        for item in annotator.get("labels", []):
            if not item.get("primary"):
                continue
            start = float(item["video_start_time"]) - grid["start_sec"] + grid["prepend_sec"]
            end = float(item["video_end_time"]) - grid["start_sec"] + grid["prepend_sec"]
            start_frame = (item["video_start_frame"] - grid["start_frame"]
                           + grid["prepend_frames"])
            end_frame = item["video_end_frame"] - grid["start_frame"] + grid["prepend_frames"]
            if end - start < MIN_ACTION_SEC:
                too_short += 1
                continue
            label = item["label"]
            if label not in label_map:
                raise ValueError(f"clip {clip.get('clip_uid')}: label {label!r} is not in the "
                                 f"label map ({len(label_map)} labels)")
            actions.append({"label": label, "segment": [round(start, 2), round(end, 2)],
                            "segment(frames)": [start_frame, end_frame],
                            "label_id": label_map[label]})
    return actions, too_short


def _load_tensor(path: str) -> np.ndarray:
    import torch  # the official features are torch tensors
    return torch.load(path, map_location="cpu", weights_only=True).numpy()


def _read_json(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Ego4D annotation file not found: {path}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def convert_ego4d(label_map_file: str, ann_dir: str, feat_dir: str, out_feat_dir: str,
                  out_json: str, log=print) -> Dict[str, Any]:
    """Runs the conversion (module docstring) and returns what was written.

    Args:
        label_map_file: ``NNN<TAB>label`` file.
        ann_dir: folder with ``moments_train.json`` and ``moments_val.json``.
        feat_dir: folder with the ``slowfast8x8_r101_k400/`` and ``omnivore_video_swinl/``
            sub-folders of ``<video_uid>.pt`` tensors.
        out_feat_dir: where ``slowfast_features/`` and ``omnivore_features/`` are written.
        out_json: the output annotation file.
        log: called with progress / skip messages.

    Returns:
        ``{"version": "v1", "database": ...}`` as written to ``out_json``, plus a ``"stats"``
        dict (counts of videos, clips and actions written or skipped; not written to disk).
    """
    label_map = read_label_map(label_map_file)
    log(f"label map: {label_map_file} ({len(label_map)} classes)")
    videos = (_read_json(os.path.join(ann_dir, "moments_train.json"))["videos"]
              + _read_json(os.path.join(ann_dir, "moments_val.json"))["videos"])
    for _, out_name in FEATURE_SETS:
        os.makedirs(os.path.join(out_feat_dir, out_name), exist_ok=True)

    stats = {"videos": 0, "videos_missing_features": 0, "clips_written": 0,
             "clips_bad_fps": 0, "clips_without_actions": 0, "actions": 0,
             "actions_too_short": 0}
    database: Dict[str, Any] = {}
    for video in videos:
        video_uid = video["video_uid"]
        subset = SUBSET_NAMES.get(video["split"], video["split"])
        in_paths = [os.path.join(feat_dir, in_name, video_uid + ".pt")
                    for in_name, _ in FEATURE_SETS]
        missing = [p for p in in_paths if not os.path.isfile(p)]
        if missing:
            log(f"skipping video {video_uid}: feature file(s) not found: {', '.join(missing)}")
            stats["videos_missing_features"] += 1
            continue
        feats = [_load_tensor(p) for p in in_paths]
        stats["videos"] += 1
        for clip in video["clips"]:
            clip_uid = clip["clip_uid"]
            grid = align_clip(clip)
            if grid is None:
                stats["clips_bad_fps"] += 1
                continue
            first, end = grid["first_row"], grid["end_row"]
            for (in_name, _), path, arr in zip(FEATURE_SETS, in_paths, feats):
                if end > arr.shape[0]:
                    raise ValueError(f"video {video_uid}, clip {clip_uid}: needs feature rows "
                                     f"[{first}, {end}) but {path} has {arr.shape[0]} rows")
            for (_, out_name), arr in zip(FEATURE_SETS, feats):
                np.save(os.path.join(out_feat_dir, out_name, clip_uid + ".npy"),
                        np.ascontiguousarray(arr[first:end], dtype=np.float32))
            stats["clips_written"] += 1
            actions, too_short = convert_clip_annotations(clip, grid, label_map)
            stats["actions_too_short"] += too_short
            if not actions:
                stats["clips_without_actions"] += 1
                continue
            stats["actions"] += len(actions)
            database[clip_uid] = {"subset": subset, "duration": round(grid["duration"], 2),
                                  "fps": round(grid["fps"], 2), "annotations": actions}
    result = {"version": "v1", "database": database}
    write_json_atomic(result, out_json)
    log(f"{stats['clips_written']} clips of {stats['videos']} videos written to "
        f"{out_feat_dir}; {len(database)} clips with {stats['actions']} actions in {out_json}")
    log(f"skipped: {stats['videos_missing_features']} videos without features, "
        f"{stats['clips_bad_fps']} clips with fps outside {FPS_RANGE}, "
        f"{stats['actions_too_short']} actions shorter than {MIN_ACTION_SEC} s; "
        f"{stats['clips_without_actions']} clips have no action (features only)")
    return {**result, "stats": stats}


def _label_map_file(given: Optional[str], input_dir: str, log=print) -> str:
    """``given`` or the shipped map; reports an input-folder map that differs and is ignored."""
    if given:
        return given
    local = os.path.join(input_dir, "ego4d_label_map.txt")
    if os.path.isfile(local) and not filecmp.cmp(local, DEFAULT_LABEL_MAP, shallow=False):
        log(f"note: {local} differs from the shipped label map and is ignored "
            f"(pass --label-map {local} to use it)")
    return DEFAULT_LABEL_MAP


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--input-dir", "--root", dest="input_dir", default=".",
                   help="folder holding annotations/ and features/ "
                        "(default: current folder)")
    p.add_argument("--output-dir", default=None,
                   help="folder that receives features/ and annotations/ego4d.json "
                        "(default: the input folder)")
    p.add_argument("--label-map", default=None,
                   help="NNN<TAB>label file (default: the shipped "
                        "tools/ego4d_label_map.txt, the original's 110 classes)")
    p.add_argument("--ann-dir", default=None,
                   help="folder of moments_train.json / moments_val.json "
                        "(default: INPUT_DIR/annotations)")
    p.add_argument("--feat-dir", default=None,
                   help="folder of slowfast8x8_r101_k400/ and omnivore_video_swinl/ "
                        "(default: INPUT_DIR/features)")
    p.add_argument("--out-feat-dir", default=None,
                   help="where slowfast_features/ and omnivore_features/ go "
                        "(default: OUTPUT_DIR/features)")
    p.add_argument("--out-json", default=None,
                   help="output annotation file (default: OUTPUT_DIR/annotations/ego4d.json)")
    args = p.parse_args(argv)
    src = args.input_dir
    dst = args.output_dir or src
    try:
        convert_ego4d(
            label_map_file=_label_map_file(args.label_map, src),
            ann_dir=args.ann_dir or os.path.join(src, "annotations"),
            feat_dir=args.feat_dir or os.path.join(src, "features"),
            out_feat_dir=args.out_feat_dir or os.path.join(dst, "features"),
            out_json=args.out_json or os.path.join(dst, "annotations", "ego4d.json"))
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from libs.utils.cli import run_main  # noqa: E402  (one-line errors, --debug)
    sys.exit(run_main(main))
