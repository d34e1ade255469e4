"""Per-position cost of THUMOS inference, faithful vs fast, at several lengths, and the share
of the machine's fp32 matmul peak the network reaches (issue 13, item 1).

The model is configs/thumos_i3d.yaml (seeded random init, eval mode, one video as the
original's ``model([item])``). For every T of ``--lengths`` (default 256, 1,000, 2,304,
5,000) and both procedures the script prints: positions computed (padded length), best
seconds of ``--repeats`` forwards (network + decoding + NMS), microseconds per computed
and per valid position, the network's FLOPs (convolutions and matrix products, counted by
``torch.utils.flop_counter``) and GFLOP/s as a share of the peak. The peak is measured in
the same run: best of several 2048 x 2048 x 2048 and (512 x 512) @ (512 x 2304) products.

Usage: python benchmarks/bench_positions.py [--lengths 256,1000,2304,5000] [--repeats N]
       [--device DEV] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (ROOT, add_common_args, apply_threads, machine_line,  # noqa: E402
                     make_video, procedure_for, write_json)
from libs.core import load_config  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402
from libs.utils.device import resolve_device, synchronize  # noqa: E402

MODES = ("faithful", "fast")


def matmul_peak(device: torch.device, repeats: int = 3) -> Dict[str, float]:
    """Best GFLOP/s of a 2048^3 product and of (512 x 512) @ (512 x 2304)."""
    out = {}
    for name, (m, k, n) in {"2048^3": (2048, 2048, 2048),
                            "512x512x2304": (512, 512, 2304)}.items():
        a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            a @ b
            synchronize(device)
            best = min(best, time.perf_counter() - start)
        out[name] = 2 * m * k * n / best / 1e9
    return out


def network_flops(model, item) -> int:
    """FLOPs of one forward (convolutions and matrix products)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model([item])
    return counter.get_total_flops()


def best_seconds(model, item, repeats: int, device: torch.device) -> float:
    with torch.no_grad():
        model([item])  # warm-up: this length's kernels
        best = float("inf")
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            model([item])
            synchronize(device)
            best = min(best, time.perf_counter() - start)
    return best


def measure(model, lengths: List[int], repeats: int, device: torch.device) -> List[Dict]:
    C = model.backbone.embd[0].conv.in_channels
    rows = []
    for T in lengths:
        item = make_video(T, C, torch.Generator().manual_seed(T), name="p")
        for mode in MODES:  # interleaved: both modes see the same machine state
            model.apply_procedure(procedure_for(mode))
            padded = model.padded_length([T], model.padding)
            seconds = best_seconds(model, item, repeats, device)
            rows.append(dict(T=T, mode=mode, positions=padded, seconds=seconds,
                             flops=network_flops(model, item)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="256,1000,2304,5000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    add_common_args(parser)
    args = parser.parse_args()
    apply_threads(args)
    device = resolve_device(args.device)
    cfg = load_config(str(ROOT / "configs" / "thumos_i3d.yaml"))
    torch.manual_seed(0)
    model = make_meta_arch(cfg["model_name"], **cfg["model"]).to(device).eval()
    print(machine_line())
    peak = matmul_peak(device)
    best_peak = max(peak.values())
    print("fp32 matmul peak: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()))
    rows = measure(model, [int(t) for t in args.lengths.split(",")], args.repeats, device)
    print(f"\n{'T':>6} {'mode':<9} {'computed':>9} {'seconds':>8} {'us/computed':>12} "
          f"{'us/valid':>9} {'GFLOP':>7} {'GFLOP/s':>8} {'of peak':>8}")
    for r in rows:
        rate = r["flops"] / r["seconds"] / 1e9
        print(f"{r['T']:>6} {r['mode']:<9} {r['positions']:>9,} {r['seconds']:>8.3f} "
              f"{1e6 * r['seconds'] / r['positions']:>12.1f} "
              f"{1e6 * r['seconds'] / r['T']:>9.1f} {r['flops'] / 1e9:>7.1f} {rate:>8.1f} "
              f"{100 * rate / best_peak:>7.0f}%")
    if args.json:
        write_json("bench_positions", {"peak_gflops": peak, "rows": rows})


if __name__ == "__main__":
    main()
