"""``make_optimizer``: AdamW / SGD with a weight-decay and a no-decay group (docs/reference.md
§7.5).

Every parameter is classified by the first rule that matches, looking at each (module,
parameter) pair reachable through ``named_modules()`` / ``named_parameters()``:

=================================================================  ========
rule                                                               group
=================================================================  ========
name ends with ``bias``                                            no-decay
``weight`` of ``nn.Linear`` / ``nn.Conv1d`` / ``MaskedConv1D``     decay
``weight`` of the custom ``LayerNorm`` / ``nn.GroupNorm``           no-decay
``scale`` of ``Scale`` / ``AffineDropPath``                        no-decay
name ends with ``rel_pe``                                          no-decay
=================================================================  ========

The two sets must be disjoint and cover every parameter. Groups are, in this order,
``[decay params sorted by name (weight_decay = opt.weight_decay), no-decay params sorted by
name (weight_decay = 0)]``: the order fixes the optimizer's ``state_dict`` (parameter ids), so
it is part of the checkpoint format. THUMOS: 71 decay and 158 no-decay tensors.

Implementation (speed only): by default the optimizer uses PyTorch's fused kernel
(``fused=True``: one call updates every parameter), where PyTorch has one for the device;
the original steps parameter by parameter in Python. The arithmetic is the same update rule in
another order: parameters agree to float rounding (about 1 ulp per step, tested). The optional
config key ``opt.fused: false`` (or ``make_optimizer(..., fused=False)``) restores the
original's per-parameter loop, bit for bit. The flag is not part of the training state:
checkpoints store the original's ``fused``/``foreach`` values (None) and resuming keeps the
running optimizer's choice (see ``checkpoint.py``).
"""
from __future__ import annotations

import warnings
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from libs.modeling import AffineDropPath, LayerNorm, MaskedConv1D, Scale
from libs.utils.procedure import Procedure

from .wrapping import unwrap_model as _unwrap

__all__ = ["make_optimizer", "split_decay_params"]

_DECAY_WEIGHT_MODULES = (nn.Linear, nn.Conv1d, MaskedConv1D)
_NO_DECAY_WEIGHT_MODULES = (LayerNorm, nn.GroupNorm)
_SCALE_MODULES = (Scale, AffineDropPath)


def split_decay_params(model: nn.Module) -> Tuple[List[str], List[str]]:
    """Names of the parameters with and without weight decay, each sorted.

    Raises:
        RuntimeError: a parameter falls in both groups or in none (a new layer type that
            the rules above do not know).
    """
    # sorting by name gives the same order with or without the wrapper's ``module.`` prefix
    model = _unwrap(model)
    decay, no_decay = set(), set()
    for mn, m in model.named_modules():
        for pn, _ in m.named_parameters():
            fpn = f"{mn}.{pn}" if mn else pn
            if pn.endswith("bias"):
                no_decay.add(fpn)
            elif pn.endswith("weight") and isinstance(m, _DECAY_WEIGHT_MODULES):
                decay.add(fpn)
            elif pn.endswith("weight") and isinstance(m, _NO_DECAY_WEIGHT_MODULES):
                no_decay.add(fpn)
            elif pn.endswith("scale") and isinstance(m, _SCALE_MODULES):
                no_decay.add(fpn)
            elif pn.endswith("rel_pe"):
                no_decay.add(fpn)
    names = {pn for pn, _ in model.named_parameters()}
    both = decay & no_decay
    missing = names - (decay | no_decay)
    if both:
        raise RuntimeError(f"parameters {sorted(both)} made it into both decay/no_decay sets")
    if missing:
        raise RuntimeError(f"parameters {sorted(missing)} were not separated into either "
                           "decay/no_decay set (unknown layer type?)")
    return sorted(decay), sorted(no_decay)


def make_optimizer(model: nn.Module, optimizer_config: Mapping,
                   fused: Optional[bool] = None,
                   procedure: Optional[Procedure] = None) -> torch.optim.Optimizer:
    """Builds the optimizer of the ``opt`` config section.

    Args:
        model: the network (a DDP / DataParallel wrapper is looked through).
        optimizer_config: ``cfg['opt']``: ``type`` (``'AdamW'`` or ``'SGD'``),
            ``learning_rate``, ``weight_decay``, ``momentum`` (SGD only), optional ``fused``.
        fused: overrides ``optimizer_config['fused']`` (default True): use PyTorch's fused
            kernel where the parameters' device has one (else the per-parameter loop, with a
            warning when it was asked for explicitly).
        procedure: when given (and ``fused`` is None), its ``fused_optimizer`` decides
            (libs/utils/procedure.py; ``procedure_from_config`` already reads ``opt.fused``).

    Raises:
        TypeError: unsupported optimizer type (the original's message).
    """
    decay, no_decay = split_decay_params(model)
    params: Dict[str, nn.Parameter] = dict(_unwrap(model).named_parameters())
    groups = [
        {"params": [params[n] for n in decay], "weight_decay": optimizer_config["weight_decay"]},
        {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
    ]
    if optimizer_config["type"] == "SGD":
        cls = torch.optim.SGD
        kwargs = {"lr": optimizer_config["learning_rate"],
                  "momentum": optimizer_config["momentum"]}
    elif optimizer_config["type"] == "AdamW":
        cls = torch.optim.AdamW
        kwargs = {"lr": optimizer_config["learning_rate"]}
    else:
        raise TypeError("Unsupported optimizer!")
    explicit = fused is not None or "fused" in optimizer_config
    if fused is None and procedure is not None:
        fused = procedure.fused_optimizer
    if fused is None:
        fused = bool(optimizer_config.get("fused", True))
    if fused:
        try:
            return cls(groups, fused=True, **kwargs)
        except (RuntimeError, ValueError) as err:  # no fused kernel for this device / dtype
            if explicit:
                warnings.warn(f"fused {optimizer_config['type']} is not available here ({err}); "
                              "using the per-parameter loop", stacklevel=2)
    return cls(groups, **kwargs)
