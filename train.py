"""Train ActionFormer: ``python train.py CONFIG [-p N] [-c N] [--output NAME] [--resume FILE]``.

The command line, folder naming, printed messages, checkpoint files and TensorBoard tags are
the original's (docs/reference.md §7.1). New: ``--device`` (beats the config's ``devices``; a CUDA
request without a GPU falls back to the CPU), ``--num-workers``, ``config.yaml`` beside
``config.txt``, a missing ``--resume`` file is an error, a non-finite loss stops training with
an error naming the step and its videos, SIGINT / SIGTERM at any moment either save
``interrupted.pth`` (resumable) or exit saying why not (docs/reliability.md), expected errors
print as one ``error: ...`` line (``--debug`` shows the traceback), checkpoints
carry the optional ``loss_normalizer`` / ``rng_state`` keys that make a resume exact, and
``torchrun --nproc_per_node=N train.py ...`` trains with DistributedDataParallel
(docs/distributed.md): ``loader.batch_size`` is per process and the learning rate is
multiplied by the number of processes (the original's ``len(devices)`` rule).
``--faithful`` (or ``faithful: true`` in the config) trains with the original's procedure and
arithmetic (libs/utils/procedure.py, docs/performance.md). ``--amp bf16|fp16`` (opt-in, off by
default) trains with mixed precision (libs/engine/amp.py; fp16 with gradient scaling).
"""
from __future__ import annotations

import argparse
import datetime
import os
import signal
import sys
import time
from pprint import pprint
from dataclasses import dataclass
from typing import List, Optional


def _stop_during_imports(signum, frame):
    # until main() installs the real handler (also over an inherited SIG_IGN)
    print(f"interrupted: received {signal.Signals(signum).name} before the first training "
          "step: nothing to save", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    for _sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_sig, _stop_during_imports)

import torch  # noqa: E402  (the imports below take seconds: signals are handled meanwhile)
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from libs.core import save_config  # noqa: E402
from libs.datasets import make_data_loader, make_dataset  # noqa: E402
from libs.engine import (ModelEma, make_optimizer, make_scheduler, resume_from,  # noqa: E402
                         save_checkpoint, train_one_epoch, unwrap_model)
from libs.engine.amp import AMP_MODES, MixedPrecision, make_mixed_precision  # noqa: E402
from libs.engine.checkpoint import INTERRUPTED_NAME, capture_rng_state  # noqa: E402
from libs.engine.train_loop import EpochResume, install_num_pos_reducer  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402
from libs.utils import comm, fix_random_seed, resolve_device  # noqa: E402
from libs.utils.cli import add_debug_flag, add_faithful_flag, run_main  # noqa: E402
from libs.utils.interrupt import FINISHED, SAVING, TRAINING, StopRequest  # noqa: E402
from libs.utils.procedure import load_run_config  # noqa: E402

DESCRIPTION = "Train a point-based transformer for action localization"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("config", metavar="DIR", help="path to a config file")
    parser.add_argument("-p", "--print-freq", default=10, type=int,
                        help="print frequency (default: 10 iterations)")
    parser.add_argument("-c", "--ckpt-freq", default=5, type=int,
                        help="checkpoint frequency (default: every 5 epochs)")
    parser.add_argument("--output", default="", type=str,
                        help="name of exp folder (default: none)")
    parser.add_argument("--resume", default="", type=str, metavar="PATH",
                        help="path to a checkpoint (default: none)")
    parser.add_argument("--device", default=None, type=str,
                        help="device, e.g. cpu or cuda:0 (default: the config's devices[0], "
                             "CPU when no GPU is available)")
    parser.add_argument("--num-workers", default=None, type=int,
                        help="data loading workers per process (default: loader.num_workers)")
    add_debug_flag(parser)
    add_faithful_flag(parser)
    parser.add_argument("--amp", default=None, choices=sorted(AMP_MODES),
                        help="opt-in mixed-precision training: bf16 or fp16 autocast of the "
                             "network (fp16 with gradient scaling); default float32")
    return parser.parse_args(argv)


def experiment_folder(cfg: dict, config_path: str, output: str) -> str:
    """``<output_folder>/<config basename>_<output or local date-time>`` (rank 0's choice)."""
    cfg_filename = os.path.basename(config_path).replace(".yaml", "")
    if len(output) == 0:
        ts = datetime.datetime.fromtimestamp(int(time.time()))
        output = str(ts)
    folder = os.path.join(cfg["output_folder"], f"{cfg_filename}_{output}")
    return comm.broadcast_object(folder)


def build_train_loader(dataset, generator: torch.Generator, batch_size: int,
                       num_workers: int):
    """The training loader; under torchrun each process reads its DistributedSampler shard."""
    if comm.get_world_size() > 1:
        return make_data_loader(dataset, True, generator, batch_size, num_workers,
                                distributed=True)
    return make_data_loader(dataset, True, generator, batch_size, num_workers)


@dataclass
class Training:
    """What the epochs update, built by :func:`build_training` (the model maybe DDP-wrapped)."""

    model: torch.nn.Module
    model_ema: ModelEma
    optimizer: torch.optim.Optimizer
    scheduler: object
    global_num_pos: bool
    amp: Optional[MixedPrecision] = None  # opt-in mixed precision (--amp)

    def state(self) -> tuple:
        """``(model, model_ema, optimizer, scheduler)``, as the checkpoint functions take them."""
        return self.model, self.model_ema, self.optimizer, self.scheduler


def scale_for_processes(cfg: dict, args: argparse.Namespace, world: int) -> None:
    """The original scales the learning rate by len(devices); one process per device here, so
    by world size. num_workers is per process: the total is num_workers x world size, as the
    original's single process had num_workers x len(devices)."""
    cfg["opt"]["learning_rate"] *= world
    if args.num_workers is not None:
        cfg["loader"]["num_workers"] = args.num_workers


def build_data(cfg: dict, rng_generator: torch.Generator):
    """The training data set and loader; sets ``train_cfg.head_empty_cls``."""
    train_dataset = make_dataset(cfg["dataset_name"], True, cfg["train_split"],
                                 **cfg["dataset"])
    # classes without training data get a near-zero prior in the classifier (§1.3)
    cfg["train_cfg"]["head_empty_cls"] = train_dataset.get_attributes()["empty_label_ids"]
    return build_train_loader(train_dataset, rng_generator,
                              cfg["loader"]["batch_size"], cfg["loader"]["num_workers"])


def build_training(cfg: dict, procedure, device: torch.device, num_iters_per_epoch: int,
                   main_proc: bool, amp_mode: Optional[str] = None) -> Training:
    """Model (DDP-wrapped under torchrun), optimizer, per-iteration scheduler, EMA and the
    opt-in mixed precision (``amp_mode`` 'bf16' / 'fp16', None: float32)."""
    model = make_meta_arch(cfg["model_name"], **cfg["model"], procedure=procedure).to(device)
    global_num_pos = False
    if comm.get_world_size() > 1:
        global_num_pos = install_num_pos_reducer(model)
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type != "cpu" else None)
    optimizer = make_optimizer(model, cfg["opt"], procedure=procedure)
    scheduler = make_scheduler(optimizer, cfg["opt"], num_iters_per_epoch)
    if main_proc:
        print("Using model EMA ...")
    model_ema = ModelEma(model, foreach=procedure.foreach_ema)
    amp = make_mixed_precision(amp_mode, device)
    if amp is not None:
        amp.attach(unwrap_model(model))
    return Training(model, model_ema, optimizer, scheduler, global_num_pos, amp)


def resume_training(path: str, training: Training, rng_generator: torch.Generator,
                    main_proc: bool):
    """``(start_epoch, EpochResume)`` from ``--resume`` (epoch 0, no resume without one)."""
    if not path:
        return 0, EpochResume()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"=> no checkpoint found at '{path}'")
    info = resume_from(path, *training.state(), rng_generator)
    if main_proc:
        print(f"=> loaded checkpoint '{path}' (epoch {info.epoch}")
        if info.iteration:
            print(f"=> resuming epoch {info.epoch} at iteration {info.iteration}")
    return info.epoch, EpochResume(info.iteration, info.rng_state_now, rng_generator)


def open_experiment(cfg: dict, ckpt_folder: str):
    """Rank 0: the experiment folder, its config.txt / config.yaml and a TensorBoard writer."""
    if not comm.is_main_process():
        return None
    os.makedirs(ckpt_folder, exist_ok=True)
    from torch.utils.tensorboard import SummaryWriter
    tb_writer = SummaryWriter(os.path.join(ckpt_folder, "logs"))
    with open(os.path.join(ckpt_folder, "config.txt"), "w") as fid:
        pprint(cfg, stream=fid)
        fid.flush()
    save_config(cfg, os.path.join(ckpt_folder, "config.yaml"))
    print(f"\nStart training model {cfg['model_name']} ...")
    return tb_writer


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    # first of all: a signal at any later moment is handled (libs/utils/interrupt.py)
    stop = StopRequest()
    stop.install()
    cfg, procedure = load_run_config(args.config, args.faithful)
    device = resolve_device(args.device, cfg["devices"])
    comm.init_distributed(device)
    main_proc = comm.is_main_process()
    stop.announce = main_proc
    if main_proc:
        pprint(cfg)
    # the experiment folder's name; the folder is created once everything loaded (a failed
    # start, e.g. a bad --resume file, leaves no folder behind)
    ckpt_folder = experiment_folder(cfg, args.config, args.output)
    rng_generator = fix_random_seed(cfg["init_rand_seed"], include_cuda=True)
    scale_for_processes(cfg, args, comm.get_world_size())
    train_loader = build_data(cfg, rng_generator)
    training = build_training(cfg, procedure, device, len(train_loader), main_proc, args.amp)
    start_epoch, resume = resume_training(args.resume, training, rng_generator, main_proc)
    tb_writer = open_experiment(cfg, ckpt_folder)
    stop.set_phase(TRAINING)
    loop = EpochLoop(args, cfg, procedure, train_loader, training, rng_generator, stop,
                     ckpt_folder, tb_writer)
    code = loop.run(start_epoch, resume)
    if code is not None:
        return code
    stop.set_phase(FINISHED)
    if tb_writer is not None:
        tb_writer.close()
    if main_proc:
        print("All done!")
    comm.destroy_distributed()
    return 0


@dataclass
class EpochLoop:
    """The epochs: train one, checkpoint on schedule, stop cleanly on a signal."""

    args: argparse.Namespace
    cfg: dict
    procedure: object
    train_loader: object
    training: Training
    rng_generator: torch.Generator
    stop: StopRequest
    ckpt_folder: str
    tb_writer: object

    @property
    def max_epochs(self) -> int:
        opt = self.cfg["opt"]
        return opt.get("early_stop_epochs", opt["epochs"] + opt["warmup_epochs"])

    def run(self, start_epoch: int, resume: EpochResume) -> Optional[int]:
        """Every epoch from ``start_epoch``; an exit code when interrupted, else None."""
        for epoch in range(start_epoch, self.max_epochs):
            code = self.epoch(epoch, resume if epoch == start_epoch else None)
            if code is not None:
                return code
            comm.barrier()
        return None

    def epoch(self, epoch: int, resume: Optional[EpochResume]) -> Optional[int]:
        """One epoch and its checkpoint; the exit code of an interruption, else None."""
        sampler = getattr(self.train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        t, max_epochs = self.training, self.max_epochs
        epoch_rng = capture_rng_state(self.rng_generator)
        result = train_one_epoch(
            self.train_loader, t.model, t.optimizer, t.scheduler, epoch, model_ema=t.model_ema,
            clip_grad_l2norm=self.cfg["train_cfg"]["clip_grad_l2norm"],
            tb_writer=self.tb_writer, print_freq=self.args.print_freq, max_epochs=max_epochs,
            should_stop=self.stop, resume=resume, global_num_pos=t.global_num_pos,
            clip_foreach=self.procedure.foreach_clip, amp=t.amp)
        extra = {"loss_normalizer": float(unwrap_model(t.model).loss_normalizer)}
        if result["interrupted"]:
            extra.update(rng_state=epoch_rng, iteration=result["completed"],
                         rng_state_now=capture_rng_state(self.rng_generator))
            return self.save_interrupted(epoch, extra)
        extra["rng_state"] = capture_rng_state(self.rng_generator)
        ckpt_freq = self.args.ckpt_freq
        if (epoch + 1) == max_epochs or (ckpt_freq > 0 and (epoch + 1) % ckpt_freq == 0):
            if comm.is_main_process():
                with self.stop.saving():  # a signal now waits for the write
                    save_checkpoint(self.ckpt_folder, epoch + 1, *t.state(), extra=extra)
        if self.stop():
            return self.save_interrupted(epoch + 1, extra)
        return None

    def save_interrupted(self, epoch: int, extra: dict) -> int:
        """Writes interrupted.pth (rank 0) and returns the signal's exit code."""
        return _save_interrupted(self.ckpt_folder, epoch, *self.training.state(), extra,
                                 self.stop, self.tb_writer)


def _save_interrupted(folder, epoch, model, model_ema, optimizer, scheduler, extra, stop,
                      tb_writer) -> int:
    stop.set_phase(SAVING)  # further signals wait until the file is written
    if comm.is_main_process():
        path = save_checkpoint(folder, epoch, model, model_ema, optimizer, scheduler,
                               extra=extra, file_name=INTERRUPTED_NAME)
        print(f"=> interrupted: saved '{path}' (epoch {epoch}, iteration "
              f"{extra.get('iteration', 0)}); continue with --resume {path}", flush=True)
    if tb_writer is not None:
        tb_writer.close()
    comm.destroy_distributed()  # waits for every rank (comm.py)
    return 128 + int(stop.signum)


if __name__ == "__main__":
    sys.exit(run_main(main))
