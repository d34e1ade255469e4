"""Per-iteration time of a tiny model: minimal padding vs the original rule (issue 8, item 3).

The model is the conformance tiny THUMOS config (shared/conformance/tiny_thumos.yaml:
input_dim 32, 5 classes, 6 levels, window 9) with embd/fpn/head dims 64 and max_seq_len 1,536
(the smallest multiple of its max_div_factor 256 that holds the longest video). 60 synthetic
videos with lengths uniform in [300, 1500] (seeded), batch 2 (the config's), so 30 iterations
per epoch. One iteration = forward + backward + clip_grad_norm(1.0) + AdamW step
(libs.engine.make_optimizer, the config's opt section).

Both rules run from the same initial weights and the same seeds; the benchmark checks that the
losses of every iteration agree (rtol 1e-5) and that the weights after the epoch agree. It
prints the mean seconds per iteration (best of ``--repeats`` epochs), the positions computed
and the ratio.

Usage: python benchmarks/bench_tiny.py [--repeats N] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from libs.core import load_config  # noqa: E402
from libs.engine.optim import make_optimizer  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402

SHARED = Path(os.environ.get("ACTIONFORMER_SHARED", ROOT.parent / "shared"))
NUM_VIDEOS, T_MIN, T_MAX, BATCH, MAX_SEQ_LEN = 60, 300, 1500, 2, 1536


def build_model(cfg):
    model_cfg = copy.deepcopy(cfg["model"])
    model_cfg.update(embd_dim=64, fpn_dim=64, head_dim=64, max_seq_len=MAX_SEQ_LEN)
    torch.manual_seed(0)
    return make_meta_arch(cfg["model_name"], **model_cfg)


def make_videos(C: int, K: int):
    g = torch.Generator().manual_seed(0)
    videos = []
    for i in range(NUM_VIDEOS):
        T = int(torch.randint(T_MIN, T_MAX + 1, (1,), generator=g))
        n = int(torch.randint(1, 8, (1,), generator=g))
        starts = torch.rand(n, generator=g) * (T - 60)
        segs = torch.stack([starts, starts + 4 + torch.rand(n, generator=g) * 50], dim=1)
        videos.append({"video_id": f"tiny_{i}", "feats": torch.randn(C, T, generator=g),
                       "segments": segs, "labels": torch.randint(0, K, (n,), generator=g),
                       "fps": 30.0, "duration": T * 4 / 30.0, "feat_stride": 4,
                       "feat_num_frames": 16})
    return videos


def run_epoch(model, optimizer, batches, clip):
    losses = []
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        out = model(batch)
        out["final_loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        losses.append(out["final_loss"].detach())
    return time.perf_counter() - start, torch.stack(losses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed epochs (best kept)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = load_config(str(SHARED / "conformance" / "tiny_thumos.yaml"))
    base = build_model(cfg)
    videos = make_videos(cfg["model"]["input_dim"], cfg["model"]["num_classes"])
    batches = [videos[i:i + BATCH] for i in range(0, NUM_VIDEOS, BATCH)]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; tiny model "
          f"{sum(p.numel() for p in base.parameters()):,} parameters, max_seq_len "
          f"{MAX_SEQ_LEN}, {NUM_VIDEOS} videos T in [{T_MIN}, {T_MAX}], batch {BATCH}")

    results = {}
    for padding in ("original", "minimal"):
        best, losses, state = float("inf"), None, None
        for rep in range(args.repeats + 1):  # the first epoch warms up
            model = copy.deepcopy(base).train()
            model.padding = padding
            optimizer = make_optimizer(model, cfg["opt"])
            torch.manual_seed(1)
            seconds, losses = run_epoch(model, optimizer, batches,
                                        cfg["train_cfg"]["clip_grad_l2norm"])
            if rep > 0:
                best = min(best, seconds)
            state = {k: v.clone() for k, v in model.state_dict().items()}
        positions = sum(model.padded_length([v["feats"].shape[-1] for v in b], padding)
                        * len(b) for b in batches)
        results[padding] = dict(seconds=best / len(batches), losses=losses, state=state,
                                positions=positions)

    o, m = results["original"], results["minimal"]
    torch.testing.assert_close(m["losses"], o["losses"], rtol=1e-5, atol=1e-6)
    worst = max(((m["state"][k] - o["state"][k]).abs().max().item() for k in o["state"]))
    print(f"\n{'padding':<10} {'s / iter':>9} {'positions / epoch':>18}")
    for name, r in results.items():
        print(f"{name:<10} {r['seconds']:>9.4f} {r['positions']:>18,}")
    ratio = o["seconds"] / m["seconds"]
    print(f"\nspeed-up minimal vs original: {ratio:.2f}x per iteration; "
          f"losses of all {len(batches)} iterations agree (rtol 1e-5), "
          f"max |weight diff| after the epoch {worst:.1e}")
    if args.json:
        out_dir = ROOT / "benchmarks" / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "bench_tiny.json"
        path.write_text(json.dumps({
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "seconds_per_iter": {k: r["seconds"] for k, r in results.items()},
            "positions": {k: r["positions"] for k, r in results.items()},
            "ratio": ratio, "max_weight_diff": worst}, indent=2))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
