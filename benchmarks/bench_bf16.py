"""Opt-in bf16 inference: mAP change and speed on the synthetic conformance data (issue 8,
item 4).

Model and data: by default the conformance tiny THUMOS config with the original's perturbed
checkpoint (tests/assets/conformance/tiny_thumos_perturbed, EMA weights) on its synthetic
test videos (tests/assets/conformance/tiny_data: one video, a smoke test); with ``--config`` /
``--ckpt`` any config and checkpoint, e.g. the quick-start demo's trained model on its
synthetic test split::

    bash tools/quickstart.sh demo
    python benchmarks/bench_bf16.py --config configs/synthetic_thumos.yaml \
        --ckpt ckpt/synthetic_thumos_demo
 Every test video runs through the model in float32 and under
bfloat16 autocast (``model.bf16_inference``, what ``eval.py --bf16`` sets); both detection
sets are scored with the same evaluator (the original's mAP). Printed: mAP per tIoU and
average for both, the change, the seconds of each pass and their ratio, and a 256 x 256
matmul probe (bf16 only pays on CPUs with AVX512-BF16 / AMX, or on GPUs; elsewhere PyTorch
emulates it and the ratio is far below 1).

Usage: python benchmarks/bench_bf16.py [--config CFG --ckpt FILE_OR_FOLDER] [--threads N]
       [--json]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (CONFORMANCE, add_common_args, apply_threads, machine_line,  # noqa: E402
                     write_json)
from bench_inference import bf16_matmul_speedup  # noqa: E402
from libs.core import load_config  # noqa: E402
from libs.datasets import make_dataset  # noqa: E402
from libs.engine.checkpoint import find_checkpoint, load_model_weights  # noqa: E402
from libs.engine.eval_loop import collect_results  # noqa: E402
from libs.evaluation import ANETdetection  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402


def run(model, dataset, bf16: bool):
    model.bf16_inference = bf16
    rows, start = [], time.perf_counter()
    with torch.no_grad():
        for idx in range(len(dataset)):
            item = dataset[idx]
            out = model([item])[0]
            rows.append((idx, out["video_id"], out["segments"].numpy(),
                         out["labels"].numpy(), out["scores"].numpy()))
    model.bf16_inference = False
    return collect_results(rows), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="config (default: conformance tiny)")
    parser.add_argument("--ckpt", default=None, help="checkpoint file or experiment folder")
    add_common_args(parser)
    args = parser.parse_args()
    apply_threads(args)
    if (args.config is None) != (args.ckpt is None):
        parser.error("--config and --ckpt go together")
    if args.config is None:
        conf = CONFORMANCE
        cfg = load_config(str(conf / "tiny_thumos.yaml"))
        data = conf / "tiny_data"
        cfg["dataset"]["json_file"] = str(data / "annotations" / "tiny_thumos14.json")
        cfg["dataset"]["feat_folder"] = str(data / "i3d_features")
        ckpt = str(conf / "tiny_thumos_perturbed" / "epoch_000.pth.tar")
    else:
        cfg, ckpt = load_config(args.config), find_checkpoint(args.ckpt)
    dataset = make_dataset(cfg["dataset_name"], False, cfg["val_split"], **cfg["dataset"])
    model = make_meta_arch(cfg["model_name"], **copy.deepcopy(cfg["model"]))
    load_model_weights(model, ckpt)
    model.eval()
    print(machine_line())
    print(f"checkpoint {ckpt} (EMA weights), {len(dataset)} {cfg['val_split']} videos")
    probe = bf16_matmul_speedup()
    print(f"bf16 matmul probe (256 x 256): {probe:.2f}x the fp32 speed")
    evaluator = ANETdetection(cfg["dataset"]["json_file"], dataset.split[0],
                              tiou_thresholds=dataset.get_attributes()["tiou_thresholds"])
    run(model, dataset, False)  # warm-up
    scores = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        results, seconds = run(model, dataset, bf16)
        maps, avg, _ = evaluator.evaluate(results, verbose=False)
        scores[name] = dict(mAP=[float(m) for m in maps], average=float(avg), seconds=seconds,
                            detections=len(results["video-id"]))
    thr = evaluator.tiou_thresholds
    print(f"\n{'':<6} " + " ".join(f"{t:>6.2f}" for t in thr) + f" {'avg':>7} {'seconds':>8}")
    for name, s in scores.items():
        print(f"{name:<6} " + " ".join(f"{100 * m:>6.2f}" for m in s["mAP"])
              + f" {100 * s['average']:>7.2f} {s['seconds']:>8.2f}")
    delta = 100 * (scores["bf16"]["average"] - scores["fp32"]["average"])
    ratio = scores["fp32"]["seconds"] / scores["bf16"]["seconds"]
    worst = 100 * float(np.max(np.abs(np.subtract(scores["bf16"]["mAP"], scores["fp32"]["mAP"]))))
    print(f"\nbf16 vs fp32: average mAP {delta:+.2f} points (largest change at one tIoU "
          f"{worst:.2f}); speed {ratio:.2f}x")
    if args.json:
        write_json("bench_bf16", {"probe": probe, "scores": scores, "delta_avg_map": delta,
                                  "speed_ratio": ratio})


if __name__ == "__main__":
    main()
