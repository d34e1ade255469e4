"""THUMOS14 training steps: minimal vs original padding (issue 8, item 2).

The model is configs/thumos_i3d.yaml (seeded random init, train mode, drop path 0.1 active;
dropout is 0 in that config, so the minimal rule applies). Batches of 2 videos whose lengths
are drawn (seeded) from the real THUMOS14 ``Validation`` lengths, ``floor(duration * 30 / 4)``,
truncated to max_seq_len 2,304 as training does; synthetic 2,048-d features, 3-12 random
actions each. One step = forward + backward + clip_grad_norm(1.0) + AdamW.

Both rules start from the same weights with the same seeds; the losses of every step must agree
(rtol 1e-5). Printed: positions per epoch for all 200 videos (original 460,800), seconds per
step for the ``--iters`` timed batches, the ratio, and the epoch estimate.

Usage: python benchmarks/bench_train.py [--iters N] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import copy
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
from libs.engine.optim import make_optimizer  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402

SHARED = Path(os.environ.get("ACTIONFORMER_SHARED", ROOT.parent / "shared"))


def train_lengths(max_seq_len: int):
    db = json.loads((SHARED / "data" / "thumos14" / "thumos14.json").read_text())["database"]
    return [min(max_seq_len, max(1, math.floor(v["duration"] * 30 / 4)))
            for v in db.values() if v["subset"] == "Validation"]


def make_video(T: int, C: int, K: int, g: torch.Generator):
    n = int(torch.randint(3, 13, (1,), generator=g))
    starts = torch.rand(n, generator=g) * max(T - 40, 1)
    segs = torch.stack([starts, starts + 2 + torch.rand(n, generator=g) * 80], dim=1)
    return {"video_id": f"v{T}", "feats": torch.randn(C, T, generator=g), "segments": segs,
            "labels": torch.randint(0, K, (n,), generator=g), "fps": 30.0,
            "duration": T * 4 / 30.0, "feat_stride": 4, "feat_num_frames": 16}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20, help="timed steps of batch 2")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/*.json")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = load_config(str(ROOT / "configs" / "thumos_i3d.yaml"))
    torch.manual_seed(0)
    base = make_meta_arch(cfg["model_name"], **cfg["model"]).train()
    C, K = cfg["model"]["input_dim"], cfg["model"]["num_classes"]
    max_seq_len = cfg["model"]["max_seq_len"]
    lengths = train_lengths(max_seq_len)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(lengths), generator=g).tolist()
    epoch_batches = [[lengths[i] for i in order[j:j + 2]] for j in range(0, len(order), 2)]
    positions = {p: sum(base.padded_length(b, p) * len(b) for b in epoch_batches)
                 for p in ("original", "minimal")}
    batches = [[make_video(T, C, K, g) for T in b] for b in epoch_batches[:args.iters + 1]]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; thumos_i3d train, "
          f"{len(lengths)} validation videos (sum of truncated T {sum(lengths):,})")
    print(f"positions per epoch (batch 2): original {positions['original']:,}, minimal "
          f"{positions['minimal']:,} ({positions['original'] / positions['minimal']:.2f}x fewer)")
    timed_pos = {p: sum(base.padded_length([v["feats"].shape[-1] for v in b], p) * len(b)
                        for b in batches[1:]) for p in ("original", "minimal")}

    results = {}
    for padding in ("original", "minimal"):
        model = copy.deepcopy(base)
        model.padding = padding
        optimizer = make_optimizer(model, cfg["opt"])
        torch.manual_seed(1)
        losses, seconds = [], 0.0
        for it, batch in enumerate(batches):
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            out = model(batch)
            out["final_loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if it > 0:  # the first step warms up
                seconds += time.perf_counter() - start
            losses.append(out["final_loss"].detach())
        results[padding] = dict(seconds=seconds / args.iters, losses=torch.stack(losses))
    torch.testing.assert_close(results["minimal"]["losses"], results["original"]["losses"],
                               rtol=1e-5, atol=1e-6)
    ratio = results["original"]["seconds"] / results["minimal"]["seconds"]
    print(f"\ntimed: {args.iters} steps of batch 2 (positions original "
          f"{timed_pos['original']:,}, minimal {timed_pos['minimal']:,})")
    print(f"{'rule':<10} {'s / step':>9} {'epoch estimate (s)':>20}")
    for name, r in results.items():
        print(f"{name:<10} {r['seconds']:>9.3f} {r['seconds'] * len(epoch_batches):>20.0f}")
    print(f"speed-up minimal vs original: {ratio:.2f}x per step on the timed batches; "
          f"losses of all {len(batches)} steps agree (rtol 1e-5)")
    if args.json:
        out_dir = ROOT / "benchmarks" / "results"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "bench_train.json"
        path.write_text(json.dumps({
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "positions_per_epoch": positions, "timed_positions": timed_pos,
            "seconds_per_step": {k: r["seconds"] for k, r in results.items()},
            "ratio": ratio}, indent=2))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
