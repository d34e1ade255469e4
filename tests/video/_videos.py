"""Test helpers that write small videos with PyAV (constant, 29.97 and variable frame rate).

``make_video`` is the one entry point; every frame's content encodes its index so a test can read
back which source frame a decoded frame came from (``frame_index_of``).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence, Union

import av
import numpy as np

from libs.video.synthetic import CODEC, TIME_BASE, write_video

__all__ = ["CODEC", "make_video", "make_audio_only", "make_zero_frame_video", "make_frames",
           "frame_index_of", "frame_times"]

_TIME_BASE = TIME_BASE


def _level(index: int) -> int:
    """Grey level that encodes a frame index (16 steps of 15: readable after lossy coding)."""
    return 8 + 15 * (index % 16)


def make_frames(num_frames: int, size: Sequence[int], pattern: str = "index") -> np.ndarray:
    """(num_frames, H, W, 3) uint8 frames; ``size`` = (width, height).

    Patterns: ``"index"``: the top half is the grey level of ``index % 16`` (see
    ``frame_index_of``), the bottom half ``index // 16`` (so 256 frames are told apart), with a
    colour ramp in the red channel; ``"noise"``: seeded random pixels (a busy scene).
    """
    width, height = int(size[0]), int(size[1])
    if pattern == "noise":
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (num_frames, height, width, 3), dtype=np.uint8)
    if pattern != "index":
        raise ValueError(f"unknown pattern {pattern!r}: expected 'index' or 'noise'")
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, width, dtype=np.float64).astype(np.uint8)
    for i in range(num_frames):
        frames[i, : height // 2, :, 1:] = _level(i)
        frames[i, height // 2:, :, 1:] = _level(i // 16)
        frames[i, :, :, 0] = ramp[None, :]
    return frames


def frame_index_of(rgb: np.ndarray) -> int:
    """Source frame index of an ``"index"``-pattern frame (H, W, 3) uint8, after decoding."""
    height = rgb.shape[0]
    top = float(rgb[: height // 2, :, 1:].mean())
    bottom = float(rgb[height // 2:, :, 1:].mean())
    return int(round((top - 8) / 15)) + 16 * int(round((bottom - 8) / 15))


def frame_times(num_frames: int, fps: Union[float, Fraction], vfr: bool = False) -> List[float]:
    """Presentation times (seconds) ``make_video`` gives its frames.

    Constant rate: ``i / fps``. Variable rate (``vfr=True``): the gap between frames alternates
    between 0.5 and 1.5 frame periods in a fixed pattern (mean rate ``fps``), i.e. frame i sits
    at ``(i + 0.25 * s_i) / fps`` with ``s_i`` in {-1, 0, +1}. Times are rounded to the
    1/60000 s time base the file stores.
    """
    fps = Fraction(fps).limit_denominator(100000)
    times = []
    for i in range(num_frames):
        shift = (0, -1, 0, 1)[i % 4] * Fraction(1, 4) if vfr else 0
        times.append(float(round((i + shift) / fps / _TIME_BASE) * _TIME_BASE))
    return times


def make_video(path: Union[str, Path], seconds: float, fps: Union[float, Fraction] = 30,
               size: Sequence[int] = (64, 48), vfr: bool = False, pattern: str = "index",
               num_frames: Optional[int] = None, codec: str = CODEC,
               start_s: float = 0.0, gop: int = 1) -> Path:
    """Writes a video of ``seconds`` (or ``num_frames`` frames) at ``fps`` and returns its path.

    Frame i is presented at ``frame_times(n, fps, vfr)[i]`` (``libs.video.synthetic.write_video``
    sets the pts by hand on a 1/60000 time base, so 30000/1001 and variable rates are exact),
    plus ``start_s`` (a stream whose first pts is not 0). ``size`` = (width, height), even
    numbers. ``gop``: frames per keyframe interval (1: every frame a keyframe; real videos use
    12 to 250).
    """
    fps = Fraction(fps).limit_denominator(100000)
    n = int(num_frames) if num_frames is not None else int(round(seconds * fps))
    return write_video(path, make_frames(n, size, pattern), frame_times(n, fps, vfr), size, fps,
                       codec=codec, gop=gop, start_s=start_s)


def make_audio_only(path: Union[str, Path], seconds: float = 1.0, rate: int = 16000) -> Path:
    """Writes a file with one audio stream (a 440 Hz tone, PCM in WAV) and no video stream."""
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        t = np.arange(int(seconds * rate)) / rate
        samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_zero_frame_video(path: Union[str, Path], seconds: float = 1.0) -> Path:
    """Writes a Matroska file whose video stream holds no frames (beside one second of audio).

    Its header still states a duration (the audio's), so only decoding shows there are no frames.
    """
    path = Path(path)
    rate = 48000
    with av.open(str(path), mode="w", format="matroska") as container:
        video = container.add_stream(CODEC, rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("mp2", rate=rate)
        audio.layout = "mono"
        samples = np.zeros((1, int(seconds * rate)), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
        container.mux(video.encode(None))
    return path
