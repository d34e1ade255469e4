"""Video probing with PyAV: duration, average fps, frame count and size of a file's video stream.

Owns the errors for files that are not videos: each names the file and what was expected.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import av

__all__ = ["VideoInfo", "VideoError", "probe_video", "open_video"]


class VideoError(ValueError):
    """A video file cannot be used: not a video, corrupt, no video stream, no frames, too small."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` learns about a file's first video stream.

    Attributes:
        path: the file probed.
        duration_s: stream (or container) duration in seconds; 0.0 when the file states none.
        fps: average frame rate (frames per second) as the container states it.
        num_frames: number of frames, obtained as ``frames_source`` says.
        frames_source: ``"decoded"`` (every frame decoded and counted: exact), ``"container"``
            (the frame count the container states; exact for MP4 / MOV) or ``"estimated"``
            (``round(duration_s * fps)``, when the container states no count).
        width, height: frame size in pixels.
        has_video: always True for a returned info (files without video raise ``VideoError``).
    """

    path: str
    duration_s: float
    fps: float
    num_frames: int
    frames_source: str
    width: int
    height: int
    has_video: bool = True


def open_video(path: str) -> av.container.InputContainer:
    """Opens ``path`` with PyAV; raises ``FileNotFoundError`` / ``VideoError`` naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: video file not found")
    try:
        return av.open(path, mode="r")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoError(f"{path}: not a video file or corrupt ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """A short one-line reason taken from a PyAV / FFmpeg exception."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


def video_stream(container: av.container.InputContainer, path: str) -> av.video.VideoStream:
    """The first video stream of an open container; ``VideoError`` when it has none."""
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise VideoError(f"{path}: no video stream (the file holds: {', '.join(kinds)})")
    return container.streams.video[0]


def _stream_duration_s(stream: av.video.VideoStream, container) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return 0.0


def _header_frame_count(stream, duration_s: float, fps: float) -> tuple:
    """(count, source) from the header alone: the stated count, else duration * fps, else 0."""
    if stream.frames:
        return int(stream.frames), "container"
    return int(round(duration_s * fps)), "estimated"


def _first_frame_decodes(container, stream, path: str) -> bool:
    """Whether the stream yields at least one frame (decodes at most one: cheap)."""
    try:
        for _ in container.decode(stream):
            return True
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: corrupt video stream ({_reason(exc)})") from None
    return False


def _count_frames(container, stream, path: str) -> int:
    """Decodes every frame of ``stream`` (no conversion to pixels) and counts them."""
    count = 0
    try:
        for _ in container.decode(stream):
            count += 1
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: corrupt video stream ({_reason(exc)})") from None
    return count


def probe_video(path: str, count_frames: bool = False) -> VideoInfo:
    """Reads the header of ``path`` (and decodes it when ``count_frames``) to describe its video.

    Args:
        path: a video file PyAV / FFmpeg can read.
        count_frames: decode every frame to count them exactly (slow on long videos); by default
            the count is the container's (exact for MP4s) or estimated from duration * fps, and
            frames are decoded only when the header gives neither.

    Returns:
        ``VideoInfo`` of the first video stream.

    Raises:
        FileNotFoundError: the file does not exist.
        VideoError: not a video / corrupt, no video stream (e.g. audio only), or zero frames.
    """
    with open_video(path) as container:
        stream = video_stream(container, path)
        rate: Optional[Fraction] = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        duration_s = _stream_duration_s(stream, container)
        num_frames, source = _header_frame_count(stream, duration_s, fps)
        if count_frames or num_frames <= 0:
            num_frames, source = _count_frames(container, stream, path), "decoded"
        elif not _first_frame_decodes(container, stream, path):
            num_frames = 0  # a header that promises frames the stream does not hold
        width = int(stream.codec_context.width or 0)
        height = int(stream.codec_context.height or 0)
    if num_frames <= 0:
        raise VideoError(f"{path}: the video stream has zero frames")
    if fps <= 0.0 and duration_s > 0.0:
        fps = num_frames / duration_s
    return VideoInfo(path=path, duration_s=duration_s, fps=fps, num_frames=num_frames,
                     frames_source=source, width=width, height=height)
