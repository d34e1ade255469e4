"""Feature extraction: the pipeline (decode once, background thread) against the naive procedure.

Generated videos (30 fps, 29.97 fps and variable rate; keyframe every 12 frames, like real
encodes) are extracted twice on the same backbone and clip grid:

* ``pipeline``: ``libs.video.extract_features``: each video decoded once, front to back, in a
  background thread while the network runs;
* ``naive``: for every clip, seek to its window and decode it again (from the keyframe before
  it), then the same network on the same batches of clips.

Printed: source frames decoded per second, clips per second, the share of the wall time in the
network and in decoding, and whether the two procedures give identical features (they must:
same frames, same batches). A decode-only pass gives the pipeline decoder's own speed.

Usage: python benchmarks/bench_extract.py [--videos N] [--seconds S] [--backbone NAME]
    [--size PX] [--clip-len N] [--stride S] [--batch-size B] [--threads N] [--json]
JSON (with --json) goes to benchmarks/results/bench_extract.json.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Tuple

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import (add_common_args, apply_threads, machine_line,  # noqa: E402
                                write_json)
from libs.video import make_backbone  # noqa: E402
from libs.video.clips import clip_batches  # noqa: E402
from libs.video.decode import (TIME_EPS_S, DecodeStats, FrameSize, decode_frames,  # noqa: E402
                               frame_to_rgb, prefer_earlier)
from libs.video.extract import extract_features, frame_size_for  # noqa: E402
from tests.video._videos import make_video  # noqa: E402

SOURCES = [(Fraction(30), False), (Fraction(30000, 1001), False), (Fraction(30), True)]


class _TimedNetwork:
    """Wraps ``backbone.clip_features`` to add up the seconds spent in the network."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        self.seconds = 0.0
        self._inner = backbone.clip_features
        backbone.clip_features = self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self._inner(x)
        self.seconds += time.perf_counter() - start
        return out


def _make_videos(folder: Path, count: int, seconds: float, size: Tuple[int, int]) -> List[str]:
    paths = []
    for i in range(count):
        fps, vfr = SOURCES[i % len(SOURCES)]
        path = folder / f"video{i}.mp4"
        make_video(path, seconds, fps=fps, vfr=vfr, size=size, pattern="noise", gop=12)
        paths.append(str(path))
    return paths


def _decode_only(paths: List[str], fps: float, frames: FrameSize, args) -> Dict[str, float]:
    start, decoded = time.perf_counter(), 0
    for path in paths:
        stats = DecodeStats()
        for _ in clip_batches(decode_frames(path, fps, frames, stats), args.clip_len,
                              args.stride, args.batch_size):
            pass
        decoded += stats.decoded_frames
    wall = time.perf_counter() - start
    return {"wall_s": wall, "decoded_frames": decoded, "decoded_fps": decoded / wall}


class _Seeker:
    """Naive window decoding: seek before a clip's first frame, decode until its last."""

    def __init__(self, path: str, fps: float, frames: FrameSize) -> None:
        self.path, self.fps, self.frames = path, fps, frames
        self.container = av.open(path)
        self.stream = self.container.streams.video[0]
        self.period_s = 1.0 / float(self.stream.average_rate)
        first = next(self.container.decode(self.stream))
        self.first_pts, self.tb = first.pts, first.time_base
        self.decoded = 1

    def _frames_from(self, t_s: float):
        pts = self.first_pts + int(max(0.0, t_s) / self.tb)
        self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        prev = None
        for frame in self.container.decode(self.stream):
            self.decoded += 1
            t = float((frame.pts - self.first_pts) * self.tb)
            if prev is not None and t <= prev:
                continue
            prev = t
            yield t, frame

    def clip(self, first_k: int, clip_len: int) -> np.ndarray:
        """(clip_len, H, W, 3) frames k = first_k .. first_k + clip_len - 1, nearest rule."""
        out, prev = [], None
        k, last_k = first_k, first_k + clip_len - 1
        for t, frame in self._frames_from(first_k / self.fps - 2 * self.period_s):
            while k <= last_k and k / self.fps <= t + TIME_EPS_S:
                earlier = prev is not None and prefer_earlier(k / self.fps, prev[0], t)
                out.append(frame_to_rgb(prev[1] if earlier else frame, self.frames, self.path))
                k += 1
            if k > last_k:
                break
            prev = (t, frame)
        return np.stack(out)

    def close(self) -> None:
        self.container.close()


def _naive(paths: List[str], counts: Dict[str, int], backbone, fps: float, frames: FrameSize,
           args) -> Tuple[Dict[str, float], Dict[str, np.ndarray]]:
    """Every clip's window decoded again; the network on the pipeline's batches of clips."""
    timed = _TimedNetwork(backbone)
    start, decode_s, decoded, feats = time.perf_counter(), 0.0, 0, {}
    for path in paths:
        seeker, parts = _Seeker(path, fps, frames), []
        num = counts[Path(path).stem]
        for first in range(0, num, args.batch_size):
            t0 = time.perf_counter()
            clips = np.stack([seeker.clip(i * args.stride, args.clip_len)
                              for i in range(first, min(num, first + args.batch_size))])
            decode_s += time.perf_counter() - t0
            x = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float().div_(255.0)
            with torch.inference_mode():
                parts.append(backbone.clip_features(x).float().numpy())
        decoded += seeker.decoded
        seeker.close()
        feats[Path(path).stem] = np.concatenate(parts)
    wall = time.perf_counter() - start
    backbone.clip_features = timed._inner
    return {"wall_s": wall, "decoded_frames": decoded, "network_s": timed.seconds,
            "decode_s": decode_s}, feats


def _pipeline(paths: List[str], out_dir: str, backbone, fps: float, args
              ) -> Tuple[Dict[str, float], Dict[str, np.ndarray], Dict[str, int]]:
    timed = _TimedNetwork(backbone)
    start = time.perf_counter()
    result = extract_features(paths, out_dir, backbone, fps=fps, clip_len=args.clip_len,
                              stride=args.stride, size=args.size, batch_size=args.batch_size,
                              device="cpu", log=io.StringIO())
    wall = time.perf_counter() - start
    backbone.clip_features = timed._inner
    videos = result.manifest.videos
    feats = {stem: np.load(Path(out_dir) / f"{stem}.npy") for stem in videos}
    decoded = sum(v["decoded_frames"] for v in videos.values())
    return ({"wall_s": wall, "decoded_frames": decoded, "network_s": timed.seconds,
             "decode_s": wall - timed.seconds},
            feats, {stem: v["num_features"] for stem, v in videos.items()})


def _row(name: str, r: Dict[str, float], clips: int) -> str:
    wall = r["wall_s"]
    return (f"{name:<10} {wall:8.2f} {clips / wall:9.1f} {r['decoded_frames']:9d} "
            f"{r['decoded_frames'] / wall:10.1f} {100 * r['network_s'] / wall:8.0f}% "
            f"{100 * r['decode_s'] / wall:8.0f}%")


def _warm_up(backbone, args) -> None:
    """One untimed network call per batch size the runs use (kernels planned before timing)."""
    side = args.size or backbone.crop_size
    for batch in sorted({args.batch_size, 1}):
        with torch.inference_mode():
            backbone.clip_features(torch.zeros(batch, 3, args.clip_len, side, side))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", type=int, default=3, help="generated videos (3)")
    p.add_argument("--seconds", type=float, default=3.0, help="length of each video (3)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--backbone", default="r3d_18", help="backbone, random weights (r3d_18)")
    p.add_argument("--size", type=int, default=32, help="crop side in pixels (32)")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--clip-len", type=int, default=16)
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    add_common_args(p)
    args = p.parse_args(argv)
    apply_threads(args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backbone = make_backbone(args.backbone, weights="none")
    frames = frame_size_for(backbone, args.size)
    _warm_up(backbone, args)
    with tempfile.TemporaryDirectory() as tmp:
        paths = _make_videos(Path(tmp), args.videos, args.seconds, (args.width, args.height))
        dec = _decode_only(paths, args.fps, frames, args)
        pipe, pipe_feats, counts = _pipeline(paths, str(Path(tmp) / "out"), backbone,
                                             args.fps, args)
        naive, naive_feats = _naive(paths, counts, backbone, args.fps, frames, args)
    clips = sum(counts.values())
    same = all(np.array_equal(pipe_feats[s], naive_feats[s]) for s in counts)
    print(machine_line())
    print(f"{args.videos} generated videos of {args.seconds:g} s at {args.width}x{args.height} "
          f"(30, 29.97, variable fps; keyframe every 12), {args.backbone} at {args.size} px, "
          f"{args.fps:g} fps, clip {args.clip_len}, stride {args.stride}, batch "
          f"{args.batch_size}: {clips} clips")
    print(f"decode only (pipeline decoder): {dec['decoded_fps']:.1f} source frames/s")
    print(f"{'procedure':<10} {'wall s':>8} {'clips/s':>9} {'decoded':>9} {'decoded/s':>10} "
          f"{'network':>9} {'decoding':>9}")
    print(_row("pipeline", pipe, clips) + "   (decoding: time not in the network)")
    print(_row("naive", naive, clips))
    print(f"speed-up of the pipeline: {naive['wall_s'] / pipe['wall_s']:.2f}x")
    print(f"check: features identical in both procedures: {'yes' if same else 'NO'}")
    if args.json:
        write_json("bench_extract", {"settings": vars(args), "clips": clips, "decode_only": dec,
                                     "pipeline": pipe, "naive": naive, "identical": same})
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
