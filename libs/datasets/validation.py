"""The annotation consistency rules, one implementation for the data sets (which refuse or
warn) and tools/check_dataset.py (which reports); docs/reliability.md says why each is which.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from libs.utils.cli import UserError

__all__ = ["DatasetError", "RULES", "Finding", "first_few", "structure_findings",
           "label_findings", "segment_findings", "validate_database", "enforce"]

ERROR, WARNING = "error", "warning"

# rule -> (severity, what the items have). Errors are what the original accepted silently
# while training and evaluation then disagree or break; warnings are what the original
# accepted and the published numbers depend on (real THUMOS14 has segments starting and
# ending after the video's duration), kept unchanged.
RULES: Dict[str, tuple] = {
    "malformed": (ERROR, "annotation(s) that are not an object with 'label', 'label_id' and "
                         "'segment'"),
    "bad_segment": (ERROR, "segment(s) that are not [start, end] in seconds (two finite "
                           "numbers)"),
    "label_ids": (ERROR, "label(s) with more than one label_id (training maps a label by its "
                         "name, evaluation reads the label_id)"),
    "shared_id": (ERROR, "label_id(s) shared by several labels"),
    "end_before_start": (ERROR, "segment(s) with end <= start (never a positive, zero length "
                                "in the crop ratio)"),
    "start_before_0": (WARNING, "segment(s) start before 0 s"),
    "start_after_end": (WARNING, "segment(s) start at or after the video's end (duration); "
                                 "kept unchanged, as the original keeps them"),
    "end_after_end": (WARNING, "segment(s) end after the video's duration; kept unchanged, "
                               "as the original keeps them"),
}

Annotations = Callable[[Mapping[str, Any]], Sequence[Mapping[str, Any]]]


class DatasetError(ValueError, UserError):
    """An annotation file or a feature file does not hold what the data set expects."""


def first_few(names: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` names, comma-separated, `` ...`` when there are more."""
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "")


@dataclass
class Finding:
    """One rule broken: its name and the offending items (video, segment, values)."""

    rule: str
    items: List[str] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return RULES[self.rule][0]

    def message(self, limit: int = 5) -> str:
        return f"{len(self.items)} {RULES[self.rule][1]}: {first_few(self.items, limit)}"


def _raw(video: Mapping[str, Any]) -> List[Any]:
    return list(video.get("annotations") or []) if isinstance(video, Mapping) else []


def _is_pair(seg: Any) -> bool:
    return (isinstance(seg, (list, tuple)) and len(seg) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                    and math.isfinite(x) for x in seg))


def _collect(found: Dict[str, List[str]]) -> List[Finding]:
    return [Finding(rule, items) for rule, items in found.items() if items]


def structure_findings(database: Mapping[str, Any]) -> List[Finding]:
    """Annotations that are not ``{label, label_id, segment}`` or whose segment is not two
    finite numbers (every video of every subset: the label dictionary reads them all)."""
    found: Dict[str, List[str]] = {"malformed": [], "bad_segment": []}
    for vid, video in database.items():
        for i, act in enumerate(_raw(video)):
            if not isinstance(act, Mapping) or not {"label", "label_id", "segment"} <= set(act):
                found["malformed"].append(f"'{vid}' annotation {i}")
            elif not _is_pair(act["segment"]):
                found["bad_segment"].append(f"'{vid}' segment {i} {act['segment']!r}")
    return _collect(found)


def label_findings(database: Mapping[str, Any]) -> List[Finding]:
    """A label with several ``label_id`` values, or an id used by several labels (all
    videos of all subsets, in JSON order; the first occurrence of each pair is named)."""
    first_of: Dict[tuple, str] = {}
    for vid, video in database.items():
        for i, act in enumerate(_raw(video)):
            key = (act["label"], act["label_id"])
            first_of.setdefault(key, f"'{vid}' segment {i}")
    ids: Dict[Any, List[Any]] = {}
    labels: Dict[Any, List[Any]] = {}
    for label, label_id in first_of:
        ids.setdefault(label, []).append(label_id)
        labels.setdefault(label_id, []).append(label)
    found: Dict[str, List[str]] = {
        "label_ids": [f"'{label}' -> {sorted(v, key=str)} (label_id {v[1]!r} first in "
                      f"{first_of[(label, v[1])]})" for label, v in ids.items() if len(v) > 1],
        "shared_id": [f"{i!r} -> {sorted(map(str, v))} ('{v[1]}' first in "
                      f"{first_of[(v[1], i)]})" for i, v in labels.items() if len(v) > 1]}
    return _collect(found)


def segment_findings(vid: str, raw: Sequence[Any], used: Sequence[Mapping[str, Any]],
                     duration: Optional[float], found: Dict[str, List[str]]) -> None:
    """Adds the segment-rule items of one video to ``found`` (rule -> items).

    ``raw`` are the JSON annotations (for the index named), ``used`` those the data set
    keeps (ActivityNet drops duplicates and segments shorter than 1 ms first).
    """
    index = {id(act): i for i, act in enumerate(raw)}
    for act in used:
        start, end = float(act["segment"][0]), float(act["segment"][1])
        item = f"'{vid}' segment {index.get(id(act), '?')} [{start:g}, {end:g}]"
        if end <= start:
            found["end_before_start"].append(item)
        if start < 0:
            found["start_before_0"].append(item)
        if duration is not None and start >= duration:
            found["start_after_end"].append(f"{item} (duration {duration:g})")
        elif duration is not None and end > duration:
            found["end_after_end"].append(f"{item} (duration {duration:g})")


def validate_database(database: Mapping[str, Any], split: Optional[Iterable[str]] = None,
                      annotations: Optional[Annotations] = None) -> List[Finding]:
    """All rules: structure and labels over every video, segments over the videos of
    ``split`` (names compared with the lower-cased ``subset``; None: all) as ``annotations(video)`` returns them.

    Structure errors are returned alone (the other rules cannot read such annotations).
    """
    findings = structure_findings(database)
    if findings:
        return findings
    findings = label_findings(database)
    keep = None if split is None else set(split)
    found: Dict[str, List[str]] = {r: [] for r in ("end_before_start", "start_before_0",
                                                   "start_after_end", "end_after_end")}
    for vid, video in database.items():
        if not isinstance(video, Mapping):
            continue
        if keep is not None and str(video.get("subset", "")).lower() not in keep:
            continue
        used = annotations(video) if annotations is not None else _raw(video)
        duration = video.get("duration")
        duration = float(duration) if isinstance(duration, (int, float)) else None
        segment_findings(vid, _raw(video), used, duration, found)
    return findings + _collect(found)


def enforce(findings: Sequence[Finding], source: str, stacklevel: int = 2) -> None:
    """Raises one :class:`DatasetError` listing every error finding; warns once per warning
    rule. Messages start with ``source`` (the annotation file)."""
    errors = [f.message() for f in findings if f.severity == ERROR]
    if errors:
        raise DatasetError(f"{source}: " + "; ".join(errors))
    for finding in findings:
        warnings.warn(f"{source}: {finding.message()}", UserWarning, stacklevel=stacklevel + 1)
