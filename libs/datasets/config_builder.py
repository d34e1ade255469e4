"""The rules that turn data statistics into a config, each value with its reason (make_config).

Two layouts (docs/own_videos.md states every rule and compares the results with the shipped
THUMOS14, EPIC-Kitchens-100 and ActivityNet 1.3 configs):

* ``per-video`` (THUMOS / EPIC style, dataset ``thumos``): each video keeps its length; long
  ones are cropped to ``max_seq_len`` in training, evaluated whole (windows beyond the buffers);
* ``resize`` (ActivityNet style, dataset ``anet`` + ``force_upsampling``): every video is
  resized to ``max_seq_len`` steps. ``auto`` picks it when the median action covers at least
  ``RESIZE_REL_LEN`` of its video (ActivityNet 1.3: 0.32; THUMOS14: 0.010; EPIC: 0.004).

Values that no statistic of the annotations determines (optimiser, center sampling, score
thresholds) are the shipped config's of the closest regime, and the comment says so.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

import numpy as np

from .config_stats import DataStats, Entry, FeatureGrid, div_factor

__all__ = ["derive_config", "RESIZE_REL_LEN", "SHORT_ACTION_STEPS", "LENGTH_PERCENTILE"]

RESIZE_REL_LEN = 0.1      # median action / video duration from which videos are resized
SHORT_ACTION_STEPS = 8.0  # median action (steps) below which actions are "short" (EPIC-like)
LENGTH_PERCENTILE = 80    # max_seq_len covers this percentile of the training videos
MIN_STEPS_RESIZED = 3.0   # resize: the 5th-percentile action spans at least this many steps
MIN_LEVELS = 3            # fewest pyramid levels for short videos
POSITIVES_PER_ACTION = 3  # center sampling, radius 1.5 strides: ~3 positive points per level


def _round_up(x: float, unit: int) -> int:
    return int(math.ceil(x / unit) * unit)


def _ranges(levels: int, overlapping: bool) -> List[List[int]]:
    """Default ranges [0,4] [4,8] ... [4 * 2^(L-2), 10000]; overlapping (EPIC / Ego4D):
    [0,4] [2,8] [4,16] ... [2^(L-1), 10000] (an action trains two levels)."""
    if overlapping:
        mid = [[2 ** lv, 2 ** (lv + 2)] for lv in range(1, levels - 1)]
        return [[0, 4]] + mid + [[2 ** (levels - 1), 10000]]
    mid = [[4 * 2 ** (lv - 1), 4 * 2 ** lv] for lv in range(1, levels - 1)]
    return [[0, 4]] + mid + [[4 * 2 ** (levels - 2), 10000]]


def _levels(half_p99: float) -> int:
    """6 levels (the paper's pyramid), more (up to 8, as Ego4D) while the 99th-percentile
    action's half length is beyond the second-to-last level's range."""
    levels = 6
    while levels < 8 and half_p99 > 4 * 2 ** (levels - 2):
        levels += 1
    return levels


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q))


def _per_video_dataset(stats: DataStats, grid: FeatureGrid) -> Entry:
    """'thumos' (.npy, every class occurs), else 'epic' (.npz; unused ids get no positives)."""
    if stats.num_labels == stats.num_classes:
        return Entry("", "dataset_name", "thumos", "one .npy per video at its own length")
    if grid.file_ext == ".npz":
        unused = stats.num_classes - stats.num_labels
        return Entry("", "dataset_name", "epic", f"one .npz per video; {unused} of the "
                     f"{stats.num_classes} class ids have no action (the epic loader allows it)")
    raise ValueError(f"only {stats.num_labels} of the {stats.num_classes} class ids have an "
                     "action; the loader of .npy features needs every class to occur: drop the "
                     "unused classes from the class list (tools/make_annotations.py --classes)")


def _per_video_numbers(stats: DataStats) -> Dict[str, Any]:
    """The statistics the per-video rules read, and the values they give."""
    n: Dict[str, Any] = {"med": float(np.median(stats.action_steps))}
    n["short"] = n["med"] < SHORT_ACTION_STEPS
    # smallest odd number >= the median (1e-9: float noise of seconds * fps / stride)
    n["win"] = int(min(19, max(9, 2 * math.ceil((n["med"] - 1) / 2 - 1e-9) + 1)))
    n["half_p99"] = _pct(stats.action_steps, 99) / 2
    n["p_len"] = _pct(stats.train_lengths, LENGTH_PERCENTILE)
    n["levels"] = n["wanted_levels"] = _levels(n["half_p99"])
    # the pyramid the videos allow: fewer levels (not below MIN_LEVELS) while one
    # max_div_factor would be longer than the videos (mostly padding)
    while n["levels"] > MIN_LEVELS and div_factor([n["win"]] * n["levels"],
                                                  n["levels"]) > n["p_len"]:
        n["levels"] -= 1
    n["div"] = div = div_factor([n["win"]] * n["levels"], n["levels"])
    n["max_len"] = max_len = max(div, _round_up(n["p_len"], div))
    n["longest"] = float(stats.eval_lengths.max()) if stats.eval_lengths.size else max_len
    n["factor"] = max(1.0, 1.0 * math.ceil(max(max_len, _round_up(n["longest"], div))
                                           / max_len))
    crop = np.minimum(1.0, max_len / np.maximum(stats.train_lengths, 1))
    n["per_crop"] = float(np.mean(stats.train_actions * crop))
    n["points"] = POSITIVES_PER_ACTION * (2 if n["short"] else 1)
    n["init_norm"] = max(50, int(round(n["per_crop"] * n["points"] * 2 / 50.0)) * 50)
    n["dense"] = int(stats.eval_actions.max()) if stats.eval_actions.size else 100
    n["max_seg"] = int(min(2000, max(100, _round_up(n["dense"], 100))))
    n["topk"] = max(2000, _round_up(2.5 * n["max_seg"], 1000))
    return n


def per_video_entries(stats: DataStats, grid: FeatureGrid, common: List[Entry]) -> List[Entry]:
    """Rules of the per-video layout (THUMOS / EPIC style)."""
    n = _per_video_numbers(stats)
    med, short, div, levels = n["med"], n["short"], n["div"], n["levels"]
    regime = (f"short actions (median {med:.1f} steps < {SHORT_ACTION_STEPS:g}: EPIC-like)"
              if short else f"median action {med:.1f} steps (THUMOS-like)")
    return common + [
        _per_video_dataset(stats, grid),
        Entry("dataset", "trunc_thresh", 0.3 if short else 0.5,
              f"{regime}: EPIC's 0.3 keeps more cut actions" if short else
              "THUMOS's value: an action must keep half its length in a crop"),
        Entry("dataset", "crop_ratio", [0.9, 1.0], "random crops of 90-100 % (all shipped "
              "configs)"),
        Entry("dataset", "max_seq_len", n["max_len"],
              f"covers {LENGTH_PERCENTILE} % of the training videos ({n['p_len']:.0f} steps), "
              f"rounded up to a multiple of max_div_factor {div}"),
        Entry("model", "backbone_arch", [2, 2, levels - 1],
              f"{levels} pyramid levels (strides 1..{2 ** (levels - 1)}): the 99th-percentile "
              f"action's half length is {n['half_p99']:.1f} steps" + (
                  "" if levels == n["wanted_levels"] else
                  f"; {n['wanted_levels']} levels would need max_seq_len a multiple of "
                  f"{div_factor([n['win']] * n['wanted_levels'], n['wanted_levels'])}, "
                  f"longer than most videos ({n['p_len']:.0f} steps)")),
        Entry("model", "regression_range", _ranges(levels, overlapping=short),
              f"{regime}: " + ("overlapping ranges train each action on two levels (EPIC)"
                               if short else "the paper's ranges, one level per action")),
        Entry("model", "n_mha_win_size", n["win"],
              f"odd window >= the median action ({med:.1f} steps), kept in [9, 19] (the "
              "values tuned for EPIC and THUMOS)"),
        Entry("model", "max_buffer_len_factor", n["factor"],
              f"the longest evaluation video ({n['longest']:.0f} steps, padded to a multiple of "
              f"{div}) runs whole; longer ones go through windows"),
        Entry("opt", "learning_rate", 0.0001, "THUMOS recipe (not derived)"),
        Entry("opt", "epochs", 30, "THUMOS recipe (not derived), plus 5 warmup epochs"),
        Entry("opt", "weight_decay", 0.05, "all shipped configs"),
        Entry("loader", "batch_size", 2, "THUMOS / EPIC value"),
        Entry("train_cfg", "init_loss_norm", n["init_norm"],
              f"start of the positives EMA: {n['per_crop']:.1f} actions per crop x "
              f"{n['points']} points x batch 2 (it adapts within ~20 iterations)"),
        Entry("train_cfg", "clip_grad_l2norm", 1.0, "all shipped configs"),
        Entry("train_cfg", "center_sample_radius", 1.5, "all shipped configs"),
        Entry("test_cfg", "voting_thresh", 0.75 if short else 0.7,
              "EPIC's (default) value" if short else "THUMOS's value"),
        Entry("test_cfg", "nms_sigma", 0.4 if short else 0.5,
              "EPIC's value for dense actions" if short else "THUMOS's (default) value"),
        Entry("test_cfg", "max_seg_num", n["max_seg"],
              f"room for every action of the densest evaluation video ({n['dense']})"),
        Entry("test_cfg", "pre_nms_topk", n["topk"], "per level, >= 2.5 x max_seg_num, >= 2000"),
        Entry("test_cfg", "min_score", 0.001, "all shipped configs"),
        Entry("test_cfg", "multiclass_nms", True, "NMS per class"),
    ]


def resize_entries(stats: DataStats, grid: FeatureGrid, common: List[Entry],
                   rel_median: float) -> List[Entry]:
    """Rules of the resize layout (ActivityNet style)."""
    if stats.num_labels != stats.num_classes:
        raise ValueError(f"only {stats.num_labels} of the {stats.num_classes} class ids have an "
                         "action; the anet loader needs every class to occur")
    windows = [7, 7, 7, 7, 7, -1]
    div = div_factor(windows, 6)
    rel_p5 = max(_pct(stats.action_rel, 5), 1e-6)
    max_len = max(div, _round_up(MIN_STEPS_RESIZED / rel_p5, div))
    small = grid.input_dim <= 2048
    return common + [
        Entry("", "dataset_name", "anet", f"the median action covers {rel_median:.2f} of its "
              f"video (>= {RESIZE_REL_LEN}): every video is resized to max_seq_len steps"),
        Entry("dataset", "force_upsampling", True, "resize every video to max_seq_len"),
        Entry("dataset", "trunc_thresh", 0.5, "ActivityNet's value"),
        Entry("dataset", "crop_ratio", [0.9, 1.0], "all shipped configs"),
        Entry("dataset", "max_seq_len", max_len,
              f"the 5th-percentile action ({rel_p5:.4f} of its video) spans >= "
              f"{MIN_STEPS_RESIZED:g} steps; a multiple of max_div_factor {div}"),
        Entry("model", "n_mha_win_size", windows, "ActivityNet: local 7, global at the top"),
        Entry("model", "max_buffer_len_factor", 1.0, "every video has exactly max_seq_len"),
        Entry("model", "use_abs_pe", True, "ActivityNet: position matters in resized videos"),
        Entry("model", "embd_dim", 256 if small else 512, "ActivityNet's smaller model"),
        Entry("model", "fpn_dim", 256 if small else 512, "= embd_dim (identity neck)"),
        Entry("model", "head_dim", 256 if small else 512, "as ActivityNet"),
        Entry("opt", "learning_rate", 0.001, "ActivityNet recipe (not derived)"),
        Entry("opt", "epochs", 10, "ActivityNet recipe (not derived), plus 5 warmup epochs"),
        Entry("opt", "weight_decay", 0.05, "all shipped configs"),
        Entry("loader", "batch_size", 16, "ActivityNet: short fixed-length inputs"),
        Entry("train_cfg", "init_loss_norm", 200, "ActivityNet's value"),
        Entry("train_cfg", "clip_grad_l2norm", 1.0, "all shipped configs"),
        Entry("train_cfg", "label_smoothing", 0.1, "ActivityNet's value"),
        Entry("train_cfg", "loss_weight", 2.0, "ActivityNet's value"),
        Entry("test_cfg", "voting_thresh", 0.9, "ActivityNet's value"),
        Entry("test_cfg", "nms_sigma", 0.75, "ActivityNet's value"),
        Entry("test_cfg", "max_seg_num", 100, "ActivityNet's value (few actions per video)"),
        Entry("test_cfg", "pre_nms_topk", 2000, "ActivityNet's value"),
        Entry("test_cfg", "min_score", 0.001, "all shipped configs"),
        Entry("test_cfg", "duration_thresh", 0.001, "ActivityNet's value"),
        Entry("test_cfg", "multiclass_nms", stats.num_classes > 1, "NMS per class"),
    ]


def derive_config(stats: DataStats, grid: FeatureGrid, json_file: str, feat_folder: str,
                  mode: str = "auto") -> List[Entry]:
    """The config as ordered entries with reasons (module docstring; docs/own_videos.md).

    Args:
        stats: ``collect_stats`` of the annotations on this grid.
        grid: the feature grid (manifest, or the command line).
        json_file, feat_folder: paths written into the config as given.
        mode: 'auto', 'per-video' or 'resize'.
    """
    rel_median = float(np.median(stats.action_rel))
    if mode == "auto":
        mode = "resize" if rel_median >= RESIZE_REL_LEN else "per-video"
    if mode not in ("per-video", "resize"):
        raise ValueError(f"mode must be 'auto', 'per-video' or 'resize', got {mode!r}")
    common = [
        Entry("", "train_split", [stats.train_split], "subset used for training"),
        Entry("", "val_split", [stats.val_split], "subset evaluated by eval.py"),
        Entry("dataset", "json_file", json_file, "the annotation JSON"),
        Entry("dataset", "feat_folder", feat_folder, "one (T, C) feature file per video"),
        Entry("dataset", "file_prefix", None, "feature file = video id + file_ext"),
        Entry("dataset", "file_ext", grid.file_ext, "as written by the extractor"),
        Entry("dataset", "num_classes", stats.num_classes,
              f"label ids 0..{stats.num_classes - 1} ({stats.num_labels} occur)"),
        Entry("dataset", "input_dim", grid.input_dim, "feature channels C"),
        Entry("dataset", "feat_stride", grid.feat_stride, "frames between features"),
        Entry("dataset", "num_frames", grid.num_frames, "frames per feature clip"),
        Entry("dataset", "default_fps", grid.fps, "fps the frames were sampled at (overrides "
              "the JSON's per-video fps, the source file's)"),
    ]
    if mode == "resize":
        return resize_entries(stats, grid, common, rel_median)
    return per_video_entries(stats, grid, common)
