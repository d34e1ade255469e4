"""Batching per-video features into padded inputs and masks (docs/reference.md §3.10)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

from .padding import original_padded_length

__all__ = ["batch_videos"]


@torch.no_grad()
def batch_videos(feats: Sequence[torch.Tensor], max_seq_len: int, max_div_factor: int,
                 training: bool, padding_val: float = 0.0,
                 device: Optional[torch.device] = None,
                 padded_len: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pads per-video features into one batch (docs/reference.md §3.10 ``preprocessing``).

    Training pads every video to ``max_seq_len``. Inference takes exactly one video and pads
    it to ``max_seq_len``, or to the next multiple of ``max_div_factor`` when longer.
    ``padded_len`` overrides that length (the model's minimal rule, see padding.py).

    Args:
        feats: per video (C, T_b) float features.
        max_seq_len: training length.
        max_div_factor: divisor every padded inference length must satisfy.
        training: which rule to apply.
        padding_val: value of padded positions.
        device: target device of both outputs.
        padded_len: explicit padded length (>= the longest input), or None for the
            original rule.

    Returns:
        inputs (B, C, T_pad) and masks (B, 1, T_pad) bool (True on the first T_b steps).
    """
    lengths = [int(f.shape[-1]) for f in feats]
    max_len = max(lengths)
    if training:
        if max_len > max_seq_len:
            raise ValueError(f"training input of length {max_len} exceeds max_seq_len "
                             f"{max_seq_len}; crop it in the dataset")
    elif len(feats) != 1:
        raise ValueError(f"inference takes one video per batch, got {len(feats)}")
    if padded_len is None:
        padded_len = original_padded_length(max_len, max_seq_len, max_div_factor, training)
    elif padded_len < max_len:
        raise ValueError(f"padded length {padded_len} is shorter than the input ({max_len})")
    batch_shape = [len(feats), feats[0].shape[0], padded_len]
    inputs = feats[0].new_full(batch_shape, padding_val)
    for feat, pad_feat in zip(feats, inputs):
        pad_feat[..., :feat.shape[-1]].copy_(feat)
    masks = (torch.arange(padded_len)[None, :] < torch.tensor(lengths)[:, None]).unsqueeze(1)
    if device is not None:
        inputs, masks = inputs.to(device), masks.to(device)
    return inputs, masks
