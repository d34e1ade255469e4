"""External classification-score fusion for class-agnostic proposals (ActivityNet).

Behaviour: docs/reference.md §5.5 (``postprocess_results``), used by ``valid_one_epoch`` (§7.4) when
the config names an ``ext_score_file``. The model (``num_classes = 1``) yields class-agnostic
segments; each video's top-``topk`` classes of an external video-level classifier are combined
with its first ``num_pred`` segments, score ``sqrt(cls_score * det_score)``. Sorting uses the
original's ``np.argsort(x)[::-1]`` calls on the same float64 arrays, so ties fall the same way
(§9 item 33).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Union

import numpy as np

from libs.utils.safe_pickle import safe_load

__all__ = ["postprocess_results", "load_results_from_pkl", "load_results_from_json",
           "load_results_from_npz", "load_score_file", "results_to_array"]


def load_results_from_pkl(filename: str) -> Any:
    """Unpickles a results dict (or external score table) with the restricted unpickler:
    plain containers and NumPy arrays only (``libs.utils.safe_pickle``), so the file cannot
    run code."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"results file not found: '{filename}'")
    return safe_load(filename)


def load_results_from_npz(filename: str) -> Dict[str, np.ndarray]:
    """Reads a ``.npz`` score table (one array per video id; object arrays are refused)."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"external score file not found: '{filename}'")
    try:
        with np.load(filename, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as err:
        raise ValueError(f"{filename}: cannot read the score table ({err}; expected numeric "
                         "arrays named by video id)") from None


def load_score_file(filename: str) -> Any:
    """An external score table by extension: ``*.json``, ``*.npz``, else a (safe) pickle."""
    if ".json" in filename:
        return load_results_from_json(filename)
    if filename.endswith(".npz"):
        return load_results_from_npz(filename)
    return load_results_from_pkl(filename)


def load_results_from_json(filename: str) -> Any:
    """Reads a JSON score table; a top-level ``results`` dict (CUHK format) is unwrapped."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"external score file not found: '{filename}'")
    with open(filename, "r", encoding="utf8") as f:
        try:
            results = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{filename}: malformed JSON at line {err.lineno}, column "
                             f"{err.colno}: {err.msg}") from None
    if isinstance(results, Mapping) and "results" in results:
        results = results["results"]
    return results


def results_to_array(results: Mapping[str, Any], num_pred: int) -> Dict[str, Dict[str, Any]]:
    """Groups flat results by video (sorted ids); keeps each video's ``num_pred`` best.

    Args:
        results: flat dict ``video-id`` (N ids), ``t-start``, ``t-end``, ``label``, ``score``
            (N values each).
        num_pred: detections kept per video.

    Returns:
        ``{video_id: {'label': (M,) int64, 'score': (M,) float64, 'segment': (M, 2) float64}}``
        with ``M = min(num_pred, #detections of the video)``, ordered by
        ``np.argsort(score)[::-1]`` over the video's scores in input order.
    """
    for key in ("video-id", "t-start", "t-end", "label", "score"):
        if key not in results:
            raise KeyError(f"results dict lacks key '{key}'")
    vids = list(results["video-id"])
    starts = np.asarray(results["t-start"], dtype=np.float64).reshape(-1)
    ends = np.asarray(results["t-end"], dtype=np.float64).reshape(-1)
    labels = np.asarray(results["label"]).reshape(-1).astype(np.int64)
    scores = np.asarray(results["score"], dtype=np.float64).reshape(-1)
    if not len(vids) == starts.size == ends.size == labels.size == scores.size:
        raise ValueError("results columns have different lengths: "
                         f"video-id {len(vids)}, t-start {starts.size}, t-end {ends.size}, "
                         f"label {labels.size}, score {scores.size}")
    order = sorted(set(vids))
    code = {vid: i for i, vid in enumerate(order)}
    codes = np.fromiter((code[v] for v in vids), dtype=np.int64, count=len(vids))
    by_video = np.argsort(codes, kind="stable")  # input order inside each video
    bounds = np.searchsorted(codes[by_video], np.arange(len(order) + 1))
    grouped: Dict[str, Dict[str, Any]] = {}
    for i, vid in enumerate(order):
        rows = by_video[bounds[i]:bounds[i + 1]]
        keep = rows[np.argsort(scores[rows])[::-1][:num_pred]]
        grouped[vid] = {"label": labels[keep], "score": scores[keep],
                        "segment": np.stack([starts[keep], ends[keep]], axis=1)}
    return grouped


def postprocess_results(results: Union[str, Mapping[str, Any]], cls_score_file: str,
                        num_pred: int = 200, topk: int = 2) -> Dict[str, Any]:
    """Fuses class-agnostic detections with external video-level class scores (§5.5).

    For each video (sorted ids): ``idx = argsort(cls)[::-1][:topk]``; with the video's
    ``M = min(num_pred, N_v)`` best detections the output has ``K * M`` rows in k-major order:
    score ``sqrt(cls[idx[k]] * score[m])``, segment ``m``, label ``idx[k]``. The detections'
    own labels are discarded.

    Args:
        results: flat results dict (§7.4) or the path of a pickle of one (read safely).
        cls_score_file: ``*.json`` (optionally ``{"results": {...}}``), ``*.npz`` or pickle
            (read with the restricted unpickler) mapping ``video_id -> (K_cls,) class
            scores``; the index is the ``label_id``.
        num_pred: detections kept per video.
        topk: classes kept per video.

    Returns:
        Flat dict: ``video-id`` (list), ``t-start``, ``t-end`` (float64), ``label`` (int64),
        ``score`` (float64) arrays.

    Raises:
        KeyError: a video of ``results`` has no entry in the score file.
    """
    if isinstance(results, str):
        results = load_results_from_pkl(results)
    grouped = results_to_array(results, num_pred)
    cls_scores = load_score_file(cls_score_file)
    if not isinstance(cls_scores, Mapping):
        raise ValueError(f"{cls_score_file}: expected a mapping video id -> class scores, "
                         f"found {type(cls_scores).__name__}")

    out_vids: List[str] = []
    starts: List[np.ndarray] = []
    ends: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    scores: List[np.ndarray] = []
    for vid, res in grouped.items():
        if vid not in cls_scores:
            raise KeyError(f"video '{vid}' has no class scores in '{cls_score_file}'")
        video_scores = np.asarray(cls_scores[vid], dtype=np.float64).reshape(-1)
        idx = np.argsort(video_scores)[::-1][:topk]
        cs = video_scores[idx]
        n_seg = res["score"].size
        # (K, 1) x (1, M) outer product of single multiplications, k-major
        new_score = np.sqrt(cs[:, None] * res["score"][None, :]).reshape(-1)
        segs = np.tile(res["segment"], (idx.size, 1))
        out_vids += [vid] * (n_seg * idx.size)
        starts.append(segs[:, 0])
        ends.append(segs[:, 1])
        labels.append(np.repeat(idx.astype(np.int64), n_seg))
        scores.append(new_score)

    def cat(parts: List[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return {"video-id": out_vids, "t-start": cat(starts, np.float64),
            "t-end": cat(ends, np.float64), "label": cat(labels, np.int64),
            "score": cat(scores, np.float64)}
