"""Feature extraction from raw videos: decode, clip, run a backbone, write (T, C) .npy + manifest.

One thread decodes (video after video, each once, front to back) and fills a bounded queue of
clip batches; the calling thread runs the network on them under ``torch.inference_mode``, so the
next batch (and the next video) is decoded while the network works. Memory is bounded by the
queue: a few batches of clips, never a whole video's frames. Each video's ``<stem>.npy`` and
the manifest are written atomically after the video; a rerun skips the videos the manifest has
with the same settings; a broken video is recorded with its reason and the others go on.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple, Union

import numpy as np
import torch

from libs.utils.atomic import atomic_open
from libs.utils.device import resolve_device

from .base import VideoBackbone
from .clips import clip_batches, num_clips
from .decode import DecodeStats, FrameSize, decode_frames, num_output_frames
from .manifest import MANIFEST_NAME, SHORT_VIDEO_POLICY, Manifest, load_manifest
from .probe import VideoError, VideoInfo, probe_video
from .progress import Progress

__all__ = ["VIDEO_EXTENSIONS", "ExtractResult", "list_videos", "frame_size_for",
           "make_settings", "extract_features"]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".ts", ".mts")
QUEUE_BATCHES = 3  # clip batches decoded ahead of the network


@dataclass
class ExtractResult:
    """What a run did: stems extracted, stems skipped (already done), failures and the manifest."""

    extracted: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    failed: Dict[str, str] = field(default_factory=dict)  # source path -> reason
    manifest_path: str = ""
    manifest: Optional[Manifest] = None

    @property
    def ok(self) -> bool:
        return not self.failed


def list_videos(inputs: Sequence[Union[str, Path]]) -> List[str]:
    """Files given, plus the files with a video extension in each folder given (sorted)."""
    out: List[str] = []
    for item in inputs:
        item = str(item)
        if os.path.isdir(item):
            names = sorted(n for n in os.listdir(item) if n.lower().endswith(VIDEO_EXTENSIONS))
            out += [os.path.join(item, n) for n in names if os.path.isfile(os.path.join(item, n))]
        elif os.path.exists(item):
            out.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such video file or folder")
    stems: Dict[str, str] = {}
    for path in out:
        stem = Path(path).stem
        if stem in stems and stems[stem] != path:
            raise ValueError(f"two videos would write the same feature file {stem}.npy: "
                             f"{stems[stem]} and {path}")
        stems[stem] = path
    return list(dict.fromkeys(out))


def frame_size_for(backbone: VideoBackbone, size: Optional[int]) -> FrameSize:
    """The frame geometry: crop ``size`` (default: the backbone's), resize scaled to match.

    The backbone's ``resize_to`` is scaled by ``size / crop_size`` so the crop keeps the same
    share of the frame. Raises ValueError when the backbone's pooling cannot take the size.
    """
    crop = int(size) if size is not None else int(backbone.crop_size)
    backbone.check_frame_size(crop, crop, source=f"--size {crop}")
    ratio = crop / float(backbone.crop_size)
    if isinstance(backbone.resize_to, int):
        resize: Union[int, Tuple[int, int]] = int(round(backbone.resize_to * ratio))
    else:
        resize = (int(round(backbone.resize_to[0] * ratio)),
                  int(round(backbone.resize_to[1] * ratio)))
    return FrameSize(resize_to=resize, crop_size=crop)


def make_settings(backbone: VideoBackbone, fps: float, clip_len: int, stride: int,
                  frames: FrameSize) -> Dict[str, Any]:
    """The manifest's ``settings``: everything that decides the features' values and grid."""
    info = backbone.describe()
    return {
        "backbone": backbone.name, "weights": info["weights"], "fps": float(fps),
        "clip_len": int(clip_len), "stride": int(stride), "frames": frames.describe(),
        "sampling": "output frame k at k / fps takes the source frame nearest in time "
                    "(tie: the earlier); times from pts * time_base",
        "pixel_normalisation": {"input": "RGB in [0, 1]", "mean": info["pixel_mean"],
                                "std": info["pixel_std"]},
        "feature_dim": int(backbone.feature_dim), "dtype": "float32", "layout": "(T, C)",
        "short_video_policy": SHORT_VIDEO_POLICY,
    }


def _open_manifest(path: str, settings: Dict[str, Any], log: TextIO) -> Manifest:
    """The folder's manifest with these settings (entries of other settings kept, as stale)."""
    if not os.path.exists(path):
        return Manifest(settings)
    old = load_manifest(path)
    new = Manifest(settings, old.videos, old.failed)
    if old.hash != new.hash and old.videos:
        log.write(f"[extract] {path}: settings changed since the last run; its "
                  f"{len(old.videos)} video(s) will be extracted again when given\n")
    return new


def _estimated_clips(info: VideoInfo, fps: float, clip_len: int, stride: int) -> int:
    frames = num_output_frames(max(0.0, info.duration_s - 1.0 / max(info.fps, 1e-6)), fps)
    return max(1, num_clips(frames, clip_len, stride))


def _decode_jobs(jobs: List[Tuple[str, str]], fps: float, frames: FrameSize, clip_len: int,
                 stride: int, batch_size: int, out: "queue.Queue", stop: threading.Event) -> None:
    """Producer thread: for each (stem, path) put ``batch`` items then ``end`` or ``error``."""

    def put(item: Tuple) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    try:
        for stem, path in jobs:
            stats = DecodeStats()
            try:
                stream = decode_frames(path, fps, frames, stats)
                for first, clips, padded in clip_batches(stream, clip_len, stride, batch_size):
                    if not put(("batch", stem, first, clips, padded)):
                        return
                if not put(("end", stem, stats)):
                    return
            except (VideoError, FileNotFoundError, OSError) as exc:
                if not put(("error", stem, str(exc))):
                    return
    except BaseException as exc:  # a bug, not a broken file: hand it to the caller
        put(("fatal", "", exc))
    finally:
        put(("done", "", None))


def _run_network(backbone: VideoBackbone, clips: np.ndarray, device: torch.device) -> np.ndarray:
    """(b, L, H, W, 3) uint8 clips -> (b, C) float32 features."""
    x = torch.from_numpy(clips).to(device, non_blocking=True)
    x = x.permute(0, 4, 1, 2, 3).float().div_(255.0)  # (b, 3, L, H, W) in [0, 1]
    with torch.inference_mode():
        feats = backbone.clip_features(x)
    return feats.float().cpu().numpy()


def _write_video(out_dir: str, stem: str, feats: List[np.ndarray], dim: int) -> int:
    array = np.concatenate(feats, axis=0) if feats else np.zeros((0, dim), np.float32)
    with atomic_open(os.path.join(out_dir, stem + ".npy"), "wb") as fh:
        np.save(fh, np.ascontiguousarray(array, dtype=np.float32))
    return int(array.shape[0])


def _already_done(manifest: Manifest, out_dir: str, stem: str, path: str) -> bool:
    """The manifest has ``stem`` with these settings and its .npy holds the recorded features."""
    if not manifest.is_done(stem, os.path.getsize(path)):
        return False
    npy = os.path.join(out_dir, stem + ".npy")
    try:
        shape = np.load(npy, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError):
        return False
    return len(shape) == 2 and shape[0] == manifest.videos[stem]["num_features"]


@dataclass
class _Run:
    """State of one extraction run shared by its steps."""

    out_dir: str
    manifest: Manifest
    manifest_path: str
    backbone: VideoBackbone
    device: torch.device
    paths: Dict[str, str]
    infos: Dict[str, VideoInfo]
    estimates: Dict[str, int]
    result: ExtractResult
    progress: Optional[Progress] = None


def _fail(run: _Run, stem: str, reason: str) -> None:
    run.result.failed[run.paths[stem]] = reason
    run.manifest.failed[stem] = {"source": run.paths[stem], "reason": reason}
    run.manifest.videos.pop(stem, None)
    run.manifest.save(run.manifest_path)


def _finish(run: _Run, stem: str, parts: List[np.ndarray], padded: bool,
            stats: DecodeStats) -> None:
    s = run.manifest.settings
    count = _write_video(run.out_dir, stem, parts, s["feature_dim"])
    assert count == num_clips(stats.output_frames, s["clip_len"], s["stride"]), (stem, count)
    path = run.paths[stem]
    run.manifest.videos[stem] = {
        "source": path, "source_bytes": os.path.getsize(path),
        "decoded_frames": stats.decoded_frames, "sampled_frames": stats.output_frames,
        "duration_s": run.infos[stem].duration_s, "last_frame_time_s": stats.last_time_s,
        "num_features": count, "padded": bool(padded), "feature_file": stem + ".npy",
        "settings_hash": run.manifest.hash}
    run.manifest.failed.pop(stem, None)
    run.manifest.save(run.manifest_path)
    run.result.extracted.append(stem)


def _consume(run: _Run, items: "queue.Queue") -> None:
    """Runs the network on the producer's batches and finishes / fails each video."""
    current, parts, padded, index = None, [], False, 0
    while True:
        kind, stem, *rest = items.get()
        if kind == "done":
            return
        if kind == "fatal":
            raise rest[0]
        if stem != current:
            current, parts, padded, index = stem, [], False, index + 1
            run.progress.start_video(index, Path(run.paths[stem]).name, run.estimates[stem])
        if kind == "batch":
            _first, clips, pad = rest
            parts.append(_run_network(run.backbone, clips, run.device))
            padded = padded or pad
            run.progress.advance(len(clips))
        elif kind == "end":
            _finish(run, stem, parts, padded, rest[0])
            run.progress.end_video("done" + (" (shorter than one clip: padded)" if padded else ""))
        else:
            _fail(run, stem, rest[0])
            run.progress.end_video(f"FAILED: {rest[0]}")


def _probe_all(run: _Run, stems: List[str], fps: float, clip_len: int, stride: int) -> List[str]:
    """Probes every video to do (header only); broken ones fail here. Returns the good stems."""
    good = []
    for stem in stems:
        try:
            info = probe_video(run.paths[stem])
        except (VideoError, FileNotFoundError, OSError) as exc:
            _fail(run, stem, str(exc))
            continue
        run.infos[stem] = info
        run.estimates[stem] = _estimated_clips(info, fps, clip_len, stride)
        good.append(stem)
    return good


def extract_features(videos: Sequence[Union[str, Path]], out_dir: Union[str, Path],
                     backbone: VideoBackbone, fps: float = 30.0, clip_len: int = 16,
                     stride: int = 4, size: Optional[int] = None, batch_size: int = 8,
                     device: Union[str, torch.device, None] = "cpu",
                     log: Optional[TextIO] = None, progress_interval_s: float = 2.0
                     ) -> ExtractResult:
    """Extracts one ``(T, C)`` float32 ``<stem>.npy`` per video into ``out_dir`` + the manifest.

    Args:
        videos: video files and / or folders (their files with a video extension).
        out_dir: output folder (created); holds the features and ``manifest.json``.
        backbone: a ``VideoBackbone`` (``libs.video.make_backbone``).
        fps: frames per second the videos are resampled to.
        clip_len, stride: the clip grid (``libs.video.clips``).
        size: crop side in pixels (default: the backbone's ``crop_size``).
        batch_size: clips per network call.
        device: where the network runs (resolved by ``libs.utils.device.resolve_device``).
        log: progress and messages (default: stderr).
        progress_interval_s: least time between two progress lines.

    Returns:
        ``ExtractResult``; ``result.failed`` maps each broken video to its reason (the others
        are extracted all the same).
    """
    log = log if log is not None else sys.stderr
    if not fps > 0 or batch_size < 1:
        raise ValueError(f"fps must be > 0 and batch_size >= 1, got fps {fps}, "
                         f"batch_size {batch_size}")
    num_clips(1, clip_len, stride)  # validates the grid
    if clip_len < backbone.min_frames:
        raise ValueError(f"--clip-len {clip_len}: backbone '{backbone.name}' needs clips of at "
                         f"least {backbone.min_frames} frames")
    frames = frame_size_for(backbone, size)
    paths = {Path(p).stem: p for p in list_videos(videos)}
    out_dir = str(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, MANIFEST_NAME)
    settings = make_settings(backbone, fps, clip_len, stride, frames)
    manifest = _open_manifest(manifest_path, settings, log)
    torch_device = resolve_device(str(device) if device is not None else None)
    backbone = backbone.to(torch_device).eval()
    run = _Run(out_dir, manifest, manifest_path, backbone, torch_device, paths, {}, {},
               ExtractResult(manifest_path=manifest_path, manifest=manifest))
    todo = []
    for stem in paths:
        if _already_done(manifest, out_dir, stem, paths[stem]):
            run.result.skipped.append(stem)
        else:
            todo.append(stem)
    todo = _probe_all(run, todo, fps, clip_len, stride)
    run.progress = Progress(sum(run.estimates[s] for s in todo), len(todo), log,
                            progress_interval_s)
    if todo:
        _extract(run, [(s, paths[s]) for s in todo], fps, frames, clip_len, stride, batch_size)
    manifest.save(manifest_path)
    return run.result


def _extract(run: _Run, jobs: List[Tuple[str, str]], fps: float, frames: FrameSize,
             clip_len: int, stride: int, batch_size: int) -> None:
    """Decodes in a background thread while ``_consume`` runs the network in this one."""
    items: "queue.Queue" = queue.Queue(maxsize=QUEUE_BATCHES)
    stop = threading.Event()
    worker = threading.Thread(target=_decode_jobs, name="video-decode", daemon=True,
                              args=(jobs, fps, frames, clip_len, stride, batch_size, items, stop))
    worker.start()
    try:
        _consume(run, items)
    finally:
        stop.set()
        worker.join(timeout=10.0)
