#!/usr/bin/env python
"""The Quick-start demo: synthetic data, then the real train.py and eval.py on CPU.

``bash tools/quickstart.sh demo`` runs this file. It

1. generates the synthetic THUMOS-like data set under ``data/synthetic/`` with
   ``tools/make_synthetic_dataset.py`` (fixed options and seed, see ``GENERATOR``) unless the
   same data set is already there (``data/synthetic/demo_options.json`` records the options);
2. trains ``configs/synthetic_thumos.yaml`` with ``train.py --output demo --device cpu``
   (a subprocess, exactly as a user would run it; 2,100 iterations of a small model; a
   checkpoint every 20 epochs, ~7 MB each);
3. evaluates the last checkpoint (EMA weights) with ``eval.py`` and shows its mAP report;
4. prints the average mAP, where the checkpoint and the TensorBoard logs are, and the time.

It exits with the failing step's status when generation, training or evaluation fails.

``--video`` runs the offline video demo instead (tools/video_demo.py: generated video files
through make_annotations, extract_features, make_config, train, eval and infer).

``--dry-run`` runs the same pipeline on a tiny data set (8 videos, 2 epochs) in a temporary
folder, in seconds; the tests use it. ``--seed``, ``--noise``, ``--videos`` and ``--epochs``
change the data set / schedule (a derived config is then written next to the experiment).

The subprocesses get ``OMP_NUM_THREADS=--threads`` (default 1): the model is so small that
one thread is about as fast as two on an idle machine, and much faster on a busy one
(oversubscribed OpenMP threads spin).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join("configs", "synthetic_thumos.yaml")
DEFAULT_DATA_DIR = os.path.join("data", "synthetic")
OPTIONS_FILE = "demo_options.json"

# Options of tools/make_synthetic_dataset.py for the demo data set (~3.5 MB: 100 videos of
# 128-384 feature steps, 32 channels, 70 for training ('Validation'), 30 for testing ('Test')).
# THUMOS14 semantics: 30 fps, a feature every 4 frames over 16-frame clips. The config's
# dataset.num_classes / input_dim must equal --classes / --dim (checked below).
GENERATOR: Dict[str, Any] = {
    "videos": 100,
    "classes": 5,
    "dim": 32,
    "min-len": 128,
    "max-len": 384,
    "max-actions": 4,
    "min-action-len": 4.0,
    "max-action-len": 60.0,
    "overlap": 0.1,
    "noise": 1.8,
    "fps": 30.0,
    "feat-stride": 4,
    "num-frames": 16,
    "test-fraction": 0.3,
    "train-subset": "Validation",
    "test-subset": "Test",
    "seed": 0,
}
DRY_RUN_VIDEOS = 8
DRY_RUN_EPOCHS = (1, 1)  # (epochs, warmup_epochs)


def _log(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _fmt_time(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}m{sec:02d}s" if minutes else f"{sec}s"


def _run(cmd: List[str], env: Dict[str, str]) -> Tuple[int, str]:
    """Runs ``cmd`` in the repository root, echoing its output live; returns (status, output)."""
    _log("$ " + " ".join(cmd[1:] if cmd[0] == sys.executable else cmd))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    return proc.wait(), "".join(lines)


def generator_options(args: argparse.Namespace) -> Dict[str, Any]:
    opts = dict(GENERATOR)
    opts["seed"] = args.seed
    if args.noise is not None:
        opts["noise"] = args.noise
    if args.dry_run:
        opts["videos"] = DRY_RUN_VIDEOS
    if args.videos is not None:
        opts["videos"] = args.videos
    return opts


def ensure_dataset(data_dir: str, opts: Dict[str, Any], env: Dict[str, str]) -> int:
    """Generates the data set into ``data_dir`` unless it holds one made with ``opts``."""
    stamp = os.path.join(data_dir, OPTIONS_FILE)
    json_file = os.path.join(data_dir, "annotations", "synthetic.json")
    if os.path.isfile(stamp) and os.path.isfile(json_file):
        with open(stamp, "r", encoding="utf-8") as f:
            if json.load(f) == opts:
                _log(f"using the synthetic data set in {data_dir}/ (already generated)")
                return 0
        _log(f"{data_dir}/ holds a data set made with other options: regenerating it")
    # a stale data set must not leave feature files of videos that no longer exist
    for sub in ("features", "annotations"):
        shutil.rmtree(os.path.join(data_dir, sub), ignore_errors=True)
    cmd = [sys.executable, os.path.join("tools", "make_synthetic_dataset.py"), data_dir,
           "--format", "npy", "--json-name", "synthetic.json"]
    for key, value in opts.items():
        cmd += [f"--{key}", str(value)]
    status, _ = _run(cmd, env)
    if status == 0:
        with open(stamp, "w", encoding="utf-8") as f:
            json.dump(opts, f, indent=1)
    return status


def prepare_config(args: argparse.Namespace, data_dir: str, opts: Dict[str, Any],
                   work_dir: Optional[str]) -> Tuple[str, Dict[str, Any]]:
    """The config to train: the given one, or a derived copy when paths / schedule change.

    Returns (config path, the raw YAML dict). The derived copy keeps the config's file name,
    so the experiment folder is still ``<output_folder>/<name>_<output>``.
    """
    with open(args.config, "r", encoding="utf-8") as f:
        raw = yaml.load(f, Loader=yaml.FullLoader)
    dataset = raw.setdefault("dataset", {})
    if dataset.get("num_classes") != opts["classes"] or dataset.get("input_dim") != opts["dim"]:
        raise ValueError(f"{args.config}: dataset.num_classes / input_dim "
                         f"({dataset.get('num_classes')} / {dataset.get('input_dim')}) must "
                         f"match the generator's --classes / --dim ({opts['classes']} / "
                         f"{opts['dim']})")
    changes: Dict[str, Any] = {}
    want_json = os.path.join(data_dir, "annotations", "synthetic.json")
    want_feats = os.path.join(data_dir, "features")
    if os.path.normpath(dataset.get("json_file", "")) != os.path.normpath(want_json):
        changes["dataset.json_file"] = want_json
        changes["dataset.feat_folder"] = want_feats
    epochs = args.epochs
    warmup = None
    if args.dry_run:
        epochs, warmup = DRY_RUN_EPOCHS if epochs is None else (epochs, 1)
    if epochs is not None:
        changes["opt.epochs"] = epochs
    if warmup is not None:
        changes["opt.warmup_epochs"] = warmup
    if work_dir is not None:
        changes["output_folder"] = os.path.join(work_dir, "ckpt")
    if not changes:
        return args.config, raw
    for dotted, value in changes.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    folder = work_dir if work_dir is not None else os.path.join(
        raw.get("output_folder", "./ckpt/"), "demo_configs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, os.path.basename(args.config))
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(raw, f, sort_keys=False)
    _log(f"derived config {path} ({', '.join(f'{k}={v}' for k, v in changes.items())})")
    return path, raw


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train and evaluate ActionFormer on a synthetic data set on CPU "
                    "(the README's Quick start).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default=DEFAULT_CONFIG, help="demo config")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                   help="where the synthetic data set is generated")
    p.add_argument("--output", default="demo",
                   help="train.py --output (experiment folder <output_folder>/<config>_<output>)")
    p.add_argument("--seed", type=int, default=GENERATOR["seed"], help="data set seed")
    p.add_argument("--noise", type=float, default=None,
                   help=f"data set noise (difficulty; default {GENERATOR['noise']})")
    p.add_argument("--videos", type=int, default=None,
                   help=f"number of videos (default {GENERATOR['videos']})")
    p.add_argument("--epochs", type=int, default=None,
                   help="override opt.epochs (after warm-up) of the config")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs")
    p.add_argument("--dry-run", action="store_true",
                   help=f"tiny run ({DRY_RUN_VIDEOS} videos, {sum(DRY_RUN_EPOCHS)} epochs) in a "
                        "temporary folder, removed afterwards")
    p.add_argument("--keep", action="store_true", help="with --dry-run: keep the folder")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--video" in argv:  # the offline video demo (tools/video_demo.py)
        from video_demo import main as video_main
        return video_main([a for a in argv if a != "--video"])
    args = parse_args(argv)
    start = time.time()
    os.chdir(REPO)
    if not os.path.isfile(args.config):
        raise FileNotFoundError(f"demo config not found: '{args.config}'")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")

    work_dir = tempfile.mkdtemp(prefix="actionformer_demo_") if args.dry_run else None
    try:
        return _pipeline(args, env, work_dir, start)
    finally:
        if work_dir is not None:
            if args.keep:
                _log(f"kept {work_dir}")
            else:
                shutil.rmtree(work_dir, ignore_errors=True)


def _pipeline(args: argparse.Namespace, env: Dict[str, str], work_dir: Optional[str],
              start: float) -> int:
    times: Dict[str, float] = {}
    data_dir = os.path.join(work_dir, "data") if work_dir is not None else args.data_dir
    opts = generator_options(args)
    config, raw = prepare_config(args, data_dir, opts, work_dir)

    t0 = time.time()
    status = ensure_dataset(data_dir, opts, env)
    times["data"] = time.time() - t0
    if status != 0:
        _log(f"data set generation failed (exit status {status})")
        return status

    # the experiment folder train.py will use; a previous demo run there is replaced, so that
    # its checkpoints and TensorBoard events do not mix with this run's
    name = os.path.basename(config).replace(".yaml", "")
    exp = os.path.join(raw.get("output_folder", "./ckpt/"), f"{name}_{args.output}")
    exp = os.path.relpath(os.path.normpath(exp)) if not os.path.isabs(exp) else exp
    if os.path.isdir(exp):
        if not os.path.isfile(os.path.join(exp, "config.txt")):
            raise FileExistsError(f"'{exp}' exists and is not an experiment folder; move it "
                                  "away or pick another --output")
        _log(f"removing the previous run in {exp}/")
        shutil.rmtree(exp)

    t0 = time.time()
    status, _ = _run([sys.executable, "train.py", config, "--output", args.output,
                      "--device", "cpu", "-p", "20", "-c", "20"], env)
    times["train"] = time.time() - t0
    if status != 0:
        _log(f"train.py failed (exit status {status})")
        return status

    opt = raw.get("opt", {})
    last_epoch = int(opt.get("epochs", 30)) + int(opt.get("warmup_epochs", 5))
    ckpt = os.path.join(exp, f"epoch_{last_epoch:03d}.pth.tar")
    if not os.path.isfile(ckpt):
        _log(f"train.py did not write the last checkpoint '{ckpt}'")
        return 1

    t0 = time.time()
    status, out = _run([sys.executable, "eval.py", config, ckpt, "--device", "cpu"], env)
    times["eval"] = time.time() - t0
    if status != 0:
        _log(f"eval.py failed (exit status {status})")
        return status
    match = re.search(r"Average mAP: *([0-9.]+) \(%\)", out)
    if match is None:
        _log("eval.py printed no 'Average mAP' line")
        return 1

    total = time.time() - start
    logs = os.path.join(exp, "logs")
    print()
    _log(f"Average mAP: {match.group(1)} (%) - checkpoint: {ckpt}, "
         f"TensorBoard: tensorboard --logdir {logs}")
    _log(f"total time {_fmt_time(total)} (data {_fmt_time(times['data'])}, train "
         f"{_fmt_time(times['train'])}, eval {_fmt_time(times['eval'])}; "
         f"{args.threads} thread(s))")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from libs.utils.cli import run_main  # noqa: E402  (one-line errors, --debug)
    sys.exit(run_main(main))
