"""Shared pieces of the benchmark scripts.

* paths (``ROOT``, ``CONFORMANCE`` = the shipped ``tests/assets/conformance``, ``SHARED`` =
  ``$ACTIONFORMER_SHARED`` or ``../shared`` for the real annotation files), ``--threads`` /
  ``--json`` options and JSON output under the git-ignored ``benchmarks/results/``;
* the real THUMOS14 lengths (``floor(duration * 30 / 4)`` feature steps: features at 30 fps,
  stride 4) and seeded synthetic videos;
* the training procedures every training benchmark compares, on the same inputs, each a
  :class:`libs.utils.procedure.Procedure` (the switch train.py's ``--faithful`` selects):

  - ``faithful``: the original's procedure and arithmetic: every batch padded by the original
    rule (docs/reference.md §3.10), PyTorch's default (oneDNN) convolutions, the original's
    LayerNorm arithmetic, separate q / k / v paths, the original's local attention algorithm
    (Longformer overlapping chunks), heads run level by level, label
    assignment video by video, the optimizer's per-parameter loop, ``clip_grad_norm_``'s
    per-tensor loop, the EMA updated entry by entry;
  - ``overhead``: the fast per-iteration code (native dense convolutions, one LayerNorm
    kernel, batched q / k / v on small inputs, banded local attention, heads over the
    concatenated pyramid, fused optimizer, foreach clipping and EMA, batched assignment) with
    the original padding;
  - ``fast``: the defaults of this project (``overhead`` + minimal padding).

* detection matching within the conformance tolerances.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from libs.engine.amp import make_mixed_precision  # noqa: E402
from libs.engine.ema import ModelEma  # noqa: E402
from libs.engine.lr_schedulers import make_scheduler  # noqa: E402
from libs.engine.optim import make_optimizer  # noqa: E402
from libs.engine.train_loop import train_step  # noqa: E402
from libs.evaluation import compare  # noqa: E402
from libs.utils.procedure import FAST, Procedure, procedure_named  # noqa: E402

SHARED = Path(os.environ.get("ACTIONFORMER_SHARED", ROOT.parent / "shared"))
CONFORMANCE = ROOT / "tests" / "assets" / "conformance"  # the original's tiny model and data
SEG_TOL, SCORE_TOL = 1e-3, 1e-4  # detections: seconds, score (conformance README)
TRAIN_MODES = ("faithful", "overhead", "fast")


# ------------------------------------------------------------------------------- options / io
def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/*.json")


def apply_threads(args: argparse.Namespace) -> None:
    if args.threads > 0:
        torch.set_num_threads(args.threads)


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} "
            f"cores, {cpu}")


def write_json(name: str, payload: Mapping[str, Any]) -> Path:
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    body = {"torch": torch.__version__, "threads": torch.get_num_threads(), **payload}
    path.write_text(json.dumps(body, indent=2))
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def best_time(fn: Callable[[], Any], repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------------------------- inputs
def thumos_lengths(subset: str, max_seq_len: Optional[int] = None) -> List[int]:
    """Feature lengths of the real THUMOS14 ``subset`` ('Test' / 'Validation'), in file
    order; truncated to ``max_seq_len`` when given (as training crops)."""
    path = SHARED / "data" / "thumos14" / "thumos14.json"
    if not path.is_file():
        raise SystemExit(f"needs the THUMOS14 annotations at {path} (set ACTIONFORMER_SHARED)")
    db = json.loads(path.read_text())["database"]
    lengths = [max(1, math.floor(v["duration"] * 30 / 4))
               for v in db.values() if v["subset"] == subset]
    return [min(t, max_seq_len) for t in lengths] if max_seq_len else lengths


def make_video(T: int, C: int, g: torch.Generator, num_classes: Optional[int] = None,
               max_actions: int = 12, name: str = "v") -> Dict[str, Any]:
    """A synthetic item (``feats`` (C, T) normal); with ``num_classes`` also 1..max_actions
    random ground-truth segments (feature-grid units) and labels."""
    item: Dict[str, Any] = {"video_id": f"{name}{T}", "feats": torch.randn(C, T, generator=g),
                            "fps": 30.0, "duration": T * 4 / 30.0, "feat_stride": 4,
                            "feat_num_frames": 16}
    if num_classes is not None:
        n = int(torch.randint(1, max_actions + 1, (1,), generator=g))
        starts = torch.rand(n, generator=g) * max(T - 40, 1)
        item["segments"] = torch.stack(
            [starts, (starts + 2 + torch.rand(n, generator=g) * 60).clamp(max=T)], dim=1)
        item["labels"] = torch.randint(0, num_classes, (n,), generator=g)
    return item


# ------------------------------------------------------------------------ training procedures
def procedure_for(mode: str) -> Procedure:
    """The :class:`libs.utils.procedure.Procedure` of a benchmark mode (module docstring)."""
    if mode not in TRAIN_MODES:
        raise ValueError(f"mode must be one of {TRAIN_MODES}, got {mode!r}")
    if mode == "overhead":
        return FAST.replace(name="overhead", train_padding="original",
                            test_padding="original")
    return procedure_named(mode)


def build_procedure(base: torch.nn.Module, cfg: Mapping, mode: str, iters_per_epoch: int,
                    amp: Optional[str] = None
                    ) -> Tuple[torch.nn.Module, Callable[[Sequence[Mapping]], torch.Tensor]]:
    """(model copy, step function returning the detached final loss) for ``mode``, built
    through the one procedure switch (the model's ``apply_procedure`` and the engine's
    procedure arguments), as train.py does; ``amp`` 'bf16' / 'fp16' as train.py --amp."""
    procedure = procedure_for(mode)
    model = copy.deepcopy(base).train()
    model.apply_procedure(procedure)
    mixed = make_mixed_precision(amp, next(model.parameters()).device)
    if mixed is not None:
        mixed.attach(model)
    optimizer = make_optimizer(model, cfg["opt"], procedure=procedure)
    scheduler = make_scheduler(optimizer, cfg["opt"], iters_per_epoch)
    ema = ModelEma(model, foreach=procedure.foreach_ema)
    clip = cfg["train_cfg"]["clip_grad_l2norm"]

    def step(batch):
        losses = train_step(batch, model, optimizer, scheduler, ema, clip,
                            clip_foreach=procedure.foreach_clip, amp=mixed)
        return losses["final_loss"].detach()
    return model, step


def run_epochs(base: torch.nn.Module, cfg: Mapping, batches: Sequence[Sequence[Mapping]],
               modes: Sequence[str], repeats: int, seed: int = 1) -> Dict[str, Dict[str, Any]]:
    """Trains one epoch over ``batches`` per mode and repeat (modes interleaved, each from the
    same weights and seed; the first repeat warms up). Returns per mode: best seconds per
    iteration, the warm-up epoch's, the losses of the last epoch and the final weights."""
    results: Dict[str, Dict[str, Any]] = {m: {"best": float("inf")} for m in modes}
    for rep in range(repeats + 1):
        for mode in modes:
            model, step = build_procedure(base, cfg, mode, len(batches))
            torch.manual_seed(seed)
            start = time.perf_counter()
            losses = [step(batch) for batch in batches]
            per_iter = (time.perf_counter() - start) / len(batches)
            r = results[mode]
            if rep == 0:
                r["warmup"] = per_iter
            else:
                r["best"] = min(r["best"], per_iter)
            r["losses"] = torch.stack(losses)
            r["weights"] = [p.detach().clone() for p in model.parameters()]
    return results


def compare_to_faithful(results: Mapping[str, Mapping[str, Any]]) -> Dict[str, Dict[str, float]]:
    """Max relative loss difference (per iteration) and max |weight difference| after the
    epoch of each mode against ``faithful``."""
    ref = results["faithful"]
    out = {}
    for mode, r in results.items():
        rel = ((r["losses"] - ref["losses"]).abs() / ref["losses"].abs().clamp(min=1e-12))
        out[mode] = {"first_loss_rel": float(rel[0]), "max_loss_rel": float(rel.max()),
                     "max_weight_diff": max(float((a - b).abs().max())
                                            for a, b in zip(r["weights"], ref["weights"]))}
    return out


# --------------------------------------------------------------------------------- matching
def matched_share(got: Mapping[str, torch.Tensor], want: Mapping[str, torch.Tensor],
                  seg_tol: float = SEG_TOL, score_tol: float = SCORE_TOL) -> float:
    """Share of ``want`` detections matched one to one by ``got`` (same label, segment and
    score within the conformance tolerances; libs/evaluation/compare.py)."""
    return compare.matched_share(got, want, seg_tol, score_tol)
