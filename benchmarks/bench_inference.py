"""THUMOS14 inference: the original's padding and kernels vs this project's, and opt-in bf16
(issue 8, items 1 and 4).

The model is configs/thumos_i3d.yaml (seeded random init; 2,048-d synthetic features). Video
lengths are the real THUMOS14 test lengths: ``floor(duration * 30 / 4)`` feature steps for the
212 ``Test`` videos of shared/data/thumos14/thumos14.json (the features are extracted at
30 fps with stride 4; sum 344,544 steps).

Modes: ``faithful`` = the original padding rule and the original's kernels (oneDNN dense
convs, eight-operator LayerNorm, separate q / k / v, heads level by level:
libs/utils/procedure.FAITHFUL); ``fast`` = the defaults (minimal padding, fast
kernels). Printed:
  * positions computed for all 212 videos under both rules (original: 579,456);
  * seconds for ``--videos`` of them (evenly spaced in length order; the scale is printed),
    full model([item]) including decoding and NMS, both modes on each video in turn, each
    mode in a worker process of its own configured as the entry points configure it
    (benchmarks/_workers.py: the fast procedure keeps freed memory, the faithful one keeps
    the C library's defaults as the original; both at the machine's best CPU ISA);
    ``--one-process`` runs both in this process without process settings;
  * the agreement of the detections (conformance tolerances: same count, same label, segment
    within 1e-3 s, score within 1e-4);
  * bf16 autocast vs float32 at T = 2,304 and 9,216: time, max |diff| of the logits, and the
    share of float32 detections matched by the bf16 ones (mAP needs real data: see
    docs/performance.md).

Usage: python benchmarks/bench_inference.py [--videos N] [--skip-bf16] [--one-process]
       [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (ROOT, add_common_args, apply_threads, machine_line,  # noqa: E402
                     make_video, matched_share, procedure_for, thumos_lengths,
                     write_json)
from _workers import PEAK_RSS, ModeWorker  # noqa: E402
from libs.core import load_config  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402

MODES = ("faithful", "fast")


def make_item(T: int, C: int, seed: int):
    return make_video(T, C, torch.Generator().manual_seed(seed), name=f"v{seed}_")


def set_mode(model, mode: str) -> None:
    model.apply_procedure(procedure_for(mode))


def bf16_matmul_speedup(n: int = 256, repeats: int = 3) -> float:
    """fp32 time / bf16 time of an n x n matmul (> 1: bf16 is faster on this CPU)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        x @ y
        start = time.perf_counter()
        for _ in range(repeats):
            x @ y
        times[dtype] = time.perf_counter() - start
    return times[torch.float32] / times[torch.bfloat16]


def setup_inference(mode: str):
    """A worker's model (seeded, the same weights in every mode) and its timed call."""
    cfg = load_config(str(ROOT / "configs" / "thumos_i3d.yaml"))
    torch.manual_seed(0)
    model = make_meta_arch(cfg["model_name"], **cfg["model"]).eval()
    set_mode(model, mode)
    C = cfg["model"]["input_dim"]

    def run(payload):
        T, seed = payload
        item = make_item(T, C, seed)
        with torch.no_grad():
            t, (det,) = timed(lambda: model([item]))
        return t, {k: v.numpy() for k, v in det.items() if isinstance(v, torch.Tensor)}
    return run


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def time_modes(subset, args):
    """Both modes on each video of ``subset`` in turn: (seconds per mode, worst matched share
    of the fast detections against the faithful ones, peak resident MiB per mode)."""
    seconds = {mode: 0.0 for mode in MODES}
    worst_share = 1.0
    workers = {mode: ModeWorker(mode, setup_inference, threads=args.threads,
                                in_process=args.one_process) for mode in MODES}
    try:
        for worker in workers.values():  # warm-up
            worker((subset[0], 0))
        for idx, T in enumerate(subset):
            dets = {}
            for mode, worker in workers.items():
                t, dets[mode] = worker((T, idx))
                seconds[mode] += t
            dets = {m: {k: torch.from_numpy(v) for k, v in d.items()} for m, d in dets.items()}
            same_count = dets["fast"]["scores"].shape == dets["faithful"]["scores"].shape
            share = matched_share(dets["fast"], dets["faithful"]) if same_count else 0.0
            worst_share = min(worst_share, share)
        peak = {mode: worker(PEAK_RSS) for mode, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.close()
    return seconds, worst_share, peak


def bf16_comparison(model, C: int):
    """bf16 autocast vs float32 at T = 2,304 and 9,216 (printed rows, returned as dicts)."""
    rows = []
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
        rows.append(dict(T=T, fp32=t32, bf16=t16, max_logit_diff=diff, matched=share))
        print(f"T={T:<14} {t32:>8.3f} {t16:>8.3f} {t32 / t16:>5.2f}x {diff:>12.4f} "
              f"{100 * share:>7.1f}%")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16, help="videos timed (of 212)")
    parser.add_argument("--skip-bf16", action="store_true")
    parser.add_argument("--one-process", action="store_true",
                        help="run both modes in this process (no process settings)")
    add_common_args(parser)
    args = parser.parse_args()
    apply_threads(args)
    cfg = load_config(str(ROOT / "configs" / "thumos_i3d.yaml"))
    torch.manual_seed(0)
    model = make_meta_arch(cfg["model_name"], **cfg["model"]).eval()
    C = cfg["model"]["input_dim"]
    lengths = sorted(thumos_lengths("Test"))
    positions = {p: sum(model.padded_length([t], p) for t in lengths)
                 for p in ("original", "minimal")}
    step = len(lengths) / args.videos
    subset = [lengths[int(i * step + step / 2)] for i in range(args.videos)]
    print(machine_line())
    print(f"thumos_i3d inference, {len(lengths)} test videos, sum T = {sum(lengths):,}")
    print(f"positions computed, all {len(lengths)} videos: original {positions['original']:,}"
          f", minimal {positions['minimal']:,} ({positions['original'] / positions['minimal']:.2f}x"
          " fewer)")
    sub_pos = {p: sum(model.padded_length([t], p) for t in subset)
               for p in ("original", "minimal")}
    print(f"timed subset: {len(subset)} videos evenly spaced in length (sum T "
          f"{sum(subset):,}; positions original {sub_pos['original']:,}, minimal "
          f"{sub_pos['minimal']:,})")

    seconds, worst_share, peak = time_modes(subset, args)
    set_mode(model, "fast")
    ratio = seconds["faithful"] / seconds["fast"]
    where = ("both in this process, no process settings" if args.one_process else
             "each in its own process, configured as the entry points configure it")
    print(f"\n{'mode':<10} {'seconds':>9} {'peak RSS MiB':>13}  (subset, network + decoding + "
          f"NMS; {where})")
    for name, sec in seconds.items():
        print(f"{name:<10} {sec:>9.2f} {peak[name]:>13.0f}")
    print(f"speed-up fast vs faithful: {ratio:.2f}x; detections matched: "
          f"{100 * worst_share:.1f}% (worst video; 100% = identical within tolerances)")

    bf16_rows = []
    probe = bf16_matmul_speedup()
    if not args.skip_bf16:
        print(f"\nbf16 matmul probe (256 x 256): {probe:.2f}x the fp32 speed")
    if not args.skip_bf16 and probe < 0.5:
        print("bf16 is not accelerated on this CPU (no AVX512-BF16 / AMX): skipping the "
              "model-size bf16 runs (they would take minutes per video)")
    elif not args.skip_bf16:
        bf16_rows = bf16_comparison(model, C)

    if args.json:
        write_json("bench_inference", {
            "positions_all": positions, "subset_lengths": subset, "seconds": seconds,
            "ratio": ratio, "worst_matched_share": worst_share, "bf16_matmul_probe": probe,
            "bf16": bf16_rows})


if __name__ == "__main__":
    main()
