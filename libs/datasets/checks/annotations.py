"""Annotation checks of a data-set check: subsets vs splits, labels vs num_classes, fps/duration.

The consistency rules themselves live in libs/datasets/validation.py (the loaders apply them).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Dict, Optional, Sequence

from ...utils.annotations import remove_duplicate_annotations
from ..validation import validate_database
from .report import SHOW, Report, first_ids

SEC = "annotations"
Videos = Dict[str, Dict[str, Any]]


def class_rule(name: str, found: int, num_classes: int) -> Optional[str]:
    """The dataset class's class-count assertion (docs/reference.md §2.3); a message on failure."""
    if name == "epic":
        ok, rule = found <= num_classes, "at most num_classes"
    elif name == "anet":
        ok, rule = num_classes == 1 or found == num_classes, "num_classes, or num_classes 1"
    else:
        ok, rule = found == num_classes, "exactly num_classes"
    if ok:
        return None
    return (f"{found} classes in the annotations, but dataset.num_classes is {num_classes} "
            f"(the '{name}' data set needs {rule})")


def check_annotations(rep: Report, cfg: Dict[str, Any], database: Dict[str, Any],
                      splits: Sequence[str]) -> Videos:
    """JSON checks; returns the videos of ``splits`` with their fps/duration/segments."""
    not_obj = [vid for vid, v in database.items() if not isinstance(v, dict)]
    if not_obj:
        rep.error(SEC, f"{len(not_obj)} video record(s) are not objects: {first_ids(not_obj)}")
        database = {k: v for k, v in database.items() if isinstance(v, dict)}
    _check_subsets(rep, cfg, database, splits)
    _check_rules(rep, cfg["dataset_name"], database, splits)
    _check_labels(rep, cfg, database)
    videos = _collect_videos(rep, cfg, database, splits)
    _count_splits(rep, videos, splits)
    return videos


def _check_subsets(rep: Report, cfg: Dict[str, Any], database: Dict[str, Any],
                   splits: Sequence[str]) -> None:
    """The JSON 'subset' values vs train_split / val_split / --split."""
    subsets = Counter(str(v.get("subset", "<none>")) for v in database.values())
    rep.info(SEC, f"{len(database)} videos; subsets: "
             + ", ".join(f"{s} ({n})" for s, n in sorted(subsets.items())))
    lowered: Counter = Counter()
    for s, n in subsets.items():
        lowered[s.lower()] += n
    for role, names in (("train_split", cfg["train_split"]), ("val_split", cfg["val_split"])):
        for s in names:
            if s not in lowered:
                hint = (" (splits must be lower-case)" if s.lower() in lowered and s != s.lower()
                        else "")
                rep.error(SEC, f"{role} '{s}' matches no video: the JSON 'subset' values, "
                          f"lower-cased, are {sorted(lowered)}{hint}")
    if len(cfg["val_split"]) > 1:
        rep.warn(SEC, f"val_split has {len(cfg['val_split'])} entries; evaluation scores "
                 f"only the first, '{cfg['val_split'][0]}'")
    for s in splits:
        if s not in lowered and s not in list(cfg["train_split"]) + list(cfg["val_split"]):
            rep.error(SEC, f"split '{s}' (--split) matches no video")


def _check_rules(rep: Report, name: str, database: Dict[str, Any],
                 splits: Sequence[str]) -> None:
    """The data sets' own rules: what they refuse is an error here, what they warn a warning."""
    dedup = remove_duplicate_annotations if name == "anet" else None
    for finding in validate_database(
            database, splits, (lambda v: dedup(v.get("annotations") or [])) if dedup else None):
        (rep.error if finding.severity == "error" else rep.warn)(SEC, finding.message(SHOW))


def _check_labels(rep: Report, cfg: Dict[str, Any], database: Dict[str, Any]) -> None:
    """The label dictionary over all videos of all subsets, as the datasets build it."""
    name, num_classes = cfg["dataset_name"], cfg["dataset"]["num_classes"]
    ids_of: Dict[str, set] = defaultdict(set)
    labels_of: Dict[Any, set] = defaultdict(set)
    no_ann = [vid for vid, video in database.items() if "annotations" not in video]
    if no_ann and name != "ego4d":
        rep.warn(SEC, f"{len(no_ann)} video(s) have no 'annotations' key (the original "
                 f"'{name}' loader needs it; use [] for no actions): {first_ids(no_ann)}")
    for video in database.values():
        for act in video.get("annotations") or []:
            if isinstance(act, dict) and {"label", "label_id", "segment"} <= set(act):
                ids_of[str(act["label"])].add(act["label_id"])
                labels_of[act["label_id"]].add(str(act["label"]))
    class_agnostic = name == "anet" and num_classes == 1
    bad_ids = sorted((i for i in labels_of
                      if not (isinstance(i, int) and not isinstance(i, bool)
                              and 0 <= i < num_classes)), key=str)
    if bad_ids and not class_agnostic:
        rep.error(SEC, f"label_id(s) {first_ids([repr(i) for i in bad_ids])} outside "
                  f"[0, {num_classes}) (dataset.num_classes {num_classes}; ids are 0-based)")
    msg = class_rule(name, len(ids_of), num_classes)
    if msg:
        rep.error(SEC, msg)
    elif name == "epic" and len(ids_of) < num_classes:
        used = {i for v in ids_of.values() for i in v}
        empty = [i for i in range(num_classes) if i not in used]
        rep.warn(SEC, f"{len(empty)} class id(s) have no annotation "
                 f"({first_ids(map(str, empty))}); their classifier bias is set very negative")
    rep.info(SEC, f"{len(ids_of)} classes (dataset.num_classes {num_classes}"
             + (", class-agnostic: every label becomes 0" if class_agnostic else "") + ")")


def _well_formed_segments(video: Dict[str, Any]) -> list:
    """The (start, end) pairs of a video's well-formed segments (rules: validate_database)."""
    segs = []
    for act in video.get("annotations") or []:
        seg = act.get("segment") if isinstance(act, dict) else None
        if (isinstance(seg, (list, tuple)) and len(seg) == 2
                and all(isinstance(x, (int, float)) for x in seg)):
            segs.append((float(seg[0]), float(seg[1])))
    return segs


def _collect_videos(rep: Report, cfg: Dict[str, Any], database: Dict[str, Any],
                    splits: Sequence[str]) -> Videos:
    """The videos of the checked splits, with their fps / duration / segments."""
    name, ds = cfg["dataset_name"], cfg["dataset"]
    videos: Videos = {}
    no_fps, no_dur = [], []
    for vid, video in database.items():
        subset = str(video.get("subset", "")).lower()
        if subset not in splits:
            continue
        fps = ds["default_fps"] if ds["default_fps"] is not None else video.get("fps")
        if fps is None:
            no_fps.append(vid)
        duration = video.get("duration")
        if duration is None:
            no_dur.append(vid)
        videos[vid] = {"subset": subset, "fps": fps, "duration": duration,
                       "segments": _well_formed_segments(video)}
    if no_fps:
        rep.error(SEC, f"{len(no_fps)} video(s) have no 'fps' and dataset.default_fps is not "
                  f"set: {first_ids(no_fps)}")
    if no_dur:
        if name == "anet":
            rep.error(SEC, f"{len(no_dur)} video(s) have no 'duration' (required by anet): "
                      f"{first_ids(no_dur)}")
        else:
            rep.info(SEC, f"{len(no_dur)} video(s) have no 'duration': the segment-end and "
                     f"feature-length checks skip them ({first_ids(no_dur)})")
    return videos


def _count_splits(rep: Report, videos: Videos, splits: Sequence[str]) -> None:
    """Videos and actions per checked split."""
    per_split = Counter(v["subset"] for v in videos.values())
    acts: Counter = Counter()
    for v in videos.values():
        acts[v["subset"]] += len(v["segments"])
    for s in splits:
        rep.info(SEC, f"split '{s}': {per_split[s]} videos, {acts[s]} actions")
