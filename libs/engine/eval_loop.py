"""``valid_one_epoch`` (docs/reference.md §7.4): inference over a loader, results, mAP.

For every video with at least one detection the per-segment rows ``video-id``, ``t-start``,
``t-end``, ``label``, ``score`` are collected and concatenated (float32 / int64 arrays, a list of
ids). With an evaluator the mAP is computed (after external score fusion when
``ext_score_file`` is given); without one the raw results are pickled to ``output_file``
(eval.py ``--saveonly``: ``eval_results.pkl``, before any fusion).

Changes from the original: no crash when no video yields a detection (empty arrays, §9 item
22); under torchrun each process runs its shard of the videos (see
:func:`shard_indices`) and the per-video results are gathered on rank 0 and put back in the
dataset's order before evaluation, so the mAP equals single-process inference.
"""
from __future__ import annotations

import pickle
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from libs.utils import AverageMeter, comm, synchronize
from libs.utils.host_memory import release_excess_memory

from .wrapping import unwrap_model

__all__ = ["valid_one_epoch", "shard_indices", "collect_results"]

RESULT_KEYS = ("video-id", "t-start", "t-end", "label", "score")


def shard_indices(num_items: int, rank: Optional[int] = None,
                  world_size: Optional[int] = None) -> List[int]:
    """Dataset indices of this process: ``rank, rank + W, ...`` (no padding, no duplicates)."""
    rank = comm.get_rank() if rank is None else rank
    world_size = comm.get_world_size() if world_size is None else world_size
    return list(range(rank, num_items, world_size))


def collect_results(per_video: List[Tuple[int, str, np.ndarray, np.ndarray, np.ndarray]]
                    ) -> Dict[str, Any]:
    """Concatenates per-video rows ``(order, video_id, segments (N,2), labels, scores)``."""
    per_video = sorted(per_video, key=lambda row: row[0])
    ids: List[str] = []
    for _, vid, segs, _, _ in per_video:
        ids.extend([vid] * segs.shape[0])
    def cat(arrays, dtype):
        return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)
    return {
        "video-id": ids,
        "t-start": cat([row[2][:, 0] for row in per_video], np.float32),
        "t-end": cat([row[2][:, 1] for row in per_video], np.float32),
        "label": cat([row[3] for row in per_video], np.int64),
        "score": cat([row[4] for row in per_video], np.float32),
    }


def valid_one_epoch(val_loader: Any, model: nn.Module, curr_epoch: int,
                    ext_score_file: Optional[str] = None, evaluator: Any = None,
                    output_file: Optional[str] = None, tb_writer: Any = None,
                    print_freq: int = 20, index_offset: Optional[int] = None,
                    index_stride: Optional[int] = None) -> float:
    """Runs inference and evaluates (or saves) the detections.

    Args:
        val_loader: batches of video dicts (batch size 1, in dataset order; under torchrun
            the shard :func:`shard_indices` of this rank).
        model: the network (eval mode is set here).
        curr_epoch: step for the TensorBoard ``validation/mAP`` scalar.
        ext_score_file: external classification scores to fuse (ActivityNet).
        evaluator: ``ANETdetection``-like object with ``evaluate(results, verbose=True)``
            returning ``(mAPs, average_mAP, ...)``.
        output_file: where to pickle the raw results when there is no evaluator.
        tb_writer: TensorBoard writer or None.
        print_freq: progress line every N videos.
        index_offset, index_stride: position of this process's videos in the dataset order
            (default: rank and world size, matching :func:`shard_indices`).

    Returns:
        The average mAP (0.0 when only saving); the same value on every process.

    Raises:
        ValueError: neither an evaluator nor an output file is given.
    """
    if evaluator is None and output_file is None:
        raise ValueError("valid_one_epoch needs an evaluator or an output_file")
    offset = comm.get_rank() if index_offset is None else index_offset
    stride = comm.get_world_size() if index_stride is None else index_stride
    per_video = _infer(val_loader, model, offset, stride, print_freq)
    gathered = comm.all_gather_object(per_video)
    mAP = 0.0
    if comm.is_main_process():
        results = collect_results([row for rows in gathered for row in rows])
        mAP = _evaluate_or_save(results, evaluator, ext_score_file, output_file)
        if tb_writer is not None:
            tb_writer.add_scalar("validation/mAP", mAP, curr_epoch)
    return float(comm.broadcast_object(mAP))


Row = Tuple[int, str, np.ndarray, np.ndarray, np.ndarray]


def _infer(val_loader: Any, model: nn.Module, offset: int, stride: int,
           print_freq: int) -> List[Row]:
    """Inference over the loader: a row for every video with a detection (with its position
    ``offset + i * stride`` in the dataset order), a progress line every ``print_freq``."""
    main = comm.is_main_process()
    model.eval()
    device = next(unwrap_model(model).parameters()).device
    batch_time = AverageMeter()
    per_video: List[Row] = []
    num_iters = len(val_loader)
    position = 0
    start = time.time()
    for it, video_list in enumerate(val_loader):
        with torch.no_grad():
            output = model(video_list)
        release_excess_memory()  # the fast procedure's kept host memory stays bounded
        for out in output:
            order = offset + position * stride
            position += 1
            if out["segments"].shape[0] > 0:
                per_video.append((order, out["video_id"],
                                  out["segments"].detach().cpu().numpy(),
                                  out["labels"].detach().cpu().numpy(),
                                  out["scores"].detach().cpu().numpy()))
        if it != 0 and it % print_freq == 0:
            synchronize(device)
            batch_time.update((time.time() - start) / print_freq)
            start = time.time()
            if main:
                print(f"Test: [{it:05d}/{num_iters:05d}]\t"
                      f"Time {batch_time.val:.2f} ({batch_time.avg:.2f})", flush=True)
    return per_video


def _evaluate_or_save(results: Dict[str, Any], evaluator: Any, ext_score_file: Optional[str],
                      output_file: Optional[str]) -> float:
    """The average mAP (after external score fusion if given); without an evaluator the raw
    results are pickled to ``output_file`` and 0.0 is returned."""
    if evaluator is None:
        with open(output_file, "wb") as f:
            pickle.dump(results, f)
        return 0.0
    if isinstance(ext_score_file, str):
        from libs.evaluation import postprocess_results
        results = postprocess_results(results, ext_score_file)
    _, mAP, _ = evaluator.evaluate(results, verbose=True)
    return mAP
