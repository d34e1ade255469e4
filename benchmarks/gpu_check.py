"""One prepared GPU check (issue 13, item 4), driven by benchmarks/gpu_check.sh: the device
tests, THUMOS inference over the test lengths (batch 1 as the original, and batched), a
THUMOS training epoch, faithful vs fast, fp32 vs opt-in bf16 / fp16 autocast, peak GPU
memory, printed as ONE table.

Rows (each from the same seeded weights and inputs; detections compared with the fp32 fast
run, training losses with the fp32 faithful run):
  * tests: pytest on the device-parametrised tests (conformance stages, test_devices:
    training vs the original's checkpoints, eval.py mAP, DDP with NCCL; test_amp; NMS);
  * infer b1 <mode> <precision>: ``model([item])`` per video (network + decoding + NMS);
  * infer b<N> fast fp32: the network on batches of N videos of similar length (padded to
    the longest's original length), decoding per video;
  * train <mode> <precision>: ``--iters`` training steps of 2 videos (THUMOS validation
    lengths cropped to max_seq_len), the full step as train.py (AdamW, clipping, EMA).

``--tiny --device cpu`` (gpu_check.sh --dry-run) runs every row on the conformance tiny model
with a few videos (the suite runs it); the tests row is skipped there unless ``--tests``.

Usage: python benchmarks/gpu_check.py [--device DEV] [--videos N] [--iters N] [--batch N]
       [--tiny] [--tests|--no-tests] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (ROOT, SHARED, add_common_args, apply_threads,  # noqa: E402
                     build_procedure, machine_line, make_video, matched_share,
                     procedure_for, thumos_lengths, write_json)
from libs.core import load_config  # noqa: E402
from libs.engine.amp import AMP_MODES  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402
from libs.utils.device import (describe_devices, peak_memory_mib,  # noqa: E402
                               reset_peak_memory, resolve_device, synchronize)

TEST_PATHS = ["tests/conformance", "tests/e2e/test_devices.py", "tests/engine/test_amp.py",
              "tests/ops/test_nms.py::test_torch_kernels_on_gpu_match_cpu"]
PRECISIONS = ("fp32", "bf16", "fp16")


def load_model(tiny: bool, device: torch.device):
    """(model in eval mode on ``device``, config): THUMOS (or the conformance tiny model)."""
    path = SHARED / "conformance" / "tiny_thumos.yaml" if tiny else ROOT / "configs" / \
        "thumos_i3d.yaml"
    cfg = load_config(str(path))
    torch.manual_seed(0)
    return make_meta_arch(cfg["model_name"], **cfg["model"]).to(device).eval(), cfg


def pick_lengths(subset: str, count: int, tiny: bool, cap: Optional[int] = None) -> List[int]:
    """``count`` THUMOS14 lengths evenly spaced in length order (÷ 8 for the tiny model)."""
    lengths = sorted(thumos_lengths(subset))
    if tiny:
        lengths = [max(16, t // 8) for t in lengths]
    if cap:
        lengths = [min(t, cap) for t in lengths]
    count = min(count, len(lengths))
    step = len(lengths) / count
    return [lengths[int(i * step + step / 2)] for i in range(count)]


def timed(fn, device: torch.device):
    """(seconds, peak MiB, result) of ``fn()`` with the device synchronised."""
    reset_peak_memory(device)
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, peak_memory_mib(device), out


def infer_b1(model, items: Sequence[Mapping], mode: str, precision: str,
             device: torch.device):
    """Per-video ``model([item])`` over ``items``: (seconds, peak MiB, detections)."""
    model.apply_procedure(procedure_for(mode))
    # the model's own switch: the network autocasts, decoding and NMS stay float32
    model.inference_amp_dtype = AMP_MODES.get(precision)

    def run(videos=items):
        with torch.no_grad():
            return [model([item])[0] for item in videos]
    try:
        run(items[:1])  # warm-up outside the timing (new lengths still pay their planning)
        return timed(run, device)
    finally:
        model.inference_amp_dtype = None


def batched_detections(model, items: Sequence[Mapping]) -> List[Dict]:
    """The network on one batch (each video padded to the longest's original inference
    length), then the per-video decoding of ``model.inference``."""
    lengths = [int(it["feats"].shape[-1]) for it in items]
    padded = model.padded_length([max(lengths)], "original")
    C = items[0]["feats"].shape[0]
    x = torch.zeros(len(items), C, padded, device=model.device)
    for b, it in enumerate(items):
        x[b, :, :lengths[b]] = it["feats"].to(model.device)
    mask = (torch.arange(padded, device=model.device)[None]
            < torch.tensor(lengths, device=model.device)[:, None]).unsqueeze(1)
    feats, masks = model.backbone(x, mask)
    fpn_feats, fpn_masks = model.neck(feats, masks)
    points = model.point_generator(fpn_feats)
    cls = [c.permute(0, 2, 1) for c in model.cls_head(fpn_feats, fpn_masks)]
    off = [o.permute(0, 2, 1) for o in model.reg_head(fpn_feats, fpn_masks)]
    return model.inference(items, points, [m.squeeze(1) for m in fpn_masks], cls, off)


def infer_batched(model, items: Sequence[Mapping], batch: int, device: torch.device):
    """(seconds, peak MiB, detections in ``items`` order) with batches of ``batch`` videos
    of neighbouring lengths (``items`` are in length order)."""
    model.apply_procedure(procedure_for("fast"))

    def run():
        with torch.no_grad():
            out: List[Dict] = []
            for i in range(0, len(items), batch):
                out += batched_detections(model, items[i:i + batch])
            return out
    with torch.no_grad():
        batched_detections(model, items[:batch])
    return timed(run, device)


def worst_share(got: Sequence[Mapping], want: Sequence[Mapping]) -> float:
    """Smallest share of ``want``'s detections matched by ``got`` over the videos."""
    shares = [matched_share({k: v.cpu() for k, v in g.items() if torch.is_tensor(v)},
                            {k: v.cpu() for k, v in w.items() if torch.is_tensor(v)})
              for g, w in zip(got, want)]
    return min(shares) if shares else 1.0


def train_rows(base, cfg: Mapping, iters: int, tiny: bool, device: torch.device,
               combos: Sequence[tuple]) -> List[Dict]:
    """One training row per (mode, precision): ``iters`` steps of 2 videos after one warm-up
    step; losses compared with the first combo's."""
    K = cfg["model"]["num_classes"]
    C = cfg["model"]["input_dim"]
    lengths = pick_lengths("Validation", 2 * (iters + 1), tiny, cfg["model"]["max_seq_len"])
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(lengths), generator=g).tolist()
    batches = [[make_video(lengths[i], C, g, num_classes=K) for i in order[j:j + 2]]
               for j in range(0, len(order), 2)]
    rows, ref = [], None
    for mode, precision in combos:
        model, step = build_procedure(base.to(device), cfg, mode, len(batches),
                                      amp=None if precision == "fp32" else precision)
        torch.manual_seed(1)
        step(batches[0])
        seconds, peak, losses = timed(lambda: torch.stack([step(b) for b in batches[1:]]),
                                      device)
        losses = losses.float().cpu()
        ref = losses if ref is None else ref
        rel = float(((losses - ref).abs() / ref.abs().clamp(min=1e-12)).max())
        rows.append(dict(work=f"train {mode} {precision}", seconds=seconds, peak_mib=peak,
                         check=f"loss max rel {rel:.1e} vs first row",
                         scale=f"{len(batches) - 1} steps x 2"))
        del model, step
    return rows


def test_row(device: torch.device) -> Dict:
    """pytest on the device-parametrised tests; the summary line is the check."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *TEST_PATHS], cwd=ROOT, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
    summary = re.sub(r"=+", "", tail).strip()
    return dict(work=f"tests ({device.type})", seconds=time.perf_counter() - start,
                peak_mib=0.0, check=summary, scale=" ".join(TEST_PATHS), ok=proc.returncode == 0)


def inference_rows(model, cfg: Mapping, videos: int, batch: int, tiny: bool,
                   device: torch.device) -> List[Dict]:
    C = cfg["model"]["input_dim"]
    lengths = pick_lengths("Test", videos, tiny)
    items = [make_video(T, C, torch.Generator().manual_seed(i), name=f"v{i}_")
             for i, T in enumerate(lengths)]
    scale = f"{len(items)} videos, sum T {sum(lengths):,}"
    rows, ref = [], None
    for mode, precision in (("fast", "fp32"), ("faithful", "fp32"), ("fast", "bf16"),
                            ("fast", "fp16")):
        seconds, peak, dets = infer_b1(model, items, mode, precision, device)
        ref = dets if ref is None else ref
        rows.append(dict(work=f"infer b1 {mode} {precision}", seconds=seconds,
                         peak_mib=peak, scale=scale,
                         check=f"{100 * worst_share(dets, ref):.1f}% dets matched"))
    seconds, peak, dets = infer_batched(model, items, batch, device)
    rows.append(dict(work=f"infer b{batch} fast fp32", seconds=seconds, peak_mib=peak,
                     scale=scale, check=f"{100 * worst_share(dets, ref):.1f}% dets matched"))
    return rows


def print_table(rows: Sequence[Mapping]) -> None:
    """ONE table: work, seconds, speed-up against the faithful fp32 row of the same kind,
    peak GPU memory, check, scale."""
    base = {r["work"].split()[0]: r["seconds"] for r in rows if "faithful fp32" in r["work"]}
    print(f"\n{'work':<24} {'seconds':>9} {'vs faithful':>11} {'peak MiB':>9}  check  [scale]")
    for r in rows:
        kind = r["work"].split()[0]
        ratio = f"{base[kind] / r['seconds']:.2f}x" if kind in base else "-"
        print(f"{r['work']:<24} {r['seconds']:>9.2f} {ratio:>11} {r['peak_mib']:>9.0f}  "
              f"{r['check']}  [{r['scale']}]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="device (default: the GPU)")
    parser.add_argument("--videos", type=int, default=212, help="test videos (of 212)")
    parser.add_argument("--iters", type=int, default=100, help="timed training steps")
    parser.add_argument("--batch", type=int, default=8, help="videos per batched inference")
    parser.add_argument("--tiny", action="store_true", help="tiny model (dry run)")
    parser.add_argument("--tests", action=argparse.BooleanOptionalAction, default=None,
                        help="run the device tests first (default: on unless --tiny)")
    add_common_args(parser)
    args = parser.parse_args()
    apply_threads(args)
    device = resolve_device(args.device)
    # PyTorch's defaults, as the original (cuDNN may use TF32; the tests switch it off)
    print(machine_line())
    print(describe_devices())
    rows = [test_row(device)] if (args.tests if args.tests is not None else not args.tiny) \
        else []
    model, cfg = load_model(args.tiny, device)
    rows += inference_rows(model, cfg, args.videos, args.batch, args.tiny, device)
    combos = [("faithful", "fp32"), ("fast", "fp32"), ("fast", "bf16"), ("fast", "fp16")]
    rows += train_rows(model, cfg, args.iters, args.tiny, device, combos)
    print_table(rows)
    if args.json:
        write_json("gpu_check", {"device": str(device), "rows": rows})
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
