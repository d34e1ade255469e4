"""The checkpoint file format: the one boundary between clean state_dicts and the disk.

Files are what the original ``train.py`` writes (docs/reference.md §7.1 step 14, §3.12;
conformance/README.md "Checkpoints"): a dict with, in this order,

``epoch`` (completed epochs), ``state_dict`` (model), ``scheduler`` (its ``state_dict()``),
``optimizer`` (its ``state_dict()``), ``state_dict_ema`` (EMA model)

where both model dicts carry the ``module.`` prefix of the original's DataParallel wrapper. The
prefix is added here on save and stripped on load, so the rest of the code never sees it. Files
are named ``epoch_NNN.pth.tar`` and written atomically (temporary file + ``os.replace``), so a
crash while writing leaves the previous file intact.

Optional keys, written after the five above and ignored by the original's loader (its resume
reads only the five): ``loss_normalizer`` (the model's EMA of the positive count, a plain float
the original resets on resume, §9 item 12) and ``rng_state`` (Python ``random``, NumPy, torch
CPU and data-loader generator states). With them a resumed run continues bit-exactly. An
interrupted run (SIGINT/SIGTERM) is saved to ``interrupted.pth`` with two more keys,
``iteration`` (iterations completed in epoch ``epoch``) and ``rng_state_now``; that name is not
matched by eval.py's ``*.pth.tar`` choice.

Everything loads with ``torch.load(path, map_location='cpu', weights_only=True)``.
"""
from __future__ import annotations

import glob
import os
import pickle
import random
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional

import numpy as np
import torch
from torch import nn

from libs.utils.atomic import atomic_open
from libs.utils.cli import UserError
from libs.utils.safe_pickle import load_error_reason

from .wrapping import unwrap_model

__all__ = ["CHECKPOINT_KEYS", "PREFIX", "INTERRUPTED_NAME", "CheckpointError",
           "checkpoint_name", "add_prefix", "strip_prefix", "atomic_save", "load_checkpoint",
           "build_checkpoint", "save_checkpoint", "load_model_weights", "capture_rng_state",
           "restore_rng_state", "ResumeInfo", "resume_from", "find_checkpoint"]

CHECKPOINT_KEYS = ("epoch", "state_dict", "scheduler", "optimizer", "state_dict_ema")
PREFIX = "module."
INTERRUPTED_NAME = "interrupted.pth"


class CheckpointError(ValueError, UserError):
    """A checkpoint is empty, truncated, not a checkpoint, lacks a required key or does not
    fit the model."""


def checkpoint_name(epoch: int) -> str:
    """``epoch_NNN.pth.tar`` (three digits, as the original)."""
    return f"epoch_{epoch:03d}.pth.tar"


def add_prefix(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Keys as the original stores them (``module.`` + name), order kept."""
    return OrderedDict((PREFIX + k, v) for k, v in state_dict.items())


def strip_prefix(state_dict: Mapping[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Removes a ``module.`` prefix carried by *every* key (else returns the keys unchanged)."""
    if state_dict and all(k.startswith(PREFIX) for k in state_dict):
        return OrderedDict((k[len(PREFIX):], v) for k, v in state_dict.items())
    return OrderedDict(state_dict)


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` through :func:`libs.utils.atomic.atomic_open` (a temporary file beside
    ``path``, flushed to disk, then renamed over it), creating the folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def load_checkpoint(path: str) -> Dict[str, Any]:
    """Reads a checkpoint onto the CPU with ``weights_only=True``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is empty, truncated or corrupt, holds objects other than
            tensors and plain containers (refused unread), or is not a dict (one line naming
            the file and what is wrong).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: '{path}'")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"'{path}' is empty (0 bytes): not a checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err):
            raise CheckpointError(
                f"'{path}' holds objects other than tensors and plain containers; refused "
                f"without running them (weights_only=True): {load_error_reason(err)}") from None
        raise CheckpointError(f"'{path}' is not a checkpoint, or is corrupt ({load_error_reason(err)})"
                              ) from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(f"'{path}' cannot be read: truncated, corrupt or not a "
                              f"checkpoint ({load_error_reason(err)})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"'{path}' is not a checkpoint: it holds a "
                              f"{type(ckpt).__name__}, expected a dict with keys "
                              f"{list(CHECKPOINT_KEYS)}")
    return ckpt


# ------------------------------------------------------------------------------- RNG state
def capture_rng_state(generator: Optional[torch.Generator] = None) -> Dict[str, Any]:
    """States of Python ``random``, NumPy's global generator, torch's CPU generator and the
    data loader's generator, as plain types / tensors (loadable with ``weights_only``)."""
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"bit_generator": np_state[0],
                  "key": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng_state(state: Mapping[str, Any],
                      generator: Optional[torch.Generator] = None) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state((npst["bit_generator"], npst["key"].numpy().astype(np.uint32),
                         npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


# ---------------------------------------------------------------------------------- saving
# implementation switches of torch optimizers: not training state (see optim.py)
_OPTIMIZER_IMPL_FLAGS = ("fused", "foreach")


def _portable_optimizer_state(optimizer: torch.optim.Optimizer) -> Dict[str, Any]:
    """``optimizer.state_dict()`` with the implementation switches as the original saves
    them (None: PyTorch's default), so the file does not depend on this run's kernel choice."""
    state = optimizer.state_dict()
    for group in state["param_groups"]:  # fresh dicts: the optimizer is not touched
        for flag in _OPTIMIZER_IMPL_FLAGS:
            if flag in group:
                group[flag] = None
    return state


def _load_optimizer_state(optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """``optimizer.load_state_dict`` that keeps the running optimizer's kernel choice."""
    flags = [{k: g[k] for k in _OPTIMIZER_IMPL_FLAGS if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    if len(flags) == len(optimizer.param_groups):
        for group, kept in zip(optimizer.param_groups, flags):
            group.update(kept)


def build_checkpoint(epoch: int, model: nn.Module, model_ema: Optional[nn.Module],
                     optimizer: torch.optim.Optimizer, scheduler: Any,
                     extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The checkpoint dict: the five original keys in order, then the optional ``extra``."""
    net = unwrap_model(model)
    ema_net = model_ema.module if model_ema is not None else net
    state: Dict[str, Any] = {
        "epoch": epoch,
        "state_dict": add_prefix(net.state_dict()),
        "scheduler": scheduler.state_dict(),
        "optimizer": _portable_optimizer_state(optimizer),
        "state_dict_ema": add_prefix(ema_net.state_dict()),
    }
    for key, value in (extra or {}).items():
        if key in CHECKPOINT_KEYS:
            raise KeyError(f"extra checkpoint key '{key}' would overwrite an original key")
        state[key] = value
    return state


def save_checkpoint(folder: str, epoch: int, model: nn.Module, model_ema: Optional[nn.Module],
                    optimizer: torch.optim.Optimizer, scheduler: Any,
                    extra: Optional[Mapping[str, Any]] = None,
                    file_name: Optional[str] = None) -> str:
    """Writes ``folder/epoch_<epoch:03d>.pth.tar`` (or ``file_name``) atomically.

    Args:
        folder: experiment folder (created if missing).
        epoch: number of completed epochs (the ``epoch`` key and the file number).
        model: the network (a DDP wrapper is looked through).
        model_ema: the :class:`~libs.engine.ema.ModelEma` (its ``.module`` is saved).
        optimizer, scheduler: saved with their ``state_dict()``.
        extra: optional keys written after the original five.
        file_name: overrides the file name.

    Returns:
        The path written.
    """
    path = os.path.join(folder, file_name or checkpoint_name(epoch))
    atomic_save(build_checkpoint(epoch, model, model_ema, optimizer, scheduler, extra), path)
    return path


# --------------------------------------------------------------------------------- loading
def _group(keys: Iterable[str], depth: int = 2) -> str:
    groups: "OrderedDict[str, int]" = OrderedDict()
    for k in keys:
        g = ".".join(k.split(".")[:depth])
        groups[g] = groups.get(g, 0) + 1
    return ", ".join(f"{g}.* ({n})" if n > 1 else g for g, n in groups.items())


def _load_strict(net: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{what} is not a state_dict (expected a mapping of parameter "
                              f"names to tensors, found {type(state_dict).__name__})")
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or shapes:
        lines = [f"{what} does not match the model:"]
        if missing:
            lines.append(f"  missing in checkpoint ({len(missing)}): {_group(missing)}")
        if unexpected:
            lines.append(f"  unexpected in checkpoint ({len(unexpected)}): {_group(unexpected)}")
        if shapes:
            lines.append(f"  shape mismatch ({len(shapes)}):")
            lines.extend(f"    {s}" for s in shapes)
        lines.append("  (is the config the one the checkpoint was trained with?)")
        raise CheckpointError("\n".join(lines))
    net.load_state_dict(state_dict, strict=True)


def _stripped(state_dict: Any) -> Any:
    """:func:`strip_prefix` of a mapping; anything else is returned for the type check."""
    return strip_prefix(state_dict) if isinstance(state_dict, Mapping) else state_dict


def load_model_weights(model: nn.Module, checkpoint: "str | Mapping[str, Any]",
                       use_ema: bool = True) -> Dict[str, Any]:
    """Loads ``state_dict_ema`` (or ``state_dict``) into the unwrapped model, strictly.

    Args:
        model: the network (a DDP wrapper is looked through); weights are copied onto its
            device.
        checkpoint: a path or an already loaded checkpoint dict.
        use_ema: load the EMA weights (what eval.py evaluates) instead of the raw ones.

    Returns:
        The checkpoint dict.

    Raises:
        FileNotFoundError: missing file.
        CheckpointError: missing key, or names / shapes that do not match the model (the
            message lists missing, unexpected and mismatched keys grouped by prefix).
    """
    ckpt = load_checkpoint(checkpoint) if isinstance(checkpoint, str) else dict(checkpoint)
    key = "state_dict_ema" if use_ema else "state_dict"
    where = checkpoint if isinstance(checkpoint, str) else "checkpoint"
    if key not in ckpt:
        raise CheckpointError(f"'{where}' has no '{key}' entry (keys: {list(ckpt)})")
    _load_strict(unwrap_model(model), _stripped(ckpt[key]), f"'{where}' [{key}]")
    return ckpt


@dataclass
class ResumeInfo:
    """What :func:`resume_from` restored.

    Attributes:
        epoch: first epoch to run (completed epochs in the file).
        iteration: iterations already done in ``epoch`` (> 0 only for interrupted files).
        rng_state_now: RNG state to restore after skipping ``iteration`` batches (interrupted
            files), else None.
        restored: optional keys that were found and restored.
    """
    epoch: int
    iteration: int = 0
    rng_state_now: Optional[Dict[str, Any]] = None
    restored: Optional[List[str]] = None


def resume_from(path: str, model: nn.Module, model_ema: Optional[nn.Module],
                optimizer: torch.optim.Optimizer, scheduler: Any,
                generator: Optional[torch.Generator] = None) -> ResumeInfo:
    """Restores a training run from a checkpoint (ours or the original's).

    Call it after everything that consumes random numbers at start-up (model, data) has been
    built: the saved RNG streams are restored last.

    Raises:
        FileNotFoundError: ``path`` does not exist (the original printed and returned).
        CheckpointError: a required key is missing or the weights do not fit the model.
    """
    ckpt = load_checkpoint(path)
    absent = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if absent:
        raise CheckpointError(f"'{path}' cannot be resumed: missing {absent} "
                              f"(keys: {list(ckpt)})")
    net = unwrap_model(model)
    _load_strict(net, _stripped(ckpt["state_dict"]), f"'{path}' [state_dict]")
    if model_ema is not None:
        _load_strict(model_ema.module, _stripped(ckpt["state_dict_ema"]),
                     f"'{path}' [state_dict_ema]")
    try:
        _load_optimizer_state(optimizer, ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(f"'{path}': the optimizer / scheduler state does not fit this "
                              f"config's optimizer ({type(err).__name__}: {err})") from None
    restored = []
    if "loss_normalizer" in ckpt and hasattr(net, "loss_normalizer"):
        net.loss_normalizer = float(ckpt["loss_normalizer"])
        restored.append("loss_normalizer")
    if "rng_state" in ckpt:
        restore_rng_state(ckpt["rng_state"], generator)
        restored.append("rng_state")
    return ResumeInfo(epoch=int(ckpt["epoch"]), iteration=int(ckpt.get("iteration", 0)),
                      rng_state_now=ckpt.get("rng_state_now"), restored=restored)


def find_checkpoint(ckpt: str, epoch: int = -1) -> str:
    """eval.py's choice of file (docs/reference.md §7.8 step 2).

    A path containing ``.pth.tar`` is the file itself. Otherwise ``ckpt`` is a folder: with
    ``epoch > 0`` the file is ``epoch_<epoch:03d>.pth.tar``, else the lexicographically last
    ``*.pth.tar`` in it.

    Raises:
        FileNotFoundError: the file / folder does not exist or the folder has no checkpoint.
    """
    if ".pth.tar" in ckpt:
        if not os.path.isfile(ckpt):
            raise FileNotFoundError(f"checkpoint file does not exist: '{ckpt}'")
        return ckpt
    if not os.path.isdir(ckpt):
        raise FileNotFoundError(f"checkpoint folder does not exist: '{ckpt}' (give a "
                                "*.pth.tar file or an experiment folder)")
    if epoch > 0:
        path = os.path.join(ckpt, checkpoint_name(epoch))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no checkpoint for epoch {epoch} in '{ckpt}' "
                                    f"(expected {checkpoint_name(epoch)})")
        return path
    files = sorted(glob.glob(os.path.join(ckpt, "*.pth.tar")))
    if not files:
        raise FileNotFoundError(f"no *.pth.tar checkpoint in folder '{ckpt}'")
    return files[-1]
