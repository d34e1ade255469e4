"""Training / evaluation machinery: optimizer, schedules, EMA, checkpoints and the loops
(docs/reference.md §7). The top layer: nothing inside ``libs`` imports it (tests/test_layering.py);
the entry points (train.py, eval.py, tools/infer.py), benchmarks/ and tests/ do."""
from .checkpoint import (CheckpointError, find_checkpoint, load_checkpoint, load_model_weights,
                         resume_from, save_checkpoint)
from .ema import ModelEma
from .eval_loop import valid_one_epoch
from .lr_schedulers import LinearWarmupCosineAnnealingLR, LinearWarmupMultiStepLR, make_scheduler
from .optim import make_optimizer
from .train_loop import NonFiniteLossError, train_one_epoch
from .wrapping import unwrap_model

__all__ = ["CheckpointError", "find_checkpoint", "load_checkpoint", "load_model_weights",
           "resume_from", "save_checkpoint", "ModelEma", "valid_one_epoch",
           "LinearWarmupCosineAnnealingLR", "LinearWarmupMultiStepLR", "make_scheduler",
           "make_optimizer", "NonFiniteLossError", "train_one_epoch", "unwrap_model"]
