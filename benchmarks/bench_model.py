"""CPU benchmark of the full THUMOS (thumos_i3d) model and of the local attention.

Measures, in one run:
  * seconds per training step: batch 2 x 2,304 x 2,048 features, forward + backward + AdamW;
  * seconds per inference forward of one video at T = 2,304 and T = 9,216 (network and
    decoding; NMS + seconds conversion when libs.ops is importable);
  * peak resident memory after each phase (ru_maxrss: a running high-water mark);
  * the banded local attention (libs.modeling.attention.local_window_attention) against a
    dense O(T^2) masked attention with the same semantics (the in-run baseline), including a
    check that both give the same output.

The original's published anchors (4.11 s / train step, 0.62 s / 2.70 s inference) were
measured elsewhere; ratios against them are indicative only. JSON goes to
benchmarks/results/ only.

Usage: python benchmarks/bench_model.py [--repeats N] [--warmup N] [--skip-train]
       [--skip-long] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, peak_rss_mb  # noqa: E402
from _common import best_time as timeit  # noqa: E402
from libs.core import load_config  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402
from libs.modeling.attention import local_window_attention  # noqa: E402

ORIGINAL_ANCHORS = {"train_step": 4.11, "infer_2304": 0.62, "infer_9216": 2.70}


def make_video(T: int, C: int, seed: int, with_gt: bool = True):
    g = torch.Generator().manual_seed(seed)
    item = {"video_id": f"bench_{T}", "feats": torch.randn(C, T, generator=g),
            "fps": 30.0, "duration": T * 4 / 30.0, "feat_stride": 4, "feat_num_frames": 16}
    if with_gt:
        starts = torch.rand(12, generator=g) * (T - 200)
        lengths = 5 + torch.rand(12, generator=g) * 150
        item["segments"] = torch.stack([starts, starts + lengths], dim=1)
        item["labels"] = torch.randint(0, 20, (12,), generator=g)
    return item


def dense_band_attention(q, k, v, kv_mask, w):
    """Same semantics as local_window_attention via a full T x T score matrix."""
    T = q.shape[2]
    scores = q @ k.transpose(-1, -2)
    idx = torch.arange(T)
    band = (idx[None, :] - idx[:, None]).abs() <= w
    scores = scores + torch.where(kv_mask[:, None, None, :], 0.0, -1e4)
    scores = scores.masked_fill(~band, float("-inf"))
    probs = torch.softmax(scores, dim=-1) * kv_mask[:, None, :, None]
    return probs @ v


def bench_attention(args, rows):
    B, nh, T, hs, w = 2, 4, 2304, 128, 9
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, nh, T, hs, generator=g) for _ in range(3))
    kv_mask = torch.arange(T)[None, :] < torch.tensor([T, 1700])[:, None]
    with torch.no_grad():
        banded = local_window_attention(q, k, v, kv_mask, w)
        dense = dense_band_attention(q, k, v, kv_mask, w)
    max_err = (banded - dense).abs().max().item()
    assert max_err < 1e-4, f"banded and dense attention disagree: {max_err}"
    with torch.no_grad():
        t_band = timeit(lambda: local_window_attention(q, k, v, kv_mask, w),
                        args.repeats, args.warmup)
        t_dense = timeit(lambda: dense_band_attention(q, k, v, kv_mask, w),
                         args.repeats, args.warmup)
    rows.append(("local attention fwd (banded) [B2 nh4 T2304 hs128 w9]", t_band, t_dense,
                 f"dense baseline {t_dense:.4f} s; max |diff| {max_err:.1e}"))

    def fwd_bwd(fn):
        qq, kk, vv = (x.clone().requires_grad_() for x in (q, k, v))
        fn(qq, kk, vv, kv_mask, w).sum().backward()

    t_band_b = timeit(lambda: fwd_bwd(local_window_attention), args.repeats, args.warmup)
    t_dense_b = timeit(lambda: fwd_bwd(dense_band_attention), args.repeats, args.warmup)
    rows.append(("local attention fwd+bwd (banded)", t_band_b, t_dense_b,
                 f"dense baseline {t_dense_b:.4f} s"))


def bench_model(args, rows):
    cfg = load_config(str(ROOT / "configs" / "thumos_i3d.yaml"))
    torch.manual_seed(0)
    model = make_meta_arch(cfg["model_name"], **cfg["model"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"thumos_i3d model: {n_params:,} parameters")
    C = cfg["model"]["input_dim"]

    try:
        import libs.ops  # noqa: F401
        from libs.ops import batched_nms  # noqa: F401
        full = True
    except ImportError:
        full = False
    model.eval()
    lengths = [2304] if args.skip_long else [2304, 9216]
    for T in lengths:
        item = make_video(T, C, seed=T, with_gt=False)
        with torch.no_grad():
            if full:
                t = timeit(lambda: model([item]), args.repeats, args.warmup)
                what = "network + decoding + NMS"
            else:
                t = timeit(lambda: model.forward_features([item]), args.repeats, args.warmup)
                what = "network only (libs.ops missing)"
        anchor = ORIGINAL_ANCHORS[f"infer_{T}"]
        rows.append((f"inference forward T={T}", t, anchor,
                     f"{what}; original anchor {anchor} s; peak RSS {peak_rss_mb():.0f} MB"))

    if not args.skip_train:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        batch = [make_video(2304, C, seed=1), make_video(2304, C, seed=2)]

        def step():
            opt.zero_grad(set_to_none=True)
            losses = model(batch)
            losses["final_loss"].backward()
            opt.step()

        t = timeit(step, args.repeats, args.warmup)
        anchor = ORIGINAL_ANCHORS["train_step"]
        rows.append(("train step B=2 T=2304 C=2048 (fwd+bwd+AdamW)", t, anchor,
                     f"original anchor {anchor} s; peak RSS {peak_rss_mb():.0f} MB"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (min kept)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-long", action="store_true", help="skip T = 9,216 inference")
    parser.add_argument("--skip-model", action="store_true", help="attention only")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"repeats {args.repeats}, warmup {args.warmup}")

    rows = []
    bench_attention(args, rows)
    if not args.skip_model:
        bench_model(args, rows)

    print(f"\n{'case':<58} {'seconds':>9} {'baseline':>9} {'ratio':>7}  notes")
    for name, t, base, note in rows:
        print(f"{name:<58} {t:>9.4f} {base:>9.4f} {base / t:>6.2f}x  {note}")
    print(f"\npeak RSS of the process: {peak_rss_mb():.0f} MB "
          "(ratio = baseline / ours: > 1 means ours is faster)")
    if args.json:
        out_dir = ROOT / "benchmarks" / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "bench_model.json"
        path.write_text(json.dumps(
            {"torch": torch.__version__, "threads": torch.get_num_threads(),
             "rows": [{"case": n, "seconds": t, "baseline": b, "note": s}
                      for n, t, b, s in rows], "peak_rss_mb": peak_rss_mb()}, indent=2))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
