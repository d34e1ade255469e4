"""``unwrap_model``: the network inside a DistributedDataParallel / DataParallel wrapper.

Internal code works on the bare network (state_dict keys without ``module.``); only
:mod:`libs.engine.checkpoint` adds the prefix that the original's files carry.
"""
from __future__ import annotations

from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

__all__ = ["unwrap_model"]


def unwrap_model(model: nn.Module) -> nn.Module:
    """``model.module`` for a DDP / DataParallel wrapper, else ``model`` itself."""
    while isinstance(model, (DistributedDataParallel, DataParallel)):
        model = model.module
    return model
