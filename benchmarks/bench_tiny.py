"""Per-iteration time of a tiny model: the original's procedure vs this project's (issue 8,
item 3, and item 2 on small models).

Model: the conformance tiny THUMOS config (tests/assets/conformance/tiny_thumos.yaml: input_dim 32,
5 classes, 6 levels, window 9, its opt / train_cfg) widened to 64 channels (embd, fpn, head).
60 synthetic videos with lengths uniform in [300, 1500] (seeded), batch 2: 30 iterations per
epoch. One iteration = the full training step: zero_grad, forward, backward, clip_grad_norm
(1.0), AdamW step, LR-scheduler step, EMA update.

Two regimes:
  * ``short``: max_seq_len 256 (the tiny config's): every video is cropped to 256 steps as the
    training data loader does (libs.datasets.data_utils.truncate_feats, seeded, done once so
    every mode sees the same crops): all batches are full, padding cannot help and the time
    is per-operator overhead;
  * ``long``: max_seq_len 1,536 (the smallest multiple of the max_div_factor 256 that holds
    the longest video): whole videos, the original pads every batch to 1,536.

Modes (benchmarks/_common.py): ``faithful`` (the original's procedure), ``overhead`` (fast
per-iteration code, original padding) and ``fast`` (the defaults). Every mode starts from the
same weights with the same seed; modes are interleaved and the best of ``--repeats`` epochs is
kept (the first epoch warms up and is printed separately: it includes oneDNN planning a kernel
for each new length). Checked: the first iteration's loss equal across modes (rtol 1e-5), the
losses of all iterations and the weights after the epoch close (the fused optimizer rounds
differently: ulp-level drift).

Usage: python benchmarks/bench_tiny.py [--repeats N] [--regimes short,long] [--threads N]
       [--json]
"""
from __future__ import annotations

import argparse
import copy
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (CONFORMANCE, TRAIN_MODES, add_common_args, apply_threads,  # noqa: E402
                     compare_to_faithful, machine_line, make_video, run_epochs, write_json)
from libs.core import load_config  # noqa: E402
from libs.datasets.data_utils import truncate_feats  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402

NUM_VIDEOS, T_MIN, T_MAX, BATCH = 60, 300, 1500, 2
REGIMES = {"short": 256, "long": 1536}


def build_model(cfg, max_seq_len: int):
    model_cfg = copy.deepcopy(cfg["model"])
    model_cfg.update(embd_dim=64, fpn_dim=64, head_dim=64, max_seq_len=max_seq_len)
    torch.manual_seed(0)
    return make_meta_arch(cfg["model_name"], **model_cfg)


def make_batches(cfg, max_seq_len: int):
    g = torch.Generator().manual_seed(0)
    C, K = cfg["model"]["input_dim"], cfg["model"]["num_classes"]
    lengths = torch.randint(T_MIN, T_MAX + 1, (NUM_VIDEOS,), generator=g).tolist()
    videos = [make_video(T, C, g, num_classes=K, max_actions=7, name=f"tiny{i}_")
              for i, T in enumerate(lengths)]
    if max_seq_len < T_MAX:
        ds = cfg["dataset"]
        offset = 0.5 * ds["num_frames"] / ds["feat_stride"]
        random.seed(0)  # truncate_feats draws from Python's random module
        videos = [truncate_feats(v, max_seq_len, ds["trunc_thresh"], offset,
                                 ds["crop_ratio"]) for v in videos]
    return [videos[i:i + BATCH] for i in range(0, NUM_VIDEOS, BATCH)]


def run_regime(cfg, name: str, max_seq_len: int, repeats: int):
    base = build_model(cfg, max_seq_len)
    batches = make_batches(cfg, max_seq_len)
    lens = [[v["feats"].shape[-1] for v in b] for b in batches]
    positions = {rule: sum(base.padded_length(b, rule) * len(b) for b in lens)
                 for rule in ("original", "minimal")}
    results = run_epochs(base, cfg, batches, TRAIN_MODES, repeats)
    checks = compare_to_faithful(results)
    ref = results["faithful"]["best"]
    print(f"\n[{name}] max_seq_len {max_seq_len}: {len(batches)} iterations of batch {BATCH}, "
          f"sum of steps {sum(map(sum, lens)):,}")
    print(f"{'mode':<10} {'s / iter':>9} {'warm-up':>9} {'ratio':>7} {'positions':>10} "
          f"{'max loss rel':>13} {'max |dw|':>9}")
    rows = {}
    for mode, r in results.items():
        pos = positions["minimal" if mode == "fast" else "original"]
        c = checks[mode]
        print(f"{mode:<10} {r['best']:>9.4f} {r['warmup']:>9.4f} {ref / r['best']:>6.2f}x "
              f"{pos:>10,} {c['max_loss_rel']:>13.1e} {c['max_weight_diff']:>9.1e}")
        rows[mode] = dict(seconds_per_iter=r["best"], warmup_seconds_per_iter=r["warmup"],
                          ratio=ref / r["best"], positions=pos, **c)
    for mode, c in checks.items():
        if c["first_loss_rel"] > 1e-5 or c["max_loss_rel"] > 1e-3:
            raise SystemExit(f"[{name}] {mode}: losses differ from faithful ({c})")
    first = max(c["first_loss_rel"] for c in checks.values())
    worst = max(c["max_loss_rel"] for c in checks.values())
    print(f"check: first-iteration loss equal to faithful within {first:.1e} (rtol 1e-5), "
          f"all {len(batches)} iterations within {worst:.1e} (rtol 1e-3)")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs (best kept)")
    parser.add_argument("--regimes", default="short,long", help="comma list of short,long")
    add_common_args(parser)
    args = parser.parse_args()
    apply_threads(args)
    cfg = load_config(str(CONFORMANCE / "tiny_thumos.yaml"))
    print(machine_line())
    print(f"tiny model: 64 channels, {NUM_VIDEOS} videos T in [{T_MIN}, {T_MAX}], batch {BATCH}")
    out = {}
    for name in args.regimes.split(","):
        out[name] = run_regime(cfg, name, REGIMES[name], args.repeats)
    if args.json:
        write_json("bench_tiny", {"regimes": out})


if __name__ == "__main__":
    main()
