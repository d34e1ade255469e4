"""THUMOS14 training: the original's procedure vs this project's (issue 8, items 2 and 3).

Model: configs/thumos_i3d.yaml (seeded random init, train mode, drop path 0.1 active; dropout
is 0 in that config, so minimal padding applies). Batches of 2 videos whose lengths are drawn
(seeded random order, as the training loader shuffles) from the real THUMOS14 ``Validation``
lengths, ``floor(duration * 30 / 4)`` truncated to max_seq_len 2,304 as training crops;
synthetic 2,048-d features, 1-12 random actions each. One step = the full training step
(zero_grad, forward, backward, clip_grad_norm 1.0, AdamW, LR scheduler, EMA update).

Modes (benchmarks/_common.py): ``faithful`` (the original's procedure and kernels, original
padding) against ``fast`` (the defaults); ``--modes`` can add ``overhead`` (fast kernels,
original padding). Every mode starts from the same weights and seed; modes are interleaved
step by step over the same batches, each mode in a worker process of its own configured as the
entry points configure it (benchmarks/_workers.py: the fast procedure keeps freed memory and
enlarges the oneDNN cache, the faithful one keeps the defaults as the original; both at the
machine's best CPU ISA); ``--one-process`` runs them all in this process without process
settings. The epoch is 100 batches (all 200 videos); ``--iters``
of them, evenly spaced through the epoch (so the sample has the epoch's length mix; its
positions are printed), are timed after one warm-up step, and the epoch time is estimated as
the mean step time x 100. Checked: the first step's loss equal across modes
(rtol 1e-5) and every step's loss close (rtol 1e-3: the fused optimizer rounds differently).

Usage: python benchmarks/bench_train.py [--iters N (default 20)] [--modes faithful,fast]
       [--one-process] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (ROOT, add_common_args, apply_threads, build_procedure,  # noqa: E402
                     machine_line, make_video, thumos_lengths, write_json)
from _workers import PEAK_RSS, ModeWorker  # noqa: E402
from libs.core import load_config  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402


def plan(iters: int):
    """(cfg, base model, lengths, epoch, timed sample, batches): the same in every process."""
    cfg = load_config(str(ROOT / "configs" / "thumos_i3d.yaml"))
    torch.manual_seed(0)
    base = make_meta_arch(cfg["model_name"], **cfg["model"]).train()
    C, K = cfg["model"]["input_dim"], cfg["model"]["num_classes"]
    lengths = thumos_lengths("Validation", cfg["model"]["max_seq_len"])
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(lengths), generator=g).tolist()
    epoch = [[lengths[i] for i in order[j:j + 2]] for j in range(0, len(order), 2)]
    # timed: every k-th batch of the epoch (a sample with the epoch's length mix), after
    # one untimed warm-up batch
    step = max(1, len(epoch) // iters)
    sample = [epoch[-1]] + epoch[::step][:iters]
    batches = [[make_video(T, C, g, num_classes=K) for T in b] for b in sample]
    return cfg, base, lengths, epoch, sample, batches


def setup_train(mode: str, iters: int):
    """A worker's training step over the planned batches: run(index) -> (seconds, loss)."""
    cfg, base, _, epoch, _, batches = plan(iters)
    step = build_procedure(base, cfg, mode, len(epoch))[1]
    del base
    torch.manual_seed(1)
    rng = [torch.get_rng_state()]  # this mode's own stream: the same drop-path draws in all

    def run(index: int):
        torch.set_rng_state(rng[0])
        start = time.perf_counter()
        loss = float(step(batches[index]))
        seconds = time.perf_counter() - start
        rng[0] = torch.get_rng_state()
        return seconds, loss
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20, help="timed steps of batch 2")
    parser.add_argument("--modes", default="faithful,fast", help="comma list of modes")
    parser.add_argument("--one-process", action="store_true",
                        help="run every mode in this process (no process settings)")
    add_common_args(parser)
    args = parser.parse_args()
    apply_threads(args)
    modes = args.modes.split(",")
    _, base, lengths, epoch, sample, _ = plan(args.iters)
    positions = {rule: sum(base.padded_length(b, rule) * len(b) for b in epoch)
                 for rule in ("original", "minimal")}
    timed_pos = {rule: sum(base.padded_length(b, rule) * len(b) for b in sample[1:])
                 for rule in ("original", "minimal")}
    del base
    print(machine_line())
    print(f"thumos_i3d training, {len(lengths)} validation videos (sum of truncated T "
          f"{sum(lengths):,}), {len(epoch)} batches of 2 per epoch")
    print(f"positions per epoch: original {positions['original']:,}, minimal "
          f"{positions['minimal']:,} ({positions['original'] / positions['minimal']:.2f}x fewer)")
    print(f"timed: {len(sample) - 1} batches, every {max(1, len(epoch) // args.iters)}th of "
          f"the epoch (positions original {timed_pos['original']:,}, minimal "
          f"{timed_pos['minimal']:,}: {timed_pos['original'] / timed_pos['minimal']:.2f}x "
          "fewer); each mode steps through the same batches, interleaved, after one warm-up "
          "batch, " + ("all in this process (no process settings)" if args.one_process else
                       "each in its own process configured as the entry points configure it"))

    seconds = {m: 0.0 for m in modes}
    losses = {m: [] for m in modes}
    workers = {m: ModeWorker(m, setup_train, (args.iters,), threads=args.threads,
                             in_process=args.one_process) for m in modes}
    try:
        for it in range(len(sample)):
            for mode, worker in workers.items():
                t, loss = worker(it)
                losses[mode].append(loss)
                if it > 0:
                    seconds[mode] += t
        peak = {m: worker(PEAK_RSS) for m, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()
    losses = {m: torch.tensor(v, dtype=torch.float64) for m, v in losses.items()}
    ref = losses["faithful"] if "faithful" in losses else None
    print(f"\n{'mode':<10} {'s / step':>9} {'epoch estimate (s)':>19} {'ratio':>7} "
          f"{'max loss rel':>13} {'peak RSS MiB':>13}")
    rows = {}
    base_s = seconds[modes[0]] / args.iters
    for mode in modes:
        per = seconds[mode] / args.iters
        rel = 0.0
        if ref is not None:
            rel = float(((losses[mode] - ref).abs() / ref.abs()).max())
            if float((losses[mode][0] - ref[0]).abs() / ref[0].abs()) > 1e-5 or rel > 1e-3:
                raise SystemExit(f"{mode}: losses differ from faithful (max rel {rel:.1e})")
        print(f"{mode:<10} {per:>9.3f} {per * len(epoch):>19.0f} {base_s / per:>6.2f}x "
              f"{rel:>13.1e} {peak[mode]:>13.0f}")
        rows[mode] = dict(seconds_per_step=per, epoch_estimate=per * len(epoch),
                          ratio=base_s / per, max_loss_rel=rel, peak_rss_mib=peak[mode])
    print(f"check: first-step losses equal (rtol 1e-5), all {len(sample)} steps within rtol "
          "1e-3 of faithful")
    if args.json:
        write_json("bench_train", {"positions_per_epoch": positions,
                                   "timed_positions": timed_pos, "modes": rows})


if __name__ == "__main__":
    main()
