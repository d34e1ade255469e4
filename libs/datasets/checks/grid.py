"""Grid checks of a data-set check: sequence lengths vs max_seq_len, actions vs regression ranges.

docs/reference.md §2.5 (grid units), §3.10 (padding), §4.1 (regression ranges).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Dict, List

import numpy as np

from ...core import max_div_factor
from .report import Report, first_ids

Videos = Dict[str, Dict[str, Any]]


def check_grid(rep: Report, cfg: Dict[str, Any], videos: Videos,
               lengths: Dict[str, int]) -> None:
    """Sequence lengths vs max_seq_len, and action lengths vs the regression ranges."""
    _check_sequence_lengths(rep, cfg, videos, lengths)
    _check_action_levels(rep, cfg, videos, lengths)


def _upsampled(cfg: Dict[str, Any]) -> bool:
    return cfg["dataset_name"] == "anet" and cfg["dataset"]["force_upsampling"]


def _check_sequence_lengths(rep: Report, cfg: Dict[str, Any], videos: Videos,
                            lengths: Dict[str, int]) -> None:
    """How many training videos are cropped, how inference pads, the point buffer."""
    ds, model = cfg["dataset"], cfg["model"]
    sec = "sequence lengths"
    max_len, rate = ds["max_seq_len"], ds["downsample_rate"]
    div = max_div_factor(model)
    buffer_len = max_len * model["max_buffer_len_factor"]
    rep.info(sec, f"max_seq_len {max_len}, max_div_factor {div}, point buffer "
             f"{buffer_len:g} (max_seq_len * max_buffer_len_factor)")
    if _upsampled(cfg):
        rep.info(sec, f"anet force_upsampling: every video is resized to {max_len} steps")
        longer = [v for v, t in lengths.items() if t > max_len]
        if ds["feat_stride"] <= 0 and longer:
            rep.error(sec, f"{len(longer)} video(s) have more fixed-length features than "
                      f"max_seq_len {max_len}: {first_ids(longer)}")
        return
    grid_len = {v: math.ceil(t / rate) for v, t in lengths.items()}
    tr = [v for v in grid_len if videos[v]["subset"] in set(cfg["train_split"])]
    cropped = [v for v in tr if grid_len[v] > max_len]
    if tr:
        pct = 100.0 * len(cropped) / len(tr)
        line = (f"training: {len(cropped)} of {len(tr)} videos ({pct:.0f}%) are longer "
                f"than max_seq_len and randomly cropped to it each epoch")
        (rep.warn if pct > 50 else rep.info)(sec, line + (
            "; consider a larger max_seq_len" if pct > 50 else ""))
    ev = [v for v in grid_len if videos[v]["subset"] in set(cfg["val_split"])]
    padded = {v: max_len if grid_len[v] <= max_len else
              math.ceil(grid_len[v] / div) * div for v in ev}
    if ev:
        n_long = sum(1 for v in ev if grid_len[v] > max_len)
        rep.info(sec, f"inference: {len(ev) - n_long} videos padded to {max_len}, {n_long} "
                 f"longer ones padded to a multiple of {div} (up to {max(padded.values())})")
    over = [f"{v} (T {grid_len[v]} -> {p})" for v, p in padded.items() if p > buffer_len]
    if over:
        rep.error(sec, f"{len(over)} evaluation video(s) are longer than the point buffer "
                  f"{buffer_len:g}; raise model.max_buffer_len_factor: {first_ids(over)}")


def _grid_stride(cfg: Dict[str, Any], vid: str, video: Dict[str, Any],
                 lengths: Dict[str, int]):
    """(frames per grid step, centre offset in grid steps) of a video; None if unknown."""
    ds = cfg["dataset"]
    max_len = ds["max_seq_len"]
    if not _upsampled(cfg):
        stride = ds["feat_stride"] * ds["downsample_rate"]
        return stride, 0.5 * ds["num_frames"] / stride
    if vid not in lengths or ds["feat_stride"] <= 0:
        if video["duration"] is None:
            return None
        return float(video["duration"]) * float(video["fps"]) / max_len, 0.5
    return ((lengths[vid] - 1) * ds["feat_stride"] + ds["num_frames"]) / max_len, 0.5


def _action_warnings(rep: Report, sec: str, cfg: Dict[str, Any],
                     found: Dict[str, List[str]]) -> None:
    """The warnings about actions no level, or no crop, can hold."""
    ds, ranges = cfg["dataset"], cfg["model"]["regression_range"]
    texts = {
        "no_level": "fall in no regression range (half their length is outside every "
                    "[lo, hi]) and can never be positives",
        "too_long": f"are longer than the largest regression range's upper bound "
                    f"{ranges[-1][1]} grid steps",
        "too_short": "are shorter than one feature step (the finest level, stride 1) and may "
                     "get no positive point",
    }
    for key, text in texts.items():
        if found[key]:
            rep.warn(sec, f"{len(found[key])} action(s) {text}: "
                     f"{first_ids(sorted(set(found[key])))}")
    if found["lost"]:
        rep.warn(sec, f"{len(found['lost'])} training action(s) are so long that trunc_thresh "
                 f"{ds['trunc_thresh']} of them never fits in max_seq_len {ds['max_seq_len']}; "
                 f"they are dropped whenever their video is cropped: "
                 f"{first_ids(sorted(set(found['lost'])))}")


def _check_action_levels(rep: Report, cfg: Dict[str, Any], videos: Videos,
                         lengths: Dict[str, int]) -> None:
    """Actions in grid units (§2.5): the pyramid level each falls on (§4.1)."""
    ds, model = cfg["dataset"], cfg["model"]
    sec = "actions vs regression ranges"
    ranges, train, upsample = model["regression_range"], set(cfg["train_split"]), _upsampled(cfg)
    per_level: Counter = Counter()
    lengths_grid: List[float] = []
    found: Dict[str, List[str]] = {k: [] for k in ("no_level", "too_long", "too_short", "lost")}
    for vid, video in videos.items():
        if video["fps"] is None or not video["segments"]:
            continue
        grid = _grid_stride(cfg, vid, video, lengths)
        if grid is None:
            continue
        stride, offset = grid
        for start, end in video["segments"]:
            length = (end - start) * float(video["fps"]) / stride
            if length <= 0:
                continue
            lengths_grid.append(length)
            half = length / 2.0  # the centre point's regression target max(left, right)
            level = next((i for i, (lo, hi) in enumerate(ranges) if lo <= half <= hi), None)
            if level is None:
                found["no_level"].append(vid)
            else:
                per_level[level] += 1
            if length > ranges[-1][1]:
                found["too_long"].append(vid)
            if length < 1.0:
                found["too_short"].append(vid)
            if (video["subset"] in train and not upsample
                    and ds["trunc_thresh"] * length > ds["max_seq_len"] + 2 * offset):
                found["lost"].append(vid)
    if not lengths_grid:
        rep.info(sec, "no actions in the checked splits")
        return
    g = np.array(lengths_grid)
    rep.info(sec, f"{len(g)} actions, length in grid steps: min {g.min():.2f}, median "
             f"{np.median(g):.1f}, max {g.max():.1f}")
    strides = [model["scale_factor"] ** i
               for i in range(model["fpn_start_level"], model["backbone_arch"][-1] + 1)]
    for i, ((lo, hi), s) in enumerate(zip(ranges, strides)):
        rep.info(sec, f"level {i} (stride {s}, range [{lo}, {hi}]): {per_level[i]} actions")
    _action_warnings(rep, sec, cfg, found)
