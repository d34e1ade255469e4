"""THUMOS14 inference: minimal vs original padding, and opt-in bf16 (issue 8, items 1 and 4).

The model is configs/thumos_i3d.yaml (seeded random init; 2,048-d synthetic features). Video
lengths are the real THUMOS14 test lengths: ``floor(duration * 30 / 4)`` feature steps for the
212 ``Test`` videos of shared/data/thumos14/thumos14.json (the features are extracted at
30 fps with stride 4; sum 344,544 steps).

Printed:
  * positions computed for all 212 videos under both rules (original: 579,456);
  * seconds for ``--videos`` of them (evenly spaced in length order; the scale is printed),
    full model([item]) including decoding and NMS, both rules in the same run;
  * the agreement of the detections (conformance tolerances: same count, same label, segment
    within 1e-3 s, score within 1e-4);
  * bf16 autocast vs float32 at T = 2,304 and 9,216: time, max |diff| of the logits, and the
    share of float32 detections matched by the bf16 ones (mAP needs real data: see
    docs/performance.md).

Usage: python benchmarks/bench_inference.py [--videos N] [--skip-bf16] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.core import load_config  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402

SHARED = Path(os.environ.get("ACTIONFORMER_SHARED", ROOT.parent / "shared"))
SEG_TOL, SCORE_TOL = 1e-3, 1e-4


def test_lengths():
    db = json.loads((SHARED / "data" / "thumos14" / "thumos14.json").read_text())["database"]
    return sorted(max(1, math.floor(v["duration"] * 30 / 4))
                  for v in db.values() if v["subset"] == "Test")


def make_item(T: int, C: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return {"video_id": f"v{seed}", "feats": torch.randn(C, T, generator=g), "fps": 30.0,
            "duration": T * 4 / 30.0, "feat_stride": 4, "feat_num_frames": 16}


def matched_share(got, want):
    """Share of ``want`` detections matched one to one by ``got`` within the tolerances."""
    if want["scores"].numel() == 0:
        return 1.0
    seg = (want["segments"][:, None] - got["segments"][None]).abs().amax(-1)
    score = (want["scores"][:, None] - got["scores"][None]).abs()
    ok = ((want["labels"][:, None] == got["labels"][None]) & (seg <= SEG_TOL)
          & (score <= SCORE_TOL))
    used = torch.zeros(ok.shape[1], dtype=torch.bool)
    hits = 0
    for i in range(ok.shape[0]):
        free = (ok[i] & ~used).nonzero().flatten()
        if len(free):
            used[free[torch.argmin(score[i, free] + seg[i, free])]] = True
            hits += 1
    return hits / want["scores"].numel()


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16, help="videos timed (of 212)")
    parser.add_argument("--skip-bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = load_config(str(ROOT / "configs" / "thumos_i3d.yaml"))
    torch.manual_seed(0)
    model = make_meta_arch(cfg["model_name"], **cfg["model"]).eval()
    C = cfg["model"]["input_dim"]
    lengths = test_lengths()
    positions = {p: sum(model.padded_length([t], p) for t in lengths)
                 for p in ("original", "minimal")}
    step = len(lengths) / args.videos
    subset = [lengths[int(i * step + step / 2)] for i in range(args.videos)]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; thumos_i3d, "
          f"{len(lengths)} test videos, sum T = {sum(lengths):,}")
    print(f"positions computed, all {len(lengths)} videos: original {positions['original']:,}"
          f", minimal {positions['minimal']:,} ({positions['original'] / positions['minimal']:.2f}x"
          " fewer)")
    sub_pos = {p: sum(model.padded_length([t], p) for t in subset)
               for p in ("original", "minimal")}
    print(f"timed subset: {len(subset)} videos evenly spaced in length (sum T "
          f"{sum(subset):,}; positions original {sub_pos['original']:,}, minimal "
          f"{sub_pos['minimal']:,})")

    seconds = {"original": 0.0, "minimal": 0.0}
    worst_share = 1.0
    with torch.no_grad():
        model.padding = "minimal"
        model([make_item(subset[0], C, 0)])  # warm-up
        for idx, T in enumerate(subset):
            item = make_item(T, C, idx)
            dets = {}
            for padding in ("original", "minimal"):
                model.padding = padding
                t, (dets[padding],) = timed(lambda: model([item]))
                seconds[padding] += t
            same_count = dets["minimal"]["scores"].shape == dets["original"]["scores"].shape
            share = matched_share(dets["minimal"], dets["original"]) if same_count else 0.0
            worst_share = min(worst_share, share)
    ratio = seconds["original"] / seconds["minimal"]
    print(f"\n{'rule':<10} {'seconds':>9}  (subset, network + decoding + NMS)")
    for name, s in seconds.items():
        print(f"{name:<10} {s:>9.2f}")
    print(f"speed-up minimal vs original: {ratio:.2f}x; detections matched: "
          f"{100 * worst_share:.1f}% (worst video; 100% = identical within tolerances)")

    bf16_rows = []
    if not args.skip_bf16:
        model.padding = "minimal"
        print(f"\n{'bf16 autocast':<16} {'fp32 s':>8} {'bf16 s':>8} {'ratio':>6} "
              f"{'max|dlogit|':>12} {'matched':>8}")
        for T in (2304, 9216):
            item = make_item(T, C, T)
            with torch.no_grad():
                model.bf16_inference = False
                model([item])
                t32, (d32,) = timed(lambda: model([item]))
                f32 = model.forward_features([item], padding="minimal")
                model.bf16_inference = True
                model([item])
                t16, (d16,) = timed(lambda: model([item]))
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    f16 = model.forward_features([item], padding="minimal")
                model.bf16_inference = False
            diff = max((a.float() - b).abs().max().item()
                       for a, b in zip(f16["cls_logits"], f32["cls_logits"]))
            share = matched_share(d16, d32)
            bf16_rows.append(dict(T=T, fp32=t32, bf16=t16, max_logit_diff=diff, matched=share))
            print(f"T={T:<14} {t32:>8.3f} {t16:>8.3f} {t32 / t16:>5.2f}x {diff:>12.4f} "
                  f"{100 * share:>7.1f}%")

    if args.json:
        out_dir = ROOT / "benchmarks" / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "bench_inference.json"
        path.write_text(json.dumps({
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "positions_all": positions, "subset_lengths": subset, "seconds": seconds,
            "ratio": ratio, "worst_matched_share": worst_share, "bf16": bf16_rows}, indent=2))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
