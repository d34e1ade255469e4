"""``ModelEma``: exponential moving average of the weights (REFERENCE.md §7.7).

A deep copy of the network kept in ``eval()`` mode as ``self.module``; after every optimizer
step (from the first one on, no decay warm-up) each state_dict entry becomes
``decay * ema + (1 - decay) * model``. eval.py evaluates these weights (``state_dict_ema``).
Here the copy is of the *unwrapped* network (no DDP wrapper); the checkpoint module adds the
``module.`` prefix the original's files carry.
"""
from __future__ import annotations

from copy import deepcopy
from typing import Optional

import torch
from torch import nn

from .wrapping import unwrap_model as _unwrap

__all__ = ["ModelEma"]


class ModelEma(nn.Module):
    """EMA copy of a model.

    Args:
        model: the network to copy (a DDP wrapper is looked through).
        decay: EMA decay (0.999 in the original).
        device: optional device for the copy (kept on the model's device when None).
    """

    def __init__(self, model: nn.Module, decay: float = 0.999,
                 device: Optional[torch.device] = None) -> None:
        super().__init__()
        self.module = deepcopy(_unwrap(model))
        self.module.eval()
        self.decay = decay
        self.device = device
        if self.device is not None:
            self.module.to(device=device)

    def _update(self, model: nn.Module, update_fn) -> None:
        with torch.no_grad():
            for ema_v, model_v in zip(self.module.state_dict().values(),
                                      _unwrap(model).state_dict().values()):
                if self.device is not None:
                    model_v = model_v.to(device=self.device)
                ema_v.copy_(update_fn(ema_v, model_v))

    def update(self, model: nn.Module) -> None:
        """``ema <- decay * ema + (1 - decay) * model`` for every state_dict entry."""
        self._update(model, update_fn=lambda e, m: self.decay * e + (1. - self.decay) * m)

    def set(self, model: nn.Module) -> None:
        """Copies the model's weights into the EMA."""
        self._update(model, update_fn=lambda e, m: m)
