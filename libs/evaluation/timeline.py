"""What a detection timeline shows (no matplotlib needed): results and ground truth read from
their files, the videos and detections chosen, the rows and lanes laid out.

tools/visualize.py draws them; the file formats are described in its docstring.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from libs.utils.safe_pickle import safe_load

__all__ = ["RESULT_KEYS", "Detection", "Row", "group_results", "load_detections",
           "load_ground_truth", "top_per_class", "prepare_videos", "assign_lanes",
           "timeline_rows"]

RESULT_KEYS = ("video-id", "t-start", "t-end", "label", "score")

Detection = Dict[str, Any]  # {"start", "end" (s), "label_id" (int), "label" (str|None), "score"}
# (tick label, class id, bars (start, end, score or None for ground truth))
Row = Tuple[str, int, List[Tuple[float, float, Optional[float]]]]


def group_results(results: Dict[str, Any]) -> Dict[str, List[Detection]]:
    """Groups an ``eval_results.pkl`` dict (docs/reference.md §7.8) by video.

    Args:
        results: ``{'video-id': N ids, 't-start': (N,), 't-end': (N,), 'label': (N,),
            'score': (N,)}``.

    Returns:
        Per video id (in order of first appearance) its detections ``{"start", "end",
        "label_id", "label": None, "score"}``, sorted by score (highest first; ties keep the
        input order).

    Raises:
        ValueError: a missing key, or columns of different lengths.
    """
    if not isinstance(results, dict) or any(k not in results for k in RESULT_KEYS):
        raise ValueError(f"expected a dict with keys {list(RESULT_KEYS)} (eval.py --saveonly "
                         f"writes it)")
    ids = list(results["video-id"])
    cols = [np.asarray(results[k]).reshape(-1) for k in RESULT_KEYS[1:]]
    if any(len(c) != len(ids) for c in cols):
        raise ValueError(f"'video-id' and the arrays have different lengths "
                         f"({len(ids)} vs {[len(c) for c in cols]})")
    dets: Dict[str, List[Detection]] = {}
    for vid, start, end, label, score in zip(ids, *cols):
        dets.setdefault(str(vid), []).append(
            {"start": float(start), "end": float(end), "label_id": int(label),
             "label": None, "score": float(score)})
    for out in dets.values():
        out.sort(key=lambda d: -d["score"])  # stable: ties keep the input order
    return dets


def load_detections(path: str) -> Tuple[Dict[str, List[Detection]], Dict[str, float]]:
    """Reads ``eval_results.pkl`` or an infer JSON (formats in the module docstring).

    Returns:
        ``(detections, durations)``: per video id the detections sorted by score (highest
        first), and the durations (seconds) the infer JSON gives.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is neither format, or lacks a key.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"results file not found: {path}")
    dets: Dict[str, List[Detection]] = {}
    durations: Dict[str, float] = {}
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list of {{'video_id', 'detections'}} entries "
                             f"(the output of tools/infer.py)")
        for i, entry in enumerate(data):
            if not isinstance(entry, dict) or "video_id" not in entry \
                    or "detections" not in entry:
                raise ValueError(f"{path}: entry {i} lacks 'video_id' or 'detections'")
            vid = str(entry["video_id"])
            if entry.get("duration") is not None:
                durations[vid] = float(entry["duration"])
            out = dets.setdefault(vid, [])
            for j, d in enumerate(entry["detections"]):
                missing = [k for k in ("start", "end", "label_id", "score") if k not in d]
                if missing:
                    raise ValueError(f"{path}: video {vid}, detection {j} lacks {missing}")
                out.append({"start": float(d["start"]), "end": float(d["end"]),
                            "label_id": int(d["label_id"]), "label": d.get("label"),
                            "score": float(d["score"])})
    else:
        data = safe_load(path)  # plain containers and arrays only: no code runs
        try:
            dets = group_results(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}; or give an infer JSON (*.json)") from None
    for out in dets.values():
        out.sort(key=lambda d: -d["score"])  # stable: ties keep the file order
    return dets, durations


def load_ground_truth(json_file: str, split: Optional[Sequence[str]] = None,
                      class_agnostic: bool = False
                      ) -> Tuple[Dict[str, Dict[str, Any]], Dict[int, str]]:
    """Ground truth of an ActivityNet-style annotation JSON (docs/reference.md §2.3).

    Args:
        json_file: annotation file.
        split: subsets to keep (compared lower-cased); ``None`` keeps every video.
        class_agnostic: every action becomes class 0 (ActivityNet with ``num_classes: 1``).

    Returns:
        ``(videos, names)``: per video id ``{"duration": float or None, "actions":
        [(start, end, label_id), ...]}`` (seconds), and class id -> name over all videos.
    """
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"annotation file not found: {json_file}")
    with open(json_file, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise ValueError(f"{json_file}: expected {{'database': {{video id: ...}}}}")
    keep = None if split is None else {s.lower() for s in split}
    names: Dict[int, str] = {}
    videos: Dict[str, Dict[str, Any]] = {}
    for vid, video in data["database"].items():
        acts = video.get("annotations") or []
        for act in acts:
            if "label_id" in act and "label" in act:
                names[int(act["label_id"])] = str(act["label"])
        if keep is not None and str(video.get("subset", "")).lower() not in keep:
            continue
        actions = [(float(a["segment"][0]), float(a["segment"][1]),
                    0 if class_agnostic else int(a["label_id"])) for a in acts]
        duration = video.get("duration")
        videos[vid] = {"duration": None if duration is None else float(duration),
                       "actions": actions}
    if class_agnostic:
        names = {0: "action"}
    return videos, names


def top_per_class(dets: Sequence[Detection], topk: int, min_score: float = 0.0
                  ) -> List[Detection]:
    """The ``topk`` highest-scoring detections of each class with ``score >= min_score``.

    Args:
        dets: detections of one video, in any order.
        topk: per class; ``<= 0`` keeps all.
        min_score: score floor.

    Returns:
        The kept detections, by class id, then by score (highest first).
    """
    by_class: Dict[int, List[Detection]] = {}
    for d in sorted(dets, key=lambda d: -d["score"]):
        if d["score"] < min_score:
            continue
        kept = by_class.setdefault(d["label_id"], [])
        if topk <= 0 or len(kept) < topk:
            kept.append(d)
    return [d for c in sorted(by_class) for d in by_class[c]]


def prepare_videos(dets: Dict[str, List[Detection]], gt: Dict[str, Dict[str, Any]],
                   durations: Optional[Dict[str, float]] = None,
                   videos: Optional[Sequence[str]] = None, num_videos: int = 10,
                   topk: int = 3, min_score: float = 0.0) -> List[Dict[str, Any]]:
    """What to draw, per video (no I/O, no matplotlib).

    Args:
        dets: per video id its detections (``group_results`` / ``load_detections``).
        gt: per video id ``{"duration", "actions": [(start, end, label_id), ...]}``
            (``load_ground_truth``); may be empty.
        durations: per video id a duration (seconds) to use when the ground truth has none.
        videos: these ids, in this order (each must be in ``dets`` or ``gt``).
        num_videos: without ``videos``, the first this many of the ground-truth videos followed
            by the result-only videos; ``<= 0`` takes all.
        topk: detections kept per class (``top_per_class``); ``<= 0`` keeps all.
        min_score: detections below this score are dropped.

    Returns:
        One dict per video: ``{"video_id", "duration" (seconds or None), "gt" (actions),
        "detections" (kept, by class then score), "num_detections" (before selection)}``.

    Raises:
        ValueError: an id of ``videos`` that is in neither ``dets`` nor ``gt``.
    """
    durations = durations or {}
    if videos:
        unknown = [v for v in videos if v not in dets and v not in gt]
        if unknown:
            raise ValueError(f"video(s) {unknown} are neither in the results nor in the "
                             f"ground truth")
        chosen = list(dict.fromkeys(videos))
    else:
        chosen = list(dict.fromkeys(list(gt) + list(dets)))
        if num_videos > 0:
            chosen = chosen[:num_videos]
    out = []
    for vid in chosen:
        video_gt = gt.get(vid, {"duration": None, "actions": []})
        vid_dets = dets.get(vid, [])
        out.append({"video_id": vid,
                    "duration": video_gt["duration"] or durations.get(vid),
                    "gt": list(video_gt["actions"]),
                    "detections": top_per_class(vid_dets, topk, min_score),
                    "num_detections": len(vid_dets)})
    return out


def assign_lanes(intervals: Sequence[Tuple[float, float]]) -> List[int]:
    """Lane index per interval so that intervals sharing a lane do not overlap.

    Greedy by start time (earliest start first), each interval takes the lowest lane whose
    last interval ended at or before its start; touching intervals share a lane.

    Returns:
        One lane index (0-based) per input interval, in input order.
    """
    order = sorted(range(len(intervals)), key=lambda i: (intervals[i][0], intervals[i][1]))
    lane_end: List[float] = []
    lanes = [0] * len(intervals)
    for i in order:
        start, end = intervals[i]
        for lane, last in enumerate(lane_end):
            if last <= start:
                lanes[i] = lane
                lane_end[lane] = end
                break
        else:
            lanes[i] = len(lane_end)
            lane_end.append(end)
    return lanes


def timeline_rows(gt_actions: Sequence[Tuple[float, float, int]], dets: Sequence[Detection],
                  names: Dict[int, str]) -> Tuple[List[int], List[Row]]:
    """The classes drawn (sorted ids) and the rows, top to bottom: per class the ground-truth
    lanes, then the detection lanes (at least one of each; only the first lane is labelled)."""
    classes = sorted({a[2] for a in gt_actions} | {d["label_id"] for d in dets})
    rows: List[Row] = []
    for c in classes:
        name = names.get(c, f"class {c}")
        for kind, items in (("GT", [(a[0], a[1], None) for a in gt_actions if a[2] == c]),
                            ("pred", [(d["start"], d["end"], d["score"])
                                      for d in dets if d["label_id"] == c])):
            lanes = assign_lanes([(s, e) for s, e, _ in items]) if items else []
            for lane in range(max(lanes) + 1 if lanes else 1):
                label = f"{name} ({c}) {kind}" if lane == 0 else ""
                rows.append((label, c, [it for it, ln in zip(items, lanes) if ln == lane]))
    return classes, rows
