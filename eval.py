"""Evaluate ActionFormer: ``python eval.py CONFIG CKPT [-epoch N] [-t K] [--saveonly] [-p N]``.

As the original (docs/reference.md §7.8): ``CKPT`` is a ``*.pth.tar`` file or an experiment folder
(then ``epoch_<N>.pth.tar`` with ``-epoch N``, else the lexicographically last ``*.pth.tar``);
the EMA weights are evaluated; ``--saveonly`` writes ``eval_results.pkl`` beside the
checkpoint instead of computing the mAP. New: ``--device``, ``--num-workers``, ``--eval-mode``
(the official ActivityNet / EPIC / Ego4D metric definitions, docs/metrics.md); the checkpoint
is read with ``weights_only=True`` onto the CPU; under ``torchrun`` every process infers a shard
of the videos and rank 0 evaluates the gathered results (same mAP as one process);
``--faithful`` (or ``faithful: true`` in the config) infers with the original's procedure
(libs/utils/procedure.py); a damaged checkpoint, a bad config or bad data end with one
``error: ...`` line (``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pprint import pprint
from typing import List, Optional

from torch.utils.data import Subset

from libs.core import ConfigError
from libs.datasets import make_data_loader, make_dataset
from libs.engine import find_checkpoint, load_checkpoint, load_model_weights, valid_one_epoch
from libs.engine.eval_loop import shard_indices
from libs.evaluation.modes import EVAL_MODES
from libs.modeling import make_meta_arch
from libs.utils import comm, fix_random_seed, resolve_device
from libs.utils.cli import add_debug_flag, add_faithful_flag, run_main
from libs.utils.procedure import load_run_config

DESCRIPTION = "Train a point-based transformer for action localization"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("config", type=str, metavar="DIR", help="path to a config file")
    parser.add_argument("ckpt", type=str, metavar="DIR",
                        help="path to a checkpoint file or an experiment folder")
    parser.add_argument("-epoch", type=int, default=-1,
                        help="checkpoint epoch to load from a folder")
    parser.add_argument("-t", "--topk", default=-1, type=int,
                        help="max number of output actions (default: -1)")
    parser.add_argument("--saveonly", action="store_true",
                        help="only save the output without evaluation (e.g., for test set)")
    parser.add_argument("-p", "--print-freq", default=10, type=int,
                        help="print frequency (default: 10 iterations)")
    parser.add_argument("--device", default=None, type=str,
                        help="device, e.g. cpu or cuda:0 (default: the config's devices[0], "
                             "CPU when no GPU is available)")
    parser.add_argument("--num-workers", default=None, type=int,
                        help="data loading workers per process (default: loader.num_workers)")
    parser.add_argument("--eval-mode", default="upstream",
                        choices=EVAL_MODES,
                        help="metric definition: 'upstream' reproduces the original's numbers "
                             "(default); the official modes follow the benchmarks' own "
                             "evaluators (docs/metrics.md)")
    parser.add_argument("--bf16", action="store_true",
                        help="run the network under bfloat16 autocast (faster on CPUs with "
                             "bf16 support; changes the numbers slightly: docs/performance.md)")
    add_debug_flag(parser)
    add_faithful_flag(parser)
    return parser.parse_args(argv)


def build_eval_data(cfg: dict, num_workers: Optional[int]):
    """The validation data set and the loader of this process's shard (all of it alone)."""
    val_dataset = make_dataset(cfg["dataset_name"], False, cfg["val_split"], **cfg["dataset"])
    num_workers = cfg["loader"]["num_workers"] if num_workers is None else num_workers
    shard = val_dataset
    if comm.get_world_size() > 1:
        shard = Subset(val_dataset, shard_indices(len(val_dataset)))
    return val_dataset, make_data_loader(shard, False, None, 1, num_workers)


def load_eval_model(cfg: dict, procedure, device, ckpt_file: str, bf16: bool,
                    main_proc: bool):
    """The model with the checkpoint's EMA weights, bf16 autocast if asked."""
    model = make_meta_arch(cfg["model_name"], **cfg["model"], procedure=procedure).to(device)
    if main_proc:
        print(f"=> loading checkpoint '{ckpt_file}'")
    checkpoint = load_checkpoint(ckpt_file)
    if main_proc:
        print("Loading from EMA model ...")
    load_model_weights(model, checkpoint, use_ema=True)
    del checkpoint
    model.bf16_inference = bf16
    if bf16 and main_proc:
        print("Inference under bfloat16 autocast (--bf16)")
    return model


def make_evaluator(args: argparse.Namespace, val_dataset, ckpt_file: str, main_proc: bool):
    """``(evaluator, output_file)``: rank 0 evaluates; ``--saveonly`` writes eval_results.pkl
    beside the checkpoint instead; other ranks only infer."""
    if args.saveonly:
        return None, os.path.join(os.path.split(ckpt_file)[0], "eval_results.pkl")
    if not main_proc:
        return None, os.devnull
    from libs.evaluation import ANETdetection, mode_tiou_thresholds
    evaluator = ANETdetection(
        val_dataset.json_file, val_dataset.split[0],
        tiou_thresholds=mode_tiou_thresholds(
            args.eval_mode, val_dataset.get_attributes()["tiou_thresholds"]),
        mode=args.eval_mode)
    return evaluator, None


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg, procedure = load_run_config(args.config, args.faithful)
    if len(cfg["val_split"]) == 0:
        raise ConfigError(f"{args.config}: val_split is empty; there is nothing to evaluate")
    ckpt_file = find_checkpoint(args.ckpt, args.epoch)
    device = resolve_device(args.device, cfg["devices"])
    comm.init_distributed(device)
    main_proc = comm.is_main_process()
    if args.topk > 0:
        cfg["model"]["test_cfg"]["max_seg_num"] = args.topk
    if main_proc:
        pprint(cfg)
    fix_random_seed(0, include_cuda=True)
    val_dataset, val_loader = build_eval_data(cfg, args.num_workers)
    model = load_eval_model(cfg, procedure, device, ckpt_file, args.bf16, main_proc)
    evaluator, output_file = make_evaluator(args, val_dataset, ckpt_file, main_proc)
    if main_proc:
        print(f"\nStart testing model {cfg['model_name']} ...")
    start = time.time()
    valid_one_epoch(val_loader, model, -1, evaluator=evaluator, output_file=output_file,
                    ext_score_file=cfg["test_cfg"]["ext_score_file"], tb_writer=None,
                    print_freq=args.print_freq)
    end = time.time()
    if main_proc:
        print(f"All done! Total time: {end - start:0.2f} sec")
    comm.destroy_distributed()  # waits for every rank (comm.py)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
