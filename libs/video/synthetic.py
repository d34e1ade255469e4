"""Generated videos with PyAV: a frame encoder, and event videos (coloured squares on noise).

``write_video`` encodes frames with hand-set timestamps (constant, 29.97 or variable rate); the
tests and the offline video demo (tools/video_demo.py) use it. ``event_video`` draws a video
whose actions are visible: during an action of class c a square of colour ``CLASS_COLOURS[c]``
covers the centre of the frame, over grey noise that is there all the time.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import av
import numpy as np

__all__ = ["CODEC", "TIME_BASE", "CLASS_COLOURS", "write_video", "event_frames", "event_video",
           "random_events"]

# mpeg4 ships in every PyAV wheel; intra-only (gop 1) with fine quantisation keeps colours close
CODEC = "mpeg4"
# MPEG-4 part 2 caps the time-base denominator at 65535; 1/60000 is exact for 30, 25, 60 and
# 30000/1001 fps
TIME_BASE = Fraction(1, 60000)
# one colour per class (RGB); the background is grey noise in [70, 150)
CLASS_COLOURS: Tuple[Tuple[int, int, int], ...] = (
    (220, 40, 40), (40, 200, 40), (40, 60, 230), (230, 210, 40), (200, 40, 200))
BACKGROUND = (70, 150)
Event = Tuple[float, float, int]  # (start s, end s, class id)


def write_video(path: Union[str, Path], frames: Iterable[np.ndarray], times_s: Sequence[float],
                size: Sequence[int], fps: Union[float, Fraction] = 30, codec: str = CODEC,
                gop: int = 1, start_s: float = 0.0) -> Path:
    """Encodes ``(H, W, 3)`` uint8 frames, frame i presented at ``times_s[i] + start_s``.

    ``size`` = (width, height), even numbers; ``fps`` is the nominal rate the stream states.
    Timestamps are set by hand on a 1/60000 s time base, so 30000/1001 and variable rates are
    exact. ``gop``: frames per keyframe interval (1: every frame a keyframe).
    """
    path = Path(path)
    fps = Fraction(fps).limit_denominator(100000)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = int(size[0]), int(size[1])
        stream.pix_fmt = "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.codec_context.gop_size = int(gop)
        stream.codec_context.qmin, stream.codec_context.qmax = 1, 3
        for rgb, t in zip(frames, times_s):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = int(round((Fraction(t) + Fraction(start_s)) / TIME_BASE))
            frame.time_base = TIME_BASE
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _class_at(events: Sequence[Event], t: float) -> Optional[int]:
    for start, end, label in events:
        if start <= t < end:
            return int(label)
    return None


def event_frames(num_frames: int, fps: float, size: Sequence[int], events: Sequence[Event],
                 seed: int = 0, square: float = 0.5) -> Iterator[np.ndarray]:
    """Frames of an event video, one at a time (``size`` = (width, height)).

    Frame k (at ``k / fps`` s) is grey noise; while an event ``(start, end, c)`` holds
    (``start <= k / fps < end``) a centred square of side ``square`` x the short side, of colour
    ``CLASS_COLOURS[c]`` plus a little noise, covers it.
    """
    width, height = int(size[0]), int(size[1])
    rng = np.random.default_rng(seed)
    side = max(2, int(round(square * min(width, height))))
    top, left = (height - side) // 2, (width - side) // 2
    for k in range(num_frames):
        frame = rng.integers(BACKGROUND[0], BACKGROUND[1], (height, width, 3), dtype=np.int16)
        label = _class_at(events, k / fps)
        if label is not None:
            colour = np.array(CLASS_COLOURS[label % len(CLASS_COLOURS)], dtype=np.int16)
            patch = colour + rng.integers(-12, 13, (side, side, 3), dtype=np.int16)
            frame[top:top + side, left:left + side] = patch
        yield np.clip(frame, 0, 255).astype(np.uint8)


def event_video(path: Union[str, Path], seconds: float, events: Sequence[Event],
                fps: float = 10.0, size: Sequence[int] = (64, 48), seed: int = 0) -> Path:
    """Writes an event video of ``seconds`` at constant ``fps`` (see ``event_frames``)."""
    n = int(round(seconds * fps))
    times = [k / float(fps) for k in range(n)]
    return write_video(path, event_frames(n, fps, size, events, seed), times, size, fps)


def random_events(rng: np.random.Generator, seconds: float, num_classes: int,
                  min_len: float, max_len: float, max_events: int, gap: float = 1.0
                  ) -> List[Event]:
    """1 to ``max_events`` non-overlapping events of random class and length, sorted by start.

    Lengths are uniform in [min_len, max_len] s; events stay ``gap`` s apart and inside
    [gap, seconds - gap]. At least one event is placed (``seconds`` must leave room for it).
    """
    if seconds - 2 * gap < min_len:
        raise ValueError(f"a {seconds} s video has no room for a {min_len} s event "
                         f"({gap} s from either end)")
    events: List[Event] = []
    target = int(rng.integers(1, max_events + 1))
    for _ in range(50):  # tries
        if len(events) == target:
            break
        length = float(rng.uniform(min_len, max_len))
        start = float(rng.uniform(gap, max(gap, seconds - gap - length)))
        start, end = round(start, 2), round(min(start + length, seconds - gap), 2)
        if end - start < min_len or any(start < e + gap and s < end + gap
                                         for s, e, _ in events):
            continue
        events.append((start, end, int(rng.integers(0, num_classes))))
    if not events:  # unlucky draws: one event in the middle
        mid = seconds / 2
        events.append((round(mid - min_len / 2, 2), round(mid + min_len / 2, 2),
                       int(rng.integers(0, num_classes))))
    return sorted(events)
