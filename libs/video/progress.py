"""Plain-text progress of a feature extraction: clips done, rate, per-video and overall ETA.

Writes to a stream (stderr by default) at most once per ``interval_s`` and at each video's end;
on a terminal the line is redrawn in place (carriage return), elsewhere each update is a line.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

__all__ = ["Progress", "format_eta"]


def format_eta(seconds: Optional[float]) -> str:
    """``h:mm:ss`` (or ``m:ss``) of a duration; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Tracks clips against an estimated total and prints a status line.

    Args:
        total_clips: estimated clips of the whole run (from the videos' headers).
        num_videos: videos to extract in this run.
        stream: where to write (``None``: ``sys.stderr``).
        interval_s: the least time between two updates of the line.
    """

    def __init__(self, total_clips: int, num_videos: int, stream: Optional[TextIO] = None,
                 interval_s: float = 2.0) -> None:
        self.total = max(1, int(total_clips))
        self.num_videos = num_videos
        self.stream = stream if stream is not None else sys.stderr
        self.interval_s = interval_s
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last_print = 0.0
        self.done = 0
        self.video_done = 0
        self.video_total = 1
        self.video_index = 0
        self.video_name = ""
        self._width = 0

    def start_video(self, index: int, name: str, est_clips: int) -> None:
        self.video_index, self.video_name = index, name
        self.video_done, self.video_total = 0, max(1, int(est_clips))

    def _rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.done / elapsed if elapsed > 0 and self.done else 0.0

    def line(self) -> str:
        """The current status line."""
        rate = self._rate()
        left_video = max(0, self.video_total - self.video_done)
        left_all = max(0, self.total - self.done)
        eta_video = left_video / rate if rate else None
        eta_all = left_all / rate if rate else None
        return (f"[{self.video_index}/{self.num_videos}] {self.video_name}: "
                f"{self.video_done}/{self.video_total} clips | {rate:.1f} clips/s | "
                f"video ETA {format_eta(eta_video)} | overall {100 * self.done / self.total:.0f}%"
                f" ETA {format_eta(eta_all)}")

    def advance(self, clips: int) -> None:
        """Counts ``clips`` more and prints when ``interval_s`` has passed."""
        self.done += clips
        self.video_done += clips
        now = time.perf_counter()
        if now - self.last_print >= self.interval_s:
            self._write(self.line())
            self.last_print = now

    def end_video(self, status: str) -> None:
        """Ends the current video's line with ``status`` (e.g. ``done``, ``FAILED: reason``)."""
        self.video_total = self.video_done if status == "done" else self.video_total
        self._write(f"{self.line()} | {status}", final=True)

    def _write(self, text: str, final: bool = False) -> None:
        if self.tty:  # redraw in place, blanking what a longer previous line left
            padded = text.ljust(self._width)
            self._width = 0 if final else len(text)
            self.stream.write("\r" + padded + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
