"""Reading the evaluator's inputs: ground-truth and prediction JSON files, GT clean-up
(docs/reference.md §6.1), and prediction columns from a DataFrame, a dict or a file.

Bad input raises one clear error naming the file, the video or the key and what was expected.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import pandas as pd

from libs.utils.annotations import remove_duplicate_annotations

__all__ = ["PRED_COLUMNS", "load_gt_seg_from_json", "load_pred_seg_from_json", "read_gt_rows",
           "label_names", "prediction_columns", "is_string_array"]

PRED_COLUMNS = ("video-id", "t-start", "t-end", "label", "score")


def _read_json(json_file: str, what: str) -> Any:
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"{what} file not found: '{json_file}'")
    with open(json_file, "r", encoding="utf8") as f:
        return json.load(f)


def _event_label(event: Mapping[str, Any], label: str, label_offset: int, where: str) -> Any:
    """Integer label of one event, as the original builds it."""
    if label not in event:
        raise KeyError(f"{where}: event {dict(event)} has no '{label}' field")
    value = event[label]
    if isinstance(value, (tuple, list)):
        # Quirk replicated on purpose (docs/reference.md §6.1, §9 item 21; STYLE.md §3.7): the
        # original adds ``label_offset**i`` where a mixed-radix id (multiplication) was
        # probably meant. No shipped config uses list labels; conformance decides, so we keep it.
        label_id = 0
        for i, x in enumerate(value[::-1]):
            label_id += label_offset ** i + int(x)
        return label_id
    return int(value)


def _database(json_db: Any, json_file: str) -> Mapping[str, Any]:
    if not isinstance(json_db, Mapping) or "database" not in json_db:
        raise KeyError(f"'{json_file}' has no top-level 'database' key")
    return json_db["database"]


def read_gt_rows(json_file: str, split: Optional[str], label: str, label_offset: int,
                 dedup: bool, names: bool = False) -> Tuple[pd.DataFrame, List[str]]:
    """GT rows of one split (de-duplicated when ``dedup``; class names instead of ids when
    ``names``) plus the sorted list of subsets present in the file."""
    database = _database(_read_json(json_file, "ground-truth annotation"), json_file)
    vids: List[str] = []
    starts: List[float] = []
    stops: List[float] = []
    labels: List[Any] = []
    subsets = set()
    for vid, info in database.items():
        subset = info.get("subset")
        subsets.add(str(subset))
        # same filter as the original: the JSON side is lower-cased, `split` is not
        if split is not None and str(subset).lower() != split:
            continue
        if "annotations" not in info:
            raise KeyError(f"'{json_file}': video '{vid}' has no 'annotations' key")
        ants = info["annotations"]
        if dedup:
            ants = remove_duplicate_annotations(ants)
        where = f"'{json_file}', video '{vid}'"
        for event in ants:
            seg = event["segment"]
            vids.append(vid)
            starts.append(float(seg[0]))
            stops.append(float(seg[1]))
            if names:
                if "label" not in event:
                    raise KeyError(f"{where}: event {dict(event)} has no 'label' field")
                labels.append(event["label"])
            else:
                labels.append(_event_label(event, label, label_offset, where))
    gt = pd.DataFrame({"video-id": vids, "t-start": starts, "t-end": stops, "label": labels})
    return gt, sorted(subsets)


def load_gt_seg_from_json(json_file: str, split: Optional[str] = None, label: str = "label_id",
                          label_offset: int = 0) -> pd.DataFrame:
    """Reads the GT segments of one split (docs/reference.md §6.1).

    Every video whose ``subset.lower() == split`` (all videos when ``split`` is None) is read;
    its ``annotations`` are de-duplicated with ``remove_duplicate_annotations`` and emitted one
    row per event, in file order.

    Args:
        json_file: ActivityNet-style annotation JSON (``{"database": {vid: {...}}}``).
        split: subset name in lower case (e.g. ``'test'``, ``'validation'``), or None for all.
        label: event field holding the integer class id.
        label_offset: only used by the (quirky) list-label branch, see ``_event_label``.

    Returns:
        DataFrame with columns ``video-id`` (str), ``t-start``, ``t-end`` (float64), ``label``
        (int), N rows.

    Raises:
        FileNotFoundError: the file does not exist.
        KeyError: no ``database`` key, a selected video without ``annotations``, or an event
            without the label field.
    """
    gt, _ = read_gt_rows(json_file, split, label, label_offset, dedup=True)
    return gt


def load_pred_seg_from_json(json_file: str, label: str = "label_id",
                            label_offset: int = 0) -> pd.DataFrame:
    """Reads predictions ``{"database": {vid: [{segment, <label>, scores}, ...]}}`` (§6.1).

    Note the per-event key ``scores`` (plural), as in the original (§9 item 21).

    Returns:
        DataFrame with columns ``video-id, t-start, t-end, label, score``.
    """
    database = _database(_read_json(json_file, "prediction"), json_file)
    rows: Dict[str, List[Any]] = {k: [] for k in PRED_COLUMNS}
    for vid, events in database.items():
        where = f"'{json_file}', video '{vid}'"
        for event in events:
            if "scores" not in event:
                raise KeyError(f"{where}: prediction {dict(event)} has no 'scores' field")
            rows["video-id"].append(vid)
            rows["t-start"].append(float(event["segment"][0]))
            rows["t-end"].append(float(event["segment"][1]))
            rows["label"].append(_event_label(event, label, label_offset, where))
            rows["score"].append(float(event["scores"]))
    return pd.DataFrame(rows)


def label_names(ant_file: str, label: str) -> Dict[int, str]:
    """``label_id -> name`` over the whole JSON (translates model outputs to names)."""
    table: Dict[int, str] = {}
    database = _database(_read_json(ant_file, "ground-truth annotation"), ant_file)
    for info in database.values():
        for event in info.get("annotations", []):
            if "label" in event and label in event:
                try:
                    table.setdefault(int(event[label]), event["label"])
                except (TypeError, ValueError):
                    pass
    return table


def prediction_columns(preds: Any) -> Dict[str, np.ndarray]:
    """The five ``PRED_COLUMNS`` as flat arrays (video ids as objects, boundaries and scores
    as float64) from a DataFrame, a dict of columns or a prediction JSON path.

    Raises:
        KeyError: a missing column / key; FileNotFoundError: a missing file; TypeError: another
        type; ValueError: columns of different lengths, non-numeric or NaN values (naming the
        video).
    """
    if isinstance(preds, str):
        if not os.path.isfile(preds):
            raise FileNotFoundError(f"prediction file not found: '{preds}'")
        preds = load_pred_seg_from_json(preds)
    if isinstance(preds, pd.DataFrame):
        missing = [k for k in PRED_COLUMNS if k not in preds.columns]
        if missing:
            raise KeyError(f"prediction DataFrame lacks column(s) {missing}; "
                           f"expected {list(PRED_COLUMNS)}")
        cols = {k: preds[k].to_numpy() for k in PRED_COLUMNS}
    elif isinstance(preds, Mapping):
        missing = [k for k in PRED_COLUMNS if k not in preds]
        if missing:
            raise KeyError(f"prediction dict lacks key(s) {missing}; "
                           f"expected {list(PRED_COLUMNS)}")
        cols = {k: _to_numpy(preds[k]) for k in PRED_COLUMNS}
    else:
        raise TypeError("preds must be a DataFrame, a JSON file path or a dict with keys "
                        f"{list(PRED_COLUMNS)}, got {type(preds).__name__}")
    sizes = {k: int(np.asarray(v).reshape(-1).size) for k, v in cols.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"prediction columns have different lengths: {sizes}")
    out = {k: np.asarray(v).reshape(-1) for k, v in cols.items()}
    out["video-id"] = out["video-id"].astype(object)
    for k in ("t-start", "t-end", "score"):
        out[k] = _float_column(out[k], k, out["video-id"])
    return out


def _float_column(values: np.ndarray, key: str, vids: np.ndarray) -> np.ndarray:
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"prediction column '{key}' is not numeric: {err}") from None
    bad = np.nonzero(np.isnan(values))[0]
    if bad.size:
        raise ValueError(f"prediction '{key}' is NaN for video '{vids[bad[0]]}' (row {bad[0]}; "
                         f"{bad.size} NaN row(s) in total)")
    return values


def _to_numpy(values: Any) -> np.ndarray:
    """Lists, NumPy arrays and tensors (via ``.tolist()`` like the original) to NumPy."""
    if isinstance(values, np.ndarray):
        return values
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor
        return np.asarray(values.detach().cpu().tolist())
    if isinstance(values, (list, tuple)):
        return np.asarray(values, dtype=object if values and isinstance(values[0], str)
                          else None)
    return np.asarray(values)


def is_string_array(values: np.ndarray) -> bool:
    """True for a string array or an object array whose first element is a string."""
    if values.dtype.kind in "US":
        return True
    return values.dtype == object and values.size > 0 and isinstance(values[0], str)
