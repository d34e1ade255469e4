"""Opt-in mixed-precision training (``train.py --amp bf16|fp16``, off by default): the
autocast dtype of the network and, for float16, the gradient scaler.

The model runs its network under ``torch.autocast`` (``PtTransformer.train_amp_dtype``; the
logits and offsets are cast back to float32, so label assignment and the losses stay
float32). float16 needs gradient scaling (its range underflows small gradients): the loss is
multiplied by a dynamic scale before ``backward``, the gradients are unscaled before
clipping, and steps with inf / NaN gradients are skipped (``torch.amp.GradScaler``). bfloat16
has float32's range and needs no scaler.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["AMP_MODES", "MixedPrecision", "make_mixed_precision"]

AMP_MODES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecision:
    """Autocast dtype + optional gradient scaler of one training run.

    Args:
        mode: 'bf16' or 'fp16'.
        device: the training device (the scaler and autocast follow its type).
    """

    def __init__(self, mode: str, device: torch.device) -> None:
        if mode not in AMP_MODES:
            raise ValueError(f"--amp must be one of {sorted(AMP_MODES)}, got {mode!r}")
        self.mode = mode
        self.dtype = AMP_MODES[mode]
        self.scaler: Optional[torch.amp.GradScaler] = (
            torch.amp.GradScaler(torch.device(device).type) if mode == "fp16" else None)

    def attach(self, model: nn.Module) -> None:
        """Makes the (unwrapped) model autocast its network in training."""
        model.train_amp_dtype = self.dtype

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Brings the gradients back to their true size (before clipping)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with the scaler, skipped when a gradient is inf / NaN."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()


def make_mixed_precision(mode: Optional[str], device: torch.device
                         ) -> Optional[MixedPrecision]:
    """None when ``mode`` is None / 'none' / '' (float32 training, the default)."""
    if not mode or mode == "none":
        return None
    return MixedPrecision(mode, device)
