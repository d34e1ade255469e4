"""Do the defaults train to the original's accuracy? Average mAP of the faithful and the fast
procedure over N seeds, with train.py / eval.py exactly as a user runs them (issue 16).

Configs: ``demo`` (configs/synthetic_thumos.yaml on the data tools/demo.py generates) and
``tiny`` (the conformance tiny_train config: 2 training videos, 1 test video). Every seed sets
``init_rand_seed`` (weights, data order, crops, drop path); both procedures train the same
seeds. Printed per config: mean ± sd of the average mAP per procedure, their difference
(fast - faithful) and whether it lies within the seed spread (|difference| <= the pooled
seed-to-seed sd).

``--epochs-scale``: ``full`` (the config's schedule), ``small`` (a quarter of it), ``tiny``
(2 + 1 warm-up epochs: smoke runs, meaningless mAP).

Usage: python benchmarks/bench_fidelity.py [--configs demo tiny] [--seeds 5]
       [--epochs-scale full|small|tiny] [--threads N] [--json] [--keep]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, SHARED, write_json  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
from demo import GENERATOR, ensure_dataset  # noqa: E402

MODES = ("faithful", "fast")
SCALES = ("full", "small", "tiny")


def _conformance(name: str) -> Path:
    """A conformance asset: the repository's copy (tests/assets) first, else ../shared."""
    for base in (ROOT / "tests" / "assets" / "conformance", SHARED / "conformance"):
        if (base / name).exists():
            return base / name
    raise SystemExit(f"needs the conformance asset '{name}' (tests/assets/conformance or "
                     f"{SHARED / 'conformance'})")


def prepare(config: str, work: Path, env: Dict[str, str]) -> Dict:
    """The raw YAML of ``config`` with absolute data paths (data generated / copied)."""
    if config == "demo":
        data = work / "synthetic"
        if ensure_dataset(str(data), dict(GENERATOR), env) != 0:
            raise SystemExit("tools/make_synthetic_dataset.py failed")
        raw = yaml.safe_load((ROOT / "configs" / "synthetic_thumos.yaml").read_text())
        raw["dataset"]["json_file"] = str(data / "annotations" / "synthetic.json")
        raw["dataset"]["feat_folder"] = str(data / "features")
        return raw
    shutil.copytree(_conformance("tiny_data"), work / "tiny_data", dirs_exist_ok=True)
    raw = yaml.safe_load((_conformance("tiny_train") / "tiny_train4.yaml").read_text())
    raw["opt"].pop("early_stop_epochs", None)
    raw["dataset"]["json_file"] = str(work / "tiny_data" / "annotations" / "tiny_thumos14.json")
    raw["dataset"]["feat_folder"] = str(work / "tiny_data" / "i3d_features")
    return raw


def scaled(raw: Dict, scale: str, seed: int, out: Path) -> Dict:
    raw = yaml.safe_load(yaml.safe_dump(raw))  # deep copy
    opt = raw.setdefault("opt", {})
    epochs, warmup = opt.get("epochs", 30), opt.get("warmup_epochs", 5)
    if scale == "small":
        epochs, warmup = max(1, epochs // 4), max(1, warmup // 4)
    elif scale == "tiny":
        epochs, warmup = 2, 1
    opt.update(epochs=epochs, warmup_epochs=warmup)
    raw["init_rand_seed"] = seed
    raw["output_folder"] = str(out)
    return raw


def _run(cmd: Sequence[str], env: Dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-1500:]}{proc.stderr[-3000:]}")
    return proc.stdout


def train_and_eval(raw: Dict, mode: str, name: str, work: Path, env: Dict[str, str]) -> float:
    """Average mAP (%) of one training run of ``mode``."""
    cfg_path = work / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    flag = ["--faithful"] if mode == "faithful" else []
    _run(["train.py", str(cfg_path), "--output", "run", "--device", "cpu", "-p", "100000",
          "-c", "0", *flag], env)
    last = raw["opt"]["epochs"] + raw["opt"]["warmup_epochs"]
    ckpt = Path(raw["output_folder"]) / f"{name}_run" / f"epoch_{last:03d}.pth.tar"
    out = _run(["eval.py", str(cfg_path), str(ckpt), "--device", "cpu", *flag], env)
    match = re.search(r"Average mAP: *([0-9.]+) \(%\)", out)
    if match is None:
        raise SystemExit(f"eval.py printed no 'Average mAP' line for {name}")
    return float(match.group(1))


def summarise(maps: Dict[str, List[float]]) -> Dict[str, float]:
    sd = {m: statistics.stdev(v) if len(v) > 1 else 0.0 for m, v in maps.items()}
    mean = {m: statistics.fmean(v) for m, v in maps.items()}
    pooled = ((sd["faithful"] ** 2 + sd["fast"] ** 2) / 2) ** 0.5
    diff = mean["fast"] - mean["faithful"]
    return {"faithful_mean": mean["faithful"], "faithful_sd": sd["faithful"],
            "fast_mean": mean["fast"], "fast_sd": sd["fast"], "difference": diff,
            "pooled_sd": pooled, "within_spread": abs(diff) <= pooled}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=("demo", "tiny"),
                        default=["demo", "tiny"])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per procedure")
    parser.add_argument("--epochs-scale", choices=SCALES, default="full")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs")
    parser.add_argument("--json", action="store_true", help="write benchmarks/results/*.json")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise SystemExit(f"--seeds must be >= 1, got {args.seeds}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="bench_fidelity_"))
    results = {}
    try:
        for config in args.configs:
            base = prepare(config, work, env)
            maps: Dict[str, List[float]] = {m: [] for m in MODES}
            for seed in range(1, args.seeds + 1):
                for mode in MODES:
                    raw = scaled(base, args.epochs_scale, seed, work / "ckpt" / mode)
                    maps[mode].append(train_and_eval(raw, mode, f"{config}_s{seed}", work, env))
                    print(f"{config} seed {seed} {mode}: average mAP {maps[mode][-1]:.2f} %",
                          flush=True)
            results[config] = {"maps": maps, **summarise(maps)}
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.seeds} seed(s), epochs scale {args.epochs_scale}, "
          f"{args.threads} thread(s)")
    for config, r in results.items():
        print(f"{config}: faithful {r['faithful_mean']:.2f} ± {r['faithful_sd']:.2f} %, fast "
              f"{r['fast_mean']:.2f} ± {r['fast_sd']:.2f} %, difference {r['difference']:+.2f}"
              f" points ({'within' if r['within_spread'] else 'OUTSIDE'} the seed spread "
              f"{r['pooled_sd']:.2f})")
    if args.json:
        write_json("bench_fidelity", {"seeds": args.seeds, "epochs_scale": args.epochs_scale,
                                      "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
