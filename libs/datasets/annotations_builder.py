"""A plain label table (CSV) + a folder of videos -> the annotation JSON the loaders read.

Owns ``tools/make_annotations.py``'s logic (docs/own_videos.md). Output format:
docs/reference.md §2.3 (``database`` -> video id -> ``subset``, ``duration``, ``fps``,
``annotations``
[{``label``, ``label_id``, ``segment``}]). Rules, all stated in the docs:

* table: CSV with a header row naming the columns ``video, start, end, label`` and optionally
  ``subset`` (any order, case-insensitive); times in seconds;
* videos: every video file of the folder (by extension); ``video`` in the table is its file
  name with or without the extension; duration and fps come from ``probe`` (the project's
  ``libs.video.probe.probe_video``, injected so tests need no video files);
* label ids: sorted label names (Python string order), or the line order of a class file;
* subsets: the table's column, else a seeded split of the labelled videos, else all
  ``training``; videos without a row go to ``unlabeled_subset`` (default ``unlabeled``: in
  the JSON, with their duration and fps, but in no split; ``test`` makes them background-only
  evaluation videos);
* bad rows are collected, all of them, with their line numbers, and raised as one
  :class:`AnnotationTableError`; nothing is dropped. An end up to one frame past the video's
  end is clipped to the duration (a rounding of the labelling tool) and counted in the notes.
"""
from __future__ import annotations

import csv
import math
import os
import random
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["AnnotationTableError", "LabelRow", "VIDEO_EXTS", "parse_label_table",
           "read_label_table",
           "read_class_list", "list_videos", "parse_split", "assign_subsets",
           "build_annotations"]

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
              ".ts")
REQUIRED = ("video", "start", "end", "label")
TRAIN_NAMES = {"train": "training", "training": "training", "val": "validation",
               "validation": "validation", "test": "test"}


class AnnotationTableError(ValueError):
    """One or more bad rows / files; ``problems`` lists every one (the message joins them)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems))


@dataclass(frozen=True)
class LabelRow:
    """One table row: ``line`` is its line number in the file (the header is line 1)."""
    line: int
    video: str
    start: float
    end: float
    label: str
    subset: Optional[str]


def _number(text: str, what: str) -> Tuple[Optional[float], Optional[str]]:
    try:
        value = float(text)
    except ValueError:
        return None, f"{what} {text!r} is not a number (seconds)"
    if not math.isfinite(value):
        return None, f"{what} {text!r} is not a finite number"
    return value, None


def _header(path: str, header: Sequence[str]) -> Dict[str, int]:
    cols = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise AnnotationTableError([
            f"{path} line 1: the header must name the columns video, start, end, label[, "
            f"subset]; missing {', '.join(missing)} (got {', '.join(header) or 'nothing'})"])
    return cols


def parse_label_table(path: str) -> Tuple[List[LabelRow], bool, List[Tuple[int, str]]]:
    """Reads the CSV table: (good rows, whether it has a ``subset`` column, problems).

    Problems are ``(line, message)`` for every malformed row (wrong column count, a time that
    is not a finite number, a negative start, end <= start, an empty video / label / subset);
    such rows are not in the returned rows.

    Raises:
        FileNotFoundError: no such file.
        AnnotationTableError: an empty file or a header without the required columns.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label table not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = list(csv.reader(f))
    if not lines:
        raise AnnotationTableError([f"{path}: empty file (expected a header row video, "
                                    "start, end, label[, subset])"])
    cols = _header(path, lines[0])
    has_subset = "subset" in cols
    rows, problems = [], []
    for line, fields in enumerate(lines[1:], start=2):
        if not fields or all(not x.strip() for x in fields):
            continue  # blank line
        row, errors = _parse_row(fields, cols, len(lines[0]), has_subset)
        problems += [(line, e) for e in errors]
        if not errors:
            rows.append(LabelRow(line, *row))
    return rows, has_subset, problems


def read_label_table(path: str) -> Tuple[List[LabelRow], bool]:
    """``parse_label_table`` that raises :class:`AnnotationTableError` on any bad row."""
    rows, has_subset, problems = parse_label_table(path)
    if problems:
        raise AnnotationTableError([f"{path} line {line}: {msg}" for line, msg in problems])
    return rows, has_subset


def _parse_row(fields: Sequence[str], cols: Mapping[str, int], width: int, has_subset: bool
               ) -> Tuple[Optional[tuple], List[str]]:
    if len(fields) != width:
        return None, [f"{len(fields)} columns, the header has {width}"]
    get = {name: fields[i].strip() for name, i in cols.items()}
    errors = [f"empty {name}" for name in ("video", "label") + (("subset",) if has_subset
                                                                 else ()) if not get[name]]
    start, err_s = _number(get["start"], "start")
    end, err_e = _number(get["end"], "end")
    errors += [e for e in (err_s, err_e) if e]
    if start is not None and start < 0:
        errors.append(f"start {start:g} s is negative")
    if start is not None and end is not None and end <= start:
        errors.append(f"end {end:g} s <= start {start:g} s")
    subset = get["subset"].lower() if has_subset else None
    return (get["video"], start, end, get["label"], subset), errors


def read_class_list(path: str) -> List[str]:
    """Class names, one per line (label id = order of the non-empty lines)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"class list not found: {path}")
    with open(path, encoding="utf-8-sig") as f:
        names = [line.strip() for line in f if line.strip()]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise AnnotationTableError([f"{path}: class names listed twice: {', '.join(dup)}"])
    if not names:
        raise AnnotationTableError([f"{path}: no class names (expected one per line)"])
    return names


def list_videos(folder: str) -> Dict[str, str]:
    """Video id (file name without extension) -> path, for the video files of a folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"video folder not found: {folder}")
    found: Dict[str, str] = {}
    clashes = []
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in VIDEO_EXTS:
            continue
        if stem in found:
            clashes.append(f"{folder}: two videos with the id '{stem}' "
                           f"({os.path.basename(found[stem])}, {name})")
        found[stem] = os.path.join(folder, name)
    if clashes:
        raise AnnotationTableError(clashes)
    if not found:
        raise FileNotFoundError(f"no video files ({', '.join(VIDEO_EXTS)}) in {folder}")
    return found


def parse_split(text: str) -> List[Tuple[str, float]]:
    """``'train=0.8'`` or ``'train=0.7,val=0.15,test=0.15'`` -> [(subset, fraction), ...].

    ``train``/``val`` mean ``training``/``validation``; when the fractions sum to less than
    1 the rest goes to ``validation`` (added if absent).
    """
    parts: List[Tuple[str, float]] = []
    for piece in text.split(","):
        name, sep, value = piece.partition("=")
        frac, err = _number(value.strip(), "fraction") if sep else (None, "no '='")
        if err or frac is None or not 0 <= frac <= 1:
            raise ValueError(f"--split {text!r}: expected NAME=FRACTION[,NAME=FRACTION...] "
                             f"with fractions in [0, 1], got {piece!r}")
        parts.append((TRAIN_NAMES.get(name.strip().lower(), name.strip().lower()), frac))
    total = sum(f for _, f in parts)
    if total > 1 + 1e-9:
        raise ValueError(f"--split {text!r}: fractions sum to {total:g} > 1")
    if total < 1 - 1e-9:
        if any(n == "validation" for n, _ in parts):
            raise ValueError(f"--split {text!r}: fractions sum to {total:g}, not 1")
        parts.append(("validation", 1.0 - total))
    return parts


def assign_subsets(video_ids: Sequence[str], split: Sequence[Tuple[str, float]],
                   seed: int) -> Dict[str, str]:
    """Seeded split: sorted ids shuffled by ``random.Random(seed)``, then cut in order.

    Subset i gets ``round(fraction_i * n)`` videos (the last one the rest), so the counts do
    not depend on the seed and the same seed gives the same assignment.
    """
    ids = sorted(video_ids)
    random.Random(seed).shuffle(ids)
    out, pos = {}, 0
    for i, (name, frac) in enumerate(split):
        count = len(ids) - pos if i == len(split) - 1 else min(len(ids) - pos,
                                                                round(frac * len(ids)))
        for vid in ids[pos:pos + count]:
            out[vid] = name
        pos += count
    return out


def _resolve_video(name: str, videos: Mapping[str, str]) -> Optional[str]:
    if name in videos:
        return name
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in VIDEO_EXTS and stem in videos else None


Probe = Callable[[str], Any]  # path -> an object with duration_s and fps


def _probe_all(videos: Mapping[str, str], probe: Probe) -> Tuple[Dict[str, Tuple[float, float]],
                                                                  List[str]]:
    info, problems = {}, []
    for vid, path in videos.items():
        try:
            meta = probe(path)
            duration, fps = float(meta.duration_s), float(meta.fps)
        except (OSError, ValueError, RuntimeError, EOFError) as err:  # reported, all of them
            problems.append(f"{path}: cannot read the video: {err}")
            continue
        if not (duration > 0 and fps > 0 and math.isfinite(duration) and math.isfinite(fps)):
            problems.append(f"{path}: duration {duration:g} s / fps {fps:g} from the file; "
                            "expected positive numbers")
            continue
        info[vid] = (duration, fps)
    return info, problems


def _subsets(rows: Sequence[LabelRow], labelled: Sequence[str], has_subset: bool,
             split: Optional[Sequence[Tuple[str, float]]], seed: int, table: str
             ) -> Tuple[Dict[str, str], List[Tuple[int, str]]]:
    """Subset of every labelled video (from the table, a seeded split, or 'training')."""
    if has_subset and split is not None:
        raise ValueError(f"{table} has a subset column; drop --split or the column")
    if split is not None:
        return assign_subsets(labelled, split, seed), []
    if not has_subset:
        return {vid: "training" for vid in labelled}, []
    subsets: Dict[str, Tuple[str, int]] = {}
    problems = []
    for row in rows:
        vid = row.video
        if vid in subsets and subsets[vid][0] != row.subset:
            problems.append((row.line, f"video '{vid}' has subset '{row.subset}', but "
                                       f"'{subsets[vid][0]}' on line {subsets[vid][1]}"))
        subsets.setdefault(vid, (row.subset, row.line))
    return {vid: s for vid, (s, _) in subsets.items()}, problems


def _check_rows(rows: Sequence[LabelRow], videos: Mapping[str, str],
                info: Mapping[str, Tuple[float, float]], label_ids: Mapping[str, int]
                ) -> Tuple[List[LabelRow], List[Tuple[int, str]], int]:
    """Rows with their video id resolved; problems; number of ends clipped to the duration."""
    kept, problems, clipped = [], [], 0
    for row in rows:
        vid = _resolve_video(row.video, videos)
        if vid is None:
            problems.append((row.line, f"video '{row.video}' is not in the video folder"))
            continue
        if row.label not in label_ids:
            problems.append((row.line, f"label '{row.label}' is not in the class list"))
        if vid not in info:
            continue  # its file is reported as unreadable
        duration, fps = info[vid]
        end = row.end
        if row.start >= duration:
            problems.append((row.line, f"start {row.start:g} s is at or past the end of "
                                       f"'{vid}' ({duration:g} s)"))
        elif end > duration + 1.0 / fps:
            problems.append((row.line, f"end {end:g} s is past the end of '{vid}' "
                                       f"({duration:g} s)"))
        elif end > duration:
            end, clipped = duration, clipped + 1
        kept.append(LabelRow(row.line, vid, row.start, end, row.label, row.subset))
    return kept, problems, clipped


def build_annotations(table: str, video_dir: str, probe: Probe,
                      classes: Optional[Sequence[str]] = None,
                      split: Optional[Sequence[Tuple[str, float]]] = None, seed: int = 0,
                      unlabeled_subset: str = "unlabeled") -> Tuple[Dict[str, Any], List[str]]:
    """Builds the annotation JSON dict; returns (data, notes for the user).

    Args:
        table: CSV label table (see the module docstring).
        video_dir: folder of the video files.
        probe: path -> object with ``duration_s`` and ``fps`` (``libs.video.probe_video``).
        classes: class names in label-id order; default: the sorted label names of the table.
        split: ``parse_split`` output for a seeded split (only without a subset column).
        seed: seed of the split.
        unlabeled_subset: subset of the videos without rows.

    Raises:
        AnnotationTableError: every bad row and unreadable video, with line numbers / paths.
    """
    rows, has_subset, table_problems = parse_label_table(table)
    if unlabeled_subset.lower() == "training":
        raise ValueError("videos without labels cannot be training videos (the model needs "
                         "actions to train on); choose another --unlabeled-subset")
    videos = list_videos(video_dir)
    names = list(classes) if classes is not None else sorted({r.label for r in rows})
    label_ids = {name: i for i, name in enumerate(names)}
    info, problems = _probe_all(videos, probe)
    rows, row_problems, clipped = _check_rows(rows, videos, info, label_ids)
    labelled = sorted({r.video for r in rows})
    subsets, subset_problems = _subsets(rows, labelled, has_subset, split, seed, table)
    lines = sorted(table_problems + row_problems + subset_problems, key=lambda p: p[0])
    problems = [f"{table} line {line}: {msg}" for line, msg in lines] + problems
    if problems:
        raise AnnotationTableError(problems)
    database: Dict[str, Any] = {}
    for vid in sorted(videos):
        duration, fps = info[vid]
        database[vid] = {"subset": subsets.get(vid, unlabeled_subset.lower()),
                         "duration": duration, "fps": fps, "annotations": []}
    for row in rows:
        database[row.video]["annotations"].append(
            {"label": row.label, "label_id": label_ids[row.label],
             "segment": [row.start, row.end]})
    notes = _notes(database, names, len(rows), clipped, unlabeled_subset)
    return {"version": f"made by tools/make_annotations.py from {os.path.basename(table)}",
            "database": database}, notes


def _notes(database: Mapping[str, Any], names: Sequence[str], n_rows: int, clipped: int,
           unlabeled_subset: str) -> List[str]:
    counts: Dict[str, int] = {}
    for video in database.values():
        counts[video["subset"]] = counts.get(video["subset"], 0) + 1
    notes = [f"{len(database)} videos ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}"
             f"), {n_rows} actions, {len(names)} classes (label_id order: "
             f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''})"]
    if clipped:
        notes.append(f"{clipped} action end(s) less than one frame past the video's end were "
                     "clipped to the duration")
    unused = sorted(set(names) - {a["label"] for v in database.values()
                                  for a in v["annotations"]})
    if unused:
        notes.append(f"{len(unused)} class(es) of the class list have no action: "
                     f"{', '.join(unused[:5])}")
    train = {a["label"] for v in database.values() if v["subset"] == "training"
             for a in v["annotations"]}
    missing = sorted(set(names) - train - set(unused))
    if train and missing:
        notes.append(f"{len(missing)} class(es) have no training action: "
                     f"{', '.join(missing[:5])}")
    if counts.get(unlabeled_subset.lower()):
        notes.append(f"{counts[unlabeled_subset.lower()]} video(s) without labels are in "
                     f"subset '{unlabeled_subset.lower()}'")
    return notes
