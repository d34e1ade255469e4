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

from libs.core import ConfigError, load_config, save_config  # noqa: E402
from libs.datasets import make_data_loader, make_dataset  # noqa: E402
from libs.engine import (ModelEma, make_optimizer, make_scheduler, resume_from,  # noqa: E402
                         save_checkpoint, train_one_epoch, unwrap_model)
from libs.engine.amp import AMP_MODES, make_mixed_precision  # noqa: E402
from libs.engine.checkpoint import INTERRUPTED_NAME, capture_rng_state  # noqa: E402
from libs.engine.train_loop import install_num_pos_reducer  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402
from libs.utils import comm, fix_random_seed, resolve_device  # noqa: E402
from libs.utils.cli import run_main  # noqa: E402
from libs.utils.interrupt import FINISHED, SAVING, TRAINING, StopRequest  # noqa: E402
from libs.utils.procedure import configure_process, procedure_from_config  # noqa: E402

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
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of expected errors (also: "
                             "ACTIONFORMER_DEBUG=1)")
    parser.add_argument("--faithful", action="store_true",
                        help="the original's training procedure and arithmetic (default: the "
                             "config's 'faithful' key, false)")
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


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    # first of all: a signal at any later moment is handled (libs/utils/interrupt.py)
    stop = StopRequest()
    stop.install()
    if not os.path.isfile(args.config):
        raise ConfigError(f"Config file does not exist: {args.config}")
    cfg = load_config(args.config)
    if args.faithful:
        cfg["faithful"] = True
    procedure = procedure_from_config(cfg)
    configure_process(procedure)
    device = resolve_device(args.device, cfg["devices"])
    comm.init_distributed(device)
    main_proc = comm.is_main_process()
    stop.announce = main_proc
    world = comm.get_world_size()
    if main_proc:
        pprint(cfg)

    # the experiment folder's name; the folder is created once everything loaded (a failed
    # start, e.g. a bad --resume file, leaves no folder behind)
    ckpt_folder = experiment_folder(cfg, args.config, args.output)

    rng_generator = fix_random_seed(cfg["init_rand_seed"], include_cuda=True)

    # the original scales by len(devices); one process per device here, so by world size.
    # num_workers is per process: the total is num_workers x world size, as the original's
    # single process had num_workers x len(devices)
    cfg["opt"]["learning_rate"] *= world
    if args.num_workers is not None:
        cfg["loader"]["num_workers"] = args.num_workers

    train_dataset = make_dataset(cfg["dataset_name"], True, cfg["train_split"],
                                 **cfg["dataset"])
    # classes without training data get a near-zero prior in the classifier (§1.3)
    cfg["train_cfg"]["head_empty_cls"] = train_dataset.get_attributes()["empty_label_ids"]
    train_loader = build_train_loader(train_dataset, rng_generator,
                                      cfg["loader"]["batch_size"], cfg["loader"]["num_workers"])

    model = make_meta_arch(cfg["model_name"], **cfg["model"], procedure=procedure).to(device)
    global_num_pos = False
    if world > 1:
        global_num_pos = install_num_pos_reducer(model)
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type != "cpu" else None)
    optimizer = make_optimizer(model, cfg["opt"], procedure=procedure)
    num_iters_per_epoch = len(train_loader)
    scheduler = make_scheduler(optimizer, cfg["opt"], num_iters_per_epoch)
    if main_proc:
        print("Using model EMA ...")
    model_ema = ModelEma(model, foreach=procedure.foreach_ema)
    amp = make_mixed_precision(args.amp, device)
    if amp is not None:
        amp.attach(unwrap_model(model))

    start_epoch, skip_iters, resume_rng = 0, 0, None
    if args.resume:
        if not os.path.isfile(args.resume):
            raise FileNotFoundError(f"=> no checkpoint found at '{args.resume}'")
        info = resume_from(args.resume, model, model_ema, optimizer, scheduler, rng_generator)
        start_epoch, skip_iters, resume_rng = info.epoch, info.iteration, info.rng_state_now
        if main_proc:
            print(f"=> loaded checkpoint '{args.resume}' (epoch {info.epoch}")
            if info.iteration:
                print(f"=> resuming epoch {info.epoch} at iteration {info.iteration}")

    tb_writer = None
    if main_proc:  # experiment folder and TensorBoard (rank 0 writes)
        os.makedirs(ckpt_folder, exist_ok=True)
        from torch.utils.tensorboard import SummaryWriter
        tb_writer = SummaryWriter(os.path.join(ckpt_folder, "logs"))
        with open(os.path.join(ckpt_folder, "config.txt"), "w") as fid:
            pprint(cfg, stream=fid)
            fid.flush()
        save_config(cfg, os.path.join(ckpt_folder, "config.yaml"))
        print(f"\nStart training model {cfg['model_name']} ...")

    stop.set_phase(TRAINING)
    net = model.module if isinstance(model, DistributedDataParallel) else model
    max_epochs = cfg["opt"].get("early_stop_epochs",
                                cfg["opt"]["epochs"] + cfg["opt"]["warmup_epochs"])
    for epoch in range(start_epoch, max_epochs):
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        epoch_rng = capture_rng_state(rng_generator)
        result = train_one_epoch(
            train_loader, model, optimizer, scheduler, epoch, model_ema=model_ema,
            clip_grad_l2norm=cfg["train_cfg"]["clip_grad_l2norm"], tb_writer=tb_writer,
            print_freq=args.print_freq, max_epochs=max_epochs, should_stop=stop,
            skip_iters=skip_iters if epoch == start_epoch else 0,
            resume_rng=resume_rng if epoch == start_epoch else None,
            generator=rng_generator, global_num_pos=global_num_pos,
            clip_foreach=procedure.foreach_clip, amp=amp)
        extra = {"loss_normalizer": float(net.loss_normalizer)}
        if result["interrupted"]:
            extra.update(rng_state=epoch_rng, iteration=result["completed"],
                         rng_state_now=capture_rng_state(rng_generator))
            return _save_interrupted(ckpt_folder, epoch, model, model_ema, optimizer,
                                     scheduler, extra, stop, tb_writer)
        extra["rng_state"] = capture_rng_state(rng_generator)
        if (epoch + 1) == max_epochs or (args.ckpt_freq > 0
                                         and (epoch + 1) % args.ckpt_freq == 0):
            if main_proc:
                with stop.saving():  # a signal now waits for the write
                    save_checkpoint(ckpt_folder, epoch + 1, model, model_ema, optimizer,
                                    scheduler, extra=extra)
        if stop():
            return _save_interrupted(ckpt_folder, epoch + 1, model, model_ema, optimizer,
                                     scheduler, extra, stop, tb_writer)
        comm.barrier()

    stop.set_phase(FINISHED)
    if tb_writer is not None:
        tb_writer.close()
    if main_proc:
        print("All done!")
    comm.destroy_distributed()
    return 0


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
