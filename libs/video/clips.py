"""The clip grid of feature extraction: which sampled frames each feature sees, and when it is.

Clip i covers sampled frames ``[i * stride, i * stride + clip_len)``; a video of ``n`` sampled
frames gives ``num_clips(n) = (n - clip_len) // stride + 1`` clips when ``n >= clip_len``; a
shorter one gives one clip padded by repeating its last frame (the manifest flags it). Feature
i is centred at frame ``i * stride + clip_len / 2``, i.e. at
``(i * stride + clip_len / 2) / fps`` seconds: what the dataset loaders assume with
``feat_stride = stride``, ``num_frames = clip_len``, ``default_fps = fps`` (docs/reference.md §2.5).
Trailing frames that do not fill a whole clip get no feature.
"""
from __future__ import annotations

from typing import Iterable, Iterator, List, Tuple

import numpy as np

__all__ = ["num_clips", "clip_center_time_s", "clip_frame_range", "clip_batches"]


def _check_grid(clip_len: int, stride: int) -> None:
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be >= 1, got clip_len {clip_len}, "
                         f"stride {stride}")


def num_clips(num_frames: int, clip_len: int, stride: int) -> int:
    """Features of a video of ``num_frames`` sampled frames (0 when it has no frame)."""
    _check_grid(clip_len, stride)
    if num_frames <= 0:
        return 0
    return max(0, num_frames - clip_len) // stride + 1


def clip_frame_range(i: int, clip_len: int, stride: int) -> Tuple[int, int]:
    """Sampled frames ``[start, stop)`` of clip i."""
    return i * stride, i * stride + clip_len


def clip_center_time_s(i: int, clip_len: int, stride: int, fps: float) -> float:
    """Centre time of feature i in seconds: ``(i * stride + clip_len / 2) / fps``."""
    return (i * stride + clip_len / 2) / fps


def _window(frames: List[np.ndarray], clip_len: int, stride: int, count: int) -> np.ndarray:
    """(count, clip_len, H, W, 3) clips starting at frames 0, stride, ... of ``frames``."""
    return np.stack([np.stack(frames[c * stride:c * stride + clip_len]) for c in range(count)])


def clip_batches(frames: Iterable[np.ndarray], clip_len: int, stride: int,
                 batch_size: int) -> Iterator[Tuple[int, np.ndarray, bool]]:
    """Groups a stream of frames into batches of clips, holding one batch's frames at a time.

    Args:
        frames: ``(H, W, 3)`` uint8 frames in order (e.g. ``decode_frames``).
        clip_len, stride: the clip grid.
        batch_size: clips per batch.

    Yields:
        ``(first_clip_index, clips, padded)``: clips ``(b, clip_len, H, W, 3)`` uint8, b <=
        batch_size; ``padded`` is True for the single clip of a video shorter than ``clip_len``
        (its last frame repeated). Nothing is yielded for a stream without frames.
    """
    _check_grid(clip_len, stride)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    span = (batch_size - 1) * stride + clip_len  # frames one full batch needs
    buf: List[np.ndarray] = []
    first = 0  # index of the clip that starts at buf[0]
    total = skip = 0  # skip: frames before the next clip's start (when stride > clip_len)
    for frame in frames:
        total += 1
        if skip:
            skip -= 1
            continue
        buf.append(frame)
        if len(buf) == span:
            yield first, _window(buf, clip_len, stride, batch_size), False
            first += batch_size
            skip = max(0, batch_size * stride - len(buf))
            del buf[:batch_size * stride]
    if total == 0:
        return
    if total < clip_len:
        yield 0, _window(buf + [buf[-1]] * (clip_len - total), clip_len, stride, 1), True
        return
    rest = num_clips(total, clip_len, stride) - first
    if rest > 0:
        yield first, _window(buf, clip_len, stride, rest), False
