#!/usr/bin/env python
"""Converts public ActivityNet 1.3 and EPIC-Kitchens-100 annotation files to the loaders' format.

The loaders read an ActivityNet-style JSON (docs/reference.md §2.3):
``{"database": {video_id: {"subset", "duration", "fps", "annotations": [{"label", "segment",
"label_id"}]}}}``.

* ``anet``: BSN's ``anet_anno_action.json`` (video → ``duration_second``, ``annotations``
  [{segment, label}]) + ``video_info_new.csv`` (subset, fps) + ``action_name.csv`` (the 200
  class names; ``label_id`` = row index). Video ids lose their ``v_`` prefix, because the
  anet configs use ``file_prefix: v_`` with bare ids (``--keep-prefix`` keeps it). Test
  videos (no annotations) get ``annotations: []``. The anet configs use ``num_classes: 1``
  (every label becomes 0), so the 200 class ids matter only for other settings.
* ``epic``: ``EPIC_100_<split>.csv`` rows (start/stop ``HH:MM:SS.ff`` timestamps,
  ``verb_class`` / ``noun_class``) + ``EPIC_100_video_info.csv`` (duration, fps) +
  ``EPIC_100_{verb,noun}_classes.csv`` (names); one JSON per task (``--task verb|noun``) with
  ``subset`` set to ``--subset`` (e.g. validation).

Examples:
    python tools/convert_annotations.py anet path/to/anet1.3 out/anet1.3.json
    python tools/convert_annotations.py epic path/to/epic100 out/epic_verb.json \
        --task verb --subset validation
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.datasets.base import read_json_file  # noqa: E402
from libs.utils.atomic import write_json_atomic  # noqa: E402


def _read_csv(path: str):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _timestamp_to_sec(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def convert_anet(folder: str, strip_prefix: bool = True,
                 max_videos: Optional[int] = None) -> Dict[str, Any]:
    """ActivityNet 1.3 (BSN redistribution) → loader JSON; subsets from video_info_new.csv.

    Args:
        folder: folder with anet_anno_action.json, video_info_new.csv, action_name.csv.
        strip_prefix: drop the ``v_`` of the video ids (the configs' ``file_prefix`` adds it).
        max_videos: stop after this many videos (JSON order), e.g. for quick tests.

    Returns:
        ``{"version", "database": {id: {subset, duration, fps, annotations}}}``.
    """
    annos = read_json_file(os.path.join(folder, "anet_anno_action.json"))
    info = {row["video"]: row for row in _read_csv(os.path.join(folder, "video_info_new.csv"))}
    names = [row["action"] for row in _read_csv(os.path.join(folder, "action_name.csv"))]
    label_ids = {name: i for i, name in enumerate(names)}
    database: Dict[str, Any] = {}
    for video_id, video in annos.items():
        row = info.get(video_id)
        if row is None:
            raise KeyError(f"video '{video_id}' of anet_anno_action.json is missing from "
                           "video_info_new.csv")
        key = video_id[2:] if strip_prefix and video_id.startswith("v_") else video_id
        acts = []
        for act in video.get("annotations", []):
            if act["label"] not in label_ids:
                raise KeyError(f"video '{video_id}': label '{act['label']}' is not in "
                               "action_name.csv")
            acts.append({"label": act["label"], "segment": list(act["segment"]),
                         "label_id": label_ids[act["label"]]})
        database[key] = {"subset": row["subset"], "duration": float(video["duration_second"]),
                         "fps": float(row["fps"]), "annotations": acts}
        if max_videos is not None and len(database) >= max_videos:
            break
    return {"version": "ActivityNet-1.3", "database": database}


def convert_epic(folder: str, task: str = "verb", split_csv: str = "EPIC_100_validation.csv",
                 subset: str = "validation") -> Dict[str, Any]:
    """EPIC-Kitchens-100 split CSV → loader JSON for the verb or noun task.

    Args:
        folder: folder with the split CSV, EPIC_100_video_info.csv and the class CSVs.
        task: ``verb`` (97 classes) or ``noun`` (300 classes).
        split_csv: the split's narration file.
        subset: the ``subset`` written for every video (the configs select ``validation``).

    Returns:
        ``{"version", "database": {video_id: {subset, duration, fps, annotations}}}``, videos
        in order of first appearance, segments in seconds.
    """
    if task not in ("verb", "noun"):
        raise ValueError(f"task must be 'verb' or 'noun', got '{task}'")
    rows = _read_csv(os.path.join(folder, split_csv))
    info = {row["video_id"]: row for row in _read_csv(os.path.join(folder,
                                                                    "EPIC_100_video_info.csv"))}
    classes = {int(row["id"]): row["key"]
               for row in _read_csv(os.path.join(folder, f"EPIC_100_{task}_classes.csv"))}
    database: Dict[str, Any] = {}
    for row in rows:
        video_id = row["video_id"]
        if video_id not in database:
            if video_id not in info:
                raise KeyError(f"video '{video_id}' of {split_csv} is missing from "
                               "EPIC_100_video_info.csv")
            database[video_id] = {"subset": subset,
                                  "duration": float(info[video_id]["duration"]),
                                  "fps": float(info[video_id]["fps"]), "annotations": []}
        label_id = int(row[f"{task}_class"])
        if label_id not in classes:
            raise KeyError(f"{split_csv}: narration '{row['narration_id']}' has {task}_class "
                           f"{label_id}, not in EPIC_100_{task}_classes.csv")
        database[video_id]["annotations"].append({
            "label": classes[label_id], "label_id": label_id,
            "segment": [_timestamp_to_sec(row["start_timestamp"]),
                        _timestamp_to_sec(row["stop_timestamp"])]})
    return {"version": f"EPIC-KITCHENS-100-{task}", "database": database}


def write_json(data: Dict[str, Any], path: str) -> None:
    """Writes the loader JSON atomically (libs/utils/atomic.py), creating the folder."""
    write_json_atomic(data, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", choices=("anet", "epic"))
    p.add_argument("folder", help="folder with the public annotation files")
    p.add_argument("out_json", help="output annotation JSON")
    p.add_argument("--keep-prefix", action="store_true",
                   help="anet: keep the v_ of the video ids (then use file_prefix: ~)")
    p.add_argument("--task", default="verb", choices=("verb", "noun"), help="epic task")
    p.add_argument("--split-csv", default="EPIC_100_validation.csv", help="epic split file")
    p.add_argument("--subset", default="validation", help="epic: subset name to write")
    args = p.parse_args(argv)
    if args.dataset == "anet":
        data = convert_anet(args.folder, strip_prefix=not args.keep_prefix)
    else:
        data = convert_epic(args.folder, args.task, args.split_csv, args.subset)
    write_json(data, args.out_json)
    print(f"wrote {len(data['database'])} videos to {args.out_json}")
    return 0


if __name__ == "__main__":
    from libs.utils.cli import run_main  # noqa: E402  (one-line errors, --debug)
    sys.exit(run_main(main))
