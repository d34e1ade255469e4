"""Weight initialisers used by the model (docs/reference.md §3.3, §3.11).

Owns the truncated-normal initialiser for the relative position bias ``rel_pe`` of the local
attention. Behaviour follows the original's ``libs/modeling/weight_init.py``: sample by inverse
CDF (``uniform_`` then ``erfinv_``), scale, shift, then clamp to the absolute cut-offs
``[a, b]``. The random stream is consumed by exactly one ``uniform_`` call, so seeded
construction draws the same numbers as the original.
"""
from __future__ import annotations

import math

import torch


@torch.no_grad()
def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0,
                  a: float = -2.0, b: float = 2.0) -> torch.Tensor:
    """Fills ``tensor`` in place with N(mean, std²) truncated to ``[a, b]`` (absolute values).

    Args:
        tensor: any-shape float tensor to fill.
        mean: mean of the normal distribution.
        std: standard deviation of the normal distribution.
        a: lower cut-off (an absolute value, not in units of ``std``).
        b: upper cut-off.

    Returns:
        ``tensor`` itself.
    """
    def norm_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    lower = norm_cdf((a - mean) / std)
    upper = norm_cdf((b - mean) / std)
    # uniform on [2l-1, 2u-1], then the inverse error function gives a truncated standard normal
    tensor.uniform_(2 * lower - 1, 2 * upper - 1)
    tensor.erfinv_()
    tensor.mul_(std * math.sqrt(2.0))
    tensor.add_(mean)
    tensor.clamp_(min=a, max=b)
    return tensor
