"""Streaming video decoding with PyAV: frames resampled to a target fps by timestamp, resized.

Each video is decoded once, front to back; frames come out one at a time (a generator), so
memory never holds more than the frame being converted. The resampling rule (documented in
docs/features.md):

* source frame j is at ``s_j = (pts_j - pts_0) * time_base`` seconds (``pts_0``: the first
  decoded frame, so a stream that starts at a non-zero pts still starts at 0 s); frames whose
  time does not increase are dropped (duplicates);
* output frame k is at ``t_k = k / fps`` for ``k = 0 .. K - 1`` with
  ``K = floor((s_last + 1e-6) * fps) + 1``: every ``t_k <= s_last`` (within 1 microsecond), so
  every output time lies within the decoded frames;
* output frame k is the source frame **nearest** to ``t_k`` (a tie goes to the earlier one).

So constant, 29.97 and variable frame-rate sources land on the same ``k / fps`` grid; a source at
exactly ``fps`` maps frame k to frame k. Frames are converted to RGB at the target size by
FFmpeg's scaler (bilinear) while decoding, and only the frames that are kept are converted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Optional, Tuple, Union

import av
import numpy as np

from .probe import VideoError, open_video, video_stream

__all__ = ["FrameSize", "output_size", "decode_frames", "DecodeStats", "num_output_frames"]

_EPS = 1e-6  # seconds: timestamps within this of an output time count as on it


@dataclass(frozen=True)
class FrameSize:
    """How decoded frames are resized then centre-cropped.

    Attributes:
        resize_to: an ``int`` short side (aspect ratio kept) or an exact ``(height, width)``.
        crop_size: side of the square centre crop (``None``: no crop).
    """

    resize_to: Union[int, Tuple[int, int]]
    crop_size: Optional[int] = None

    def describe(self) -> dict:
        """The manifest's record of the frame geometry."""
        resize = self.resize_to if isinstance(self.resize_to, int) else list(self.resize_to)
        mode = "short_side" if isinstance(self.resize_to, int) else "exact"
        return {"resize_to": resize, "resize_mode": mode, "crop_size": self.crop_size,
                "crop": "centre" if self.crop_size else "none", "interpolation": "bilinear"}


@dataclass
class DecodeStats:
    """Filled in while ``decode_frames`` runs: what was decoded and kept."""

    decoded_frames: int = 0
    output_frames: int = 0
    last_time_s: float = 0.0


def output_size(width: int, height: int, size: FrameSize) -> Tuple[int, int]:
    """(width, height) after the resize step (before the crop)."""
    if isinstance(size.resize_to, int):
        short = int(size.resize_to)
        if width <= height:
            return short, max(1, int(round(height * short / width)))
        return max(1, int(round(width * short / height))), short
    out_h, out_w = size.resize_to
    return int(out_w), int(out_h)


def num_output_frames(last_time_s: float, fps: float) -> int:
    """K of the module docstring: output frames of a video whose last frame is at ``last_time_s``."""
    return int(math.floor((last_time_s + _EPS) * fps)) + 1


def _crop(rgb: np.ndarray, crop: Optional[int], path: str) -> np.ndarray:
    if not crop:
        return rgb
    height, width = rgb.shape[:2]
    if height < crop or width < crop:
        raise VideoError(f"{path}: resized frames of {height}x{width} are smaller than the "
                         f"{crop}x{crop} crop (resize_to must be at least the crop size)")
    top, left = (height - crop) // 2, (width - crop) // 2
    return rgb[top:top + crop, left:left + crop]


def _to_rgb(frame: av.VideoFrame, size: FrameSize, path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of ``frame`` resized (FFmpeg, bilinear) then centre-cropped."""
    width, height = output_size(frame.width, frame.height, size)
    rgb = frame.to_ndarray(format="rgb24", width=width, height=height,
                           interpolation="BILINEAR")
    return np.ascontiguousarray(_crop(rgb, size.crop_size, path))


def _timed_frames(path: str) -> Iterator[Tuple[float, av.VideoFrame]]:
    """(seconds since the first frame, frame) in presentation order, duplicates dropped."""
    with open_video(path) as container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        step = Fraction(1, 1) / rate if rate else Fraction(1, 30)
        first_pts, prev = None, None
        try:
            for frame in container.decode(stream):
                if frame.pts is None:  # no timestamp: one average period after the previous
                    t = 0.0 if prev is None else prev + float(step)
                else:
                    if first_pts is None:
                        first_pts = frame.pts
                    t = float((frame.pts - first_pts) * frame.time_base)
                if prev is not None and t <= prev:
                    continue
                prev = t
                yield t, frame
        except av.FFmpegError as exc:
            reason = " ".join(str(getattr(exc, "strerror", None) or exc).split())
            raise VideoError(f"{path}: corrupt video stream ({reason})") from None


def decode_frames(path: str, fps: float, size: FrameSize,
                  stats: Optional[DecodeStats] = None) -> Iterator[np.ndarray]:
    """Yields the frames of ``path`` on the ``k / fps`` grid, each ``(H, W, 3)`` uint8 RGB.

    Args:
        path: the video file.
        fps: target frames per second.
        size: resize and crop (``FrameSize``).
        stats: optional, filled in as frames are decoded (final once the generator ends).

    Raises:
        VideoError: not a video, no video stream, corrupt, or no frame at all.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    stats = stats if stats is not None else DecodeStats()
    prev: Optional[Tuple[float, av.VideoFrame]] = None
    k = 0
    for t, frame in _timed_frames(path):
        stats.decoded_frames += 1
        stats.last_time_s = t
        # emit every output time up to this frame: nearest of (previous, this), tie -> previous
        while k / fps <= t + _EPS:
            target = k / fps
            use_prev = prev is not None and (target - prev[0]) <= (t - target) + _EPS / 2
            yield _to_rgb(prev[1] if use_prev else frame, size, path)
            stats.output_frames += 1
            k += 1
        prev = (t, frame)
    if stats.decoded_frames == 0:
        raise VideoError(f"{path}: the video stream has zero frames")
