"""Loading video-backbone weights from local state_dict files, with strict checks and clear errors.

Understands the usual wrappings of a state_dict (``{'state_dict': ...}``, ``{'model': ...}``,
a ``module.`` prefix on every key) and loads with ``strict=True``; a file that does not fit
raises one WeightsError naming the file and the missing / unexpected / mis-shaped keys.
Files are read with ``torch.load(weights_only=True)``: no file can execute code.
"""
from __future__ import annotations

import hashlib
import logging
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import nn

__all__ = ["WeightsError", "read_state_dict", "unwrap_state_dict", "load_strict",
           "split_weight_files", "file_info", "apply_weights", "warn_random"]

logger = logging.getLogger(__name__)
WRAPPER_KEYS = ("state_dict", "model", "model_state", "module", "net")
PREFIXES = ("module.", "model.", "backbone.")
SHOW = 5  # keys named per kind in an error message


class WeightsError(ValueError):
    """A weights file cannot be read or does not fit the backbone."""


def read_state_dict(path: Union[str, Path]) -> "OrderedDict[str, torch.Tensor]":
    """Reads a state_dict file (``weights_only=True``) and removes the common wrappings."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"{path}: not a readable state_dict file "
                           f"(torch.load with weights_only=True: {first})") from None
    return unwrap_state_dict(obj, str(path))


def unwrap_state_dict(obj: Any, source: str) -> "OrderedDict[str, torch.Tensor]":
    """Descends into ``state_dict`` / ``model`` wrappers and strips a prefix shared by every key."""
    while isinstance(obj, Mapping) and not _all_tensors(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            raise WeightsError(f"{source}: expected a state_dict (name -> tensor), found a dict "
                               f"with keys {_first(list(obj))} and no 'state_dict' / 'model' entry")
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{source}: expected a state_dict (name -> tensor), "
                           f"found {type(obj).__name__}{' (empty)' if isinstance(obj, Mapping) else ''}")
    state = OrderedDict((str(k), v) for k, v in obj.items())
    for prefix in PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = OrderedDict((k[len(prefix):], v) for k, v in state.items())
    return state


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state, strict=True)``, with one clear error when it does not fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} (file {list(state[k].shape)}, model {list(own[k].shape)})"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        name = getattr(model, "name", "") or type(model).__name__
        parts = [f"{len(lst)} {what}: {_first(lst)}" for what, lst in
                 (("missing keys", missing), ("unexpected keys", unexpected),
                  ("shape mismatches", shapes)) if lst]
        raise WeightsError(f"{source}: the weights do not fit backbone '{name}' "
                           f"(strict load; {len(state)} keys in the file, {len(own)} in the "
                           f"model): " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def split_weight_files(weights: Union[str, Path]) -> List[Path]:
    """``"a.pt"`` -> [a.pt]; ``"rgb.pt,flow.pt"`` -> [rgb.pt, flow.pt] (unless a file has that name)."""
    text = str(weights)
    if "," in text and not Path(text).exists():
        return [Path(p.strip()) for p in text.split(",") if p.strip()]
    return [Path(text)]


def file_info(path: Union[str, Path]) -> Dict[str, str]:
    """The file name and sha256 of a weights file (for the feature manifest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"name": Path(path).name, "sha256": digest.hexdigest()}


def warn_random(name: str) -> None:
    """The loud warning of a backbone left with random weights."""
    msg = (f"video backbone '{name}' has RANDOM weights (weights 'none'): its features are "
           f"meaningless; use them for tests and offline demos only, and pass a weights file "
           f"for real features")
    logger.warning(msg)
    warnings.warn(msg, UserWarning, stacklevel=3)


def apply_weights(model: nn.Module, weights: Optional[Union[str, Path]]) -> None:
    """Loads ``weights`` (a file, or ``"rgb.pt,flow.pt"`` where the model takes two) or warns on None.

    A model that takes several files defines ``load_weight_files(paths)``; the others take one.
    Sets ``model.weights_info`` to what the manifest records.
    """
    name = getattr(model, "name", "") or type(model).__name__
    if weights is None:
        warn_random(name)
        model.weights_info = {"kind": "random"}
        return
    paths = split_weight_files(weights)
    loader = getattr(model, "load_weight_files", None)
    if loader is not None:
        loader(paths)
    elif len(paths) == 1:
        load_strict(model, read_state_dict(paths[0]), str(paths[0]))
    else:
        raise WeightsError(f"{weights}: backbone '{name}' takes one weights file, got {len(paths)}")
    model.weights_info = {"kind": "file", "files": [file_info(p) for p in paths]}


def _all_tensors(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _first(items: Sequence[str]) -> str:
    shown = ", ".join(str(i) for i in items[:SHOW])
    return shown + (f", ... (+{len(items) - SHOW} more)" if len(items) > SHOW else "")
