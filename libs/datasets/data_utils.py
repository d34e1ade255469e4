"""Batch collation, worker seeding and training-time truncation (docs/reference.md §2.7, §2.8).

``truncate_feats`` draws from Python's ``random`` module in exactly the original's order
(``randint`` for the crop length, then one ``randint`` per trial window), so a seeded run crops
the same windows as the original; the conformance test replays its five reference vectors.
"""
from __future__ import annotations

import copy
import os
import random
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from libs.utils.interrupt import ignore_stop_signals

__all__ = ["trivial_batch_collator", "worker_init_reset_seed", "truncate_feats"]


def trivial_batch_collator(batch: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """A batch is the list of item dicts; padding happens inside the model."""
    return batch


def worker_init_reset_seed(worker_id: int) -> None:
    """Seeds NumPy, Python ``random`` and PYTHONHASHSEED from the worker's torch seed; the
    worker leaves SIGINT / SIGTERM to the main process (train.py saves ``interrupted.pth``;
    a worker killed by a group Ctrl-C would crash the main process's next fetch)."""
    ignore_stop_signals()
    seed = torch.initial_seed() % 2 ** 31
    np.random.seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def truncate_feats(data_dict: Dict[str, Any], max_seq_len: int, trunc_thresh: float,
                   offset: float, crop_ratio: Optional[Sequence[float]] = None,
                   max_num_trials: int = 200, has_action: bool = True,
                   no_trunc: bool = False) -> Dict[str, Any]:
    """Crops a training item to at most ``max_seq_len`` steps, keeping enough of its actions.

    Args:
        data_dict: item with ``feats`` (C, T), ``segments`` (N, 2) grid units, ``labels`` (N,).
        max_seq_len: longest allowed length; longer inputs are cut to exactly this length.
        trunc_thresh: an action is kept if at least this fraction of it is inside the window.
        offset: half a feature's footprint in grid units (the window is widened by it on
            both sides when measuring how much of an action is inside).
        crop_ratio: ``[lo, hi]``: inputs not longer than ``max_seq_len`` are randomly cropped
            to ``randint(round(lo*T), round(hi*T))`` steps; ``None`` leaves them unchanged.
        max_num_trials: windows to try before taking the last one.
        has_action: require at least one kept action.
        no_trunc: additionally require that no action is partly cut.

    Returns:
        The same dict when nothing is cropped, else a deep copy with cropped ``feats``
        (C, T'), ``segments`` (N', 2) relative to the window start and ``labels`` (N',).
    """
    feat_len = data_dict["feats"].shape[1]
    num_segs = data_dict["segments"].shape[0]

    if feat_len <= max_seq_len:
        if crop_ratio is None:
            return data_dict
        max_seq_len = random.randint(max(round(crop_ratio[0] * feat_len), 1),
                                     min(round(crop_ratio[1] * feat_len), feat_len))
        if max_seq_len == feat_len:
            return data_dict

    data_dict = copy.deepcopy(data_dict)
    segments = data_dict["segments"]
    seg_lengths = torch.abs(segments[:, 1] - segments[:, 0])
    for _ in range(max_num_trials):
        st = random.randint(0, feat_len - max_seq_len)
        ed = st + max_seq_len
        window = torch.as_tensor([st, ed], dtype=torch.float32)[None].repeat(num_segs, 1)
        left = torch.maximum(window[:, 0] - offset, segments[:, 0])
        right = torch.minimum(window[:, 1] + offset, segments[:, 1])
        inter = (right - left).clamp(min=0)
        inter_ratio = inter / seg_lengths
        keep = inter_ratio >= trunc_thresh
        if no_trunc:
            partly_cut = torch.logical_and(inter_ratio > 0.0, inter_ratio < 1.0)
            if keep.sum().item() > 0 and partly_cut.sum().item() == 0:
                break
        elif has_action:
            if keep.sum().item() > 0:
                break
        else:
            break

    data_dict["feats"] = data_dict["feats"][:, st:ed].clone()
    data_dict["segments"] = torch.stack((left[keep], right[keep]), dim=1) - st
    data_dict["labels"] = data_dict["labels"][keep].clone()
    return data_dict
