"""``ModelEma``: exponential moving average of the weights (docs/reference.md §7.7).

A deep copy of the network kept in ``eval()`` mode as ``self.module``; after every optimizer
step (from the first one on, no decay warm-up) each state_dict entry becomes
``decay * ema + (1 - decay) * model``. eval.py evaluates these weights (``state_dict_ema``).
Here the copy is of the *unwrapped* network (no DDP wrapper); the checkpoint module adds the
``module.`` prefix the original's files carry.

Speed (same bits): the original walks ``state_dict()`` of both models and updates entry by
entry (about 4 operators x 229 entries for THUMOS). Here the entries are located once (module,
parameter / buffer name, in ``state_dict`` order) and updated with the foreach kernels: the
same float32 operations ``decay * e``, ``(1 - decay) * m`` and their sum, so the result is
bitwise the original's (tested). ``foreach=False`` keeps the per-entry loop.
"""
from __future__ import annotations

from copy import deepcopy
from typing import List, Optional, Tuple

import torch
from torch import nn

from .wrapping import unwrap_model as _unwrap

__all__ = ["ModelEma", "state_dict_tensors"]

_Entry = Tuple[nn.Module, str, str]  # (owner module, '_parameters' or '_buffers', name)


def _state_dict_entries(model: nn.Module) -> List[_Entry]:
    """Where each ``model.state_dict()`` value lives, in ``state_dict`` order."""
    entries: List[_Entry] = []
    for _, module in model.named_modules(remove_duplicate=False):
        entries += [(module, "_parameters", name)
                    for name, p in module._parameters.items() if p is not None]
        entries += [(module, "_buffers", name) for name, b in module._buffers.items()
                    if b is not None and name not in module._non_persistent_buffers_set]
    return entries


def state_dict_tensors(model: nn.Module) -> List[torch.Tensor]:
    """The tensors of ``model.state_dict()`` (same order), without building the dict."""
    return [getattr(owner, kind)[name] for owner, kind, name in _state_dict_entries(model)]


class ModelEma(nn.Module):
    """EMA copy of a model.

    Args:
        model: the network to copy (a DDP wrapper is looked through).
        decay: EMA decay (0.999 in the original).
        device: optional device for the copy (kept on the model's device when None).
        foreach: update all entries with the foreach kernels (same bits as the loop).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999,
                 device: Optional[torch.device] = None, foreach: bool = True) -> None:
        super().__init__()
        self.module = deepcopy(_unwrap(model))
        self.module.eval()
        self.decay = decay
        self.device = device
        self.foreach = foreach
        if self.device is not None:
            self.module.to(device=device)
        self._entries: Optional[Tuple[List[_Entry], List[_Entry]]] = None
        self._source_id: Optional[int] = None  # id() of the model the entries belong to

    def _pairs(self, model: nn.Module) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """(EMA tensors, model tensors), state_dict entries matched by position."""
        # (the cached entries keep that model alive, so its id() cannot be reused)
        if self._entries is None or self._source_id != id(model):
            ema_entries, model_entries = (_state_dict_entries(self.module),
                                          _state_dict_entries(model))
            if len(ema_entries) != len(model_entries):
                raise ValueError(f"ModelEma: the model has {len(model_entries)} state_dict "
                                 f"entries, the EMA copy {len(ema_entries)}")
            self._entries, self._source_id = (ema_entries, model_entries), id(model)
        ema = [getattr(o, k)[n] for o, k, n in self._entries[0]]
        src = [getattr(o, k)[n] for o, k, n in self._entries[1]]
        return [t.detach() for t in ema], [t.detach() for t in src]

    def _update(self, model: nn.Module, update_fn) -> None:
        with torch.no_grad():
            ema, src = self._pairs(_unwrap(model))
            for ema_v, model_v in zip(ema, src):
                if self.device is not None:
                    model_v = model_v.to(device=self.device)
                ema_v.copy_(update_fn(ema_v, model_v))

    def update(self, model: nn.Module) -> None:
        """``ema <- decay * ema + (1 - decay) * model`` for every state_dict entry."""
        if not self.foreach:
            self._update(model, update_fn=lambda e, m: self.decay * e + (1. - self.decay) * m)
            return
        with torch.no_grad():
            ema, src = self._pairs(_unwrap(model))
            if self.device is not None:
                src = [m.to(device=self.device) for m in src]
            floats = [i for i, e in enumerate(ema) if e.is_floating_point()]
            if len(floats) < len(ema):  # integer buffers: the original's formula, entry-wise
                for i in set(range(len(ema))) - set(floats):
                    ema[i].copy_(self.decay * ema[i] + (1. - self.decay) * src[i])
                ema, src = [ema[i] for i in floats], [src[i] for i in floats]
            if not ema:
                return
            # bitwise the loop: decay * e and (1 - decay) * m rounded in float32, then summed
            weighted = torch._foreach_mul(src, 1. - self.decay)
            torch._foreach_mul_(ema, self.decay)
            torch._foreach_add_(ema, weighted)

    def set(self, model: nn.Module) -> None:
        """Copies the model's weights into the EMA."""
        self._update(model, update_fn=lambda e, m: m)
