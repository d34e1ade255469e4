"""C++ (``libs.ops._C``) against pure-PyTorch NMS, through the public ``batched_nms``.

Three realistic post-processing workloads per video, with the configs' test_cfg values:

* THUMOS14 (thumos_i3d): 20 classes, 2,000 candidates, multiclass Gaussian Soft-NMS
  (iou 0.1, sigma 0.5, min_score 0.001, max_seg_num 200);
* EPIC-Kitchens noun (epic_slowfast_noun): 300 classes, 5,000 candidates, multiclass
  Soft-NMS (sigma 0.4, max_seg_num 2,000);
* ActivityNet (anet_i3d): 1 class, 2,000 candidates, class-agnostic Soft-NMS (sigma 0.75,
  max_seg_num 100) with segment voting (0.9).

Candidates mimic the decoder's output: centres uniform over the video, log-uniform lengths,
scores skewed towards small sigmoid probabilities (above pre_nms_thresh 0.001). Each workload
runs on ``--videos`` random videos; the C++ backend is the baseline of the ratio. Outputs of
the two backends are checked (same labels, segments and scores within 1e-6).

Usage: python benchmarks/bench_nms.py [--videos N] [--threads N] [--json]
JSON (with --json) goes to benchmarks/results/bench_nms.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.ops import batched_nms, extension_available, nms_backend  # noqa: E402

WORKLOADS = {
    "THUMOS (20 cls, 2000 cand, multiclass soft)": dict(
        num_classes=20, num_cands=2000, grid=2304, nms=dict(
            iou_threshold=0.1, min_score=0.001, max_seg_num=200, use_soft_nms=True,
            multiclass=True, sigma=0.5, voting_thresh=0.7)),
    "EPIC noun (300 cls, 5000 cand, multiclass soft)": dict(
        num_classes=300, num_cands=5000, grid=2304, nms=dict(
            iou_threshold=0.1, min_score=0.001, max_seg_num=2000, use_soft_nms=True,
            multiclass=True, sigma=0.4, voting_thresh=0.75)),
    "ANet (1 cls, 2000 cand, agnostic soft + voting)": dict(
        num_classes=1, num_cands=2000, grid=192, nms=dict(
            iou_threshold=0.1, min_score=0.001, max_seg_num=100, use_soft_nms=True,
            multiclass=False, sigma=0.75, voting_thresh=0.9)),
}


def make_video(num_classes: int, num_cands: int, grid: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    center = torch.rand(num_cands, generator=g) * grid
    length = torch.exp(torch.empty(num_cands).uniform_(0.0, 1.0, generator=g)
                       * torch.log(torch.tensor(grid / 4.0))) * 2.0
    segs = torch.stack([center - length / 2, center + length / 2], dim=1)
    scores = 0.001 + 0.999 * torch.rand(num_cands, generator=g) ** 4
    labels = torch.randint(0, num_classes, (num_cands,), generator=g)
    return segs, scores, labels


def run_backend(backend: str, videos, nms_args):
    os.environ["ACTIONFORMER_NMS_BACKEND"] = backend
    assert nms_backend() == backend
    outs, times = [], []
    for segs, scores, labels in videos:
        start = time.perf_counter()
        outs.append(batched_nms(segs, scores, labels, **nms_args))
        times.append(time.perf_counter() - start)
    return outs, times


def same(outs_a, outs_b) -> bool:
    for a, b in zip(outs_a, outs_b):
        if not torch.equal(a[2], b[2]):
            return False
        for x, y in zip(a[:2], b[:2]):
            if x.shape != y.shape or not torch.allclose(x, y, rtol=0, atol=1e-6):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=3, help="random videos per workload")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not extension_available():
        sys.exit("libs.ops._C is not built: nothing to compare (see INSTALL.md)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.videos} videos per workload; seconds per video (mean)")
    header = f"{'workload':<50} {'kept':>6} {'C++ s':>9} {'torch s':>9} {'ratio':>7}  same"
    print(header)
    print("-" * len(header))
    results = {}
    for name, spec in WORKLOADS.items():
        videos = [make_video(spec["num_classes"], spec["num_cands"], spec["grid"], seed)
                  for seed in range(args.videos)]
        run_backend("cpp", videos[:1], spec["nms"])  # warm-up
        cpp_outs, cpp_t = run_backend("cpp", videos, spec["nms"])
        torch_outs, torch_t = run_backend("torch", videos, spec["nms"])
        ok = same(cpp_outs, torch_outs)
        kept = sum(len(o[1]) for o in cpp_outs) / len(cpp_outs)
        c, t = sum(cpp_t) / len(cpp_t), sum(torch_t) / len(torch_t)
        print(f"{name:<50} {kept:>6.0f} {c:>9.4f} {t:>9.4f} {t / c:>6.1f}x  {ok}")
        results[name] = dict(kept=kept, cpp_s=c, torch_s=t, ratio=t / c, identical=ok)
    os.environ.pop("ACTIONFORMER_NMS_BACKEND", None)
    if args.json:
        out = ROOT / "benchmarks" / "results" / "bench_nms.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(),
                                       videos=args.videos, results=results), indent=2))
        print(f"wrote {out.relative_to(ROOT)}")
    if not all(r["identical"] for r in results.values()):
        sys.exit("backends disagree")


if __name__ == "__main__":
    main()
