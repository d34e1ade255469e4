"""Padding rules of the model input: the original's and the exact minimal one.

The original pads every training batch to ``max_seq_len`` and every inference input to
``max(max_seq_len, ceil(T / max_div_factor) * max_div_factor)`` (docs/reference.md §3.10
``preprocessing``). Most of those positions are padding: on the THUMOS14 test set 579,456
positions are computed for 344,544 real ones.

Why less padding gives the same numbers (docs/reference.md §3.2-§3.9, §9 items 10-11): every masked
layer zeroes its padded outputs before the next LayerNorm / ReLU, so a padded position holds a
constant that does not depend on where it is (``relu(LN.bias)`` after the embedding,
``LN.bias`` after the identity neck, 0 after each transformer block, ...). Attention gives
padded keys a zero weight (-inf, or -1e4 which underflows to exactly 0 after the softmax).
A valid position therefore only sees, through the k = 3 convolutions and the stride-2
max-pool of each pyramid level, *whether* its right neighbours exist and are padding or do not
exist at all (the convolution's own zero padding / the pool's -inf) -- never how much padding
follows. So a padded length gives the same valid outputs as the original's when, at every
level ``l`` and for every video, the number of padded positions after the valid ones,
clipped to the operators' reach ``r``, is the same: ``min(p_new_l, r) == min(p_orig_l, r)``
(r = 1 for every shipped config: kernels 3 and stride 2). In particular a level without any
padding in the original (e.g. the stride-32 level of T = 2,300 with max_seq_len 2,304) must
have none in the new layout, and then the padded length equals the original one.

What else must hold (checked by the caller, see ``PtTransformer.padded_length``): the padded
length is divisible by ``scale_factor ** (levels - 1)`` (strided convs), and by the local
attention windows when the attention keeps the original's ``T % 2w`` assertion; absolute
position embeddings at inference are stretched to the padded length once it reaches
``max_seq_len`` (§3.6 step 3), so those inputs keep the original length; decoding must not
keep padded points (``pre_nms_thresh >= 0``); dropout draws random numbers for every padded
position, so training with dropout keeps the original length.

Lengths are in input-grid steps; level ``l`` has ``T / scale_factor ** l`` steps and a valid
prefix of ``n`` becomes ``ceil(n / scale_factor)`` per level (nearest mask downsampling).
"""
from __future__ import annotations

from typing import List, Sequence

__all__ = ["PADDING_MODES", "check_padding_mode", "level_valid_lengths",
           "original_padded_length", "minimal_padded_length"]

PADDING_MODES = ("minimal", "original")


def check_padding_mode(mode: str) -> str:
    """Returns ``mode`` if it is a known padding rule, else raises ValueError."""
    if mode not in PADDING_MODES:
        raise ValueError(f"test_cfg.padding must be one of {PADDING_MODES}, got {mode!r}")
    return mode


def level_valid_lengths(length: int, num_levels: int, scale_factor: int) -> List[int]:
    """Valid prefix per pyramid level: ``n_0 = length``, ``n_l = ceil(n_{l-1} / scale)``."""
    out = [int(length)]
    for _ in range(num_levels - 1):
        out.append(-(-out[-1] // scale_factor))
    return out


def original_padded_length(max_length: int, max_seq_len: int, max_div_factor: int,
                           training: bool) -> int:
    """The original's padded length for a batch whose longest input has ``max_length`` steps.

    Training: always ``max_seq_len``. Inference: ``max_seq_len`` for inputs up to that length,
    else the next multiple of ``max_div_factor``.
    """
    if training or max_length <= max_seq_len:
        return max_seq_len
    return -(-max_length // max_div_factor) * max_div_factor


def _levels_agree(length: int, padded: int, original: int, num_levels: int,
                  scale_factor: int, reach: int) -> bool:
    valid = level_valid_lengths(length, num_levels, scale_factor)
    for level, n in enumerate(valid):
        div = scale_factor ** level
        p_new, p_orig = padded // div - n, original // div - n
        if p_new < 0 or min(p_new, reach) != min(p_orig, reach):
            return False
    return True


def minimal_padded_length(lengths: Sequence[int], original: int, num_levels: int,
                          scale_factor: int, divisor: int, reach: int = 1) -> int:
    """Shortest padded length that gives every video the same valid outputs as ``original``.

    Args:
        lengths: valid length of every video of the batch.
        original: the original rule's padded length for this batch (a multiple of
            ``scale_factor ** (num_levels - 1)``).
        num_levels: pyramid levels of the backbone (``backbone_arch[2] + 1``).
        scale_factor: downsampling between levels.
        divisor: the padded length must be a multiple of this (at least
            ``scale_factor ** (num_levels - 1)``).
        reach: how many positions past a valid one any operator reads at one level.

    Returns:
        the smallest multiple of ``divisor`` that is at least the longest length and agrees
        with ``original`` on ``min(padding, reach)`` at every level for every video;
        ``original`` itself when no shorter length does.
    """
    longest = max(int(t) for t in lengths)
    if longest > original:
        raise ValueError(f"input of length {longest} is longer than its padded length "
                         f"{original}")
    if original % (scale_factor ** (num_levels - 1)) != 0:
        return original
    for t in lengths:
        # a level without padding in the original can only be reproduced by the original
        valid = level_valid_lengths(t, num_levels, scale_factor)
        if any(original // scale_factor ** l == n for l, n in enumerate(valid)):
            return original
    candidate = -(-longest // divisor) * divisor
    while candidate < original:
        if all(_levels_agree(t, candidate, original, num_levels, scale_factor, reach)
               for t in lengths):
            return candidate
        candidate += divisor
    return original
