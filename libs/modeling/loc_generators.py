"""Point generator ``point`` (docs/reference.md §3.8).

Mirrors the original's ``libs/modeling/loc_generators.py``. The per-level point tables live in
the child module ``buffer_points`` as non-persistent buffers ``"0"``, ``"1"``, ... (moved by
``.to(device)``, absent from the state_dict). Differences: none in behaviour.
"""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from .registry import GENERATORS

__all__ = ["BufferList", "PointGenerator"]


class BufferList(nn.Module):
    """A list of non-persistent buffers named "0", "1", ... (indexable, iterable)."""

    def __init__(self, buffers: Sequence[torch.Tensor]) -> None:
        super().__init__()
        for i, buffer in enumerate(buffers):
            self.register_buffer(str(i), buffer, persistent=False)

    def __len__(self) -> int:
        return len(self._buffers)

    def __iter__(self):
        return iter(self._buffers.values())

    def __getitem__(self, idx: int) -> torch.Tensor:
        return self._buffers[str(idx)]


@GENERATORS.register("point")
class PointGenerator(nn.Module):
    """Precomputed candidate points of every pyramid level.

    Args:
        max_seq_len: buffer length in input-grid steps (the meta-arch passes
            ``max_seq_len * max_buffer_len_factor``, a float).
        fpn_strides: stride s_l of every level.
        regression_range: (lo, hi) per level, input-grid units.
        use_offset: shift points by s/2 (never used).

    Level l holds a float32 (P_l, 4) table of rows ``(t, lo_l, hi_l, s_l)`` for
    ``t = 0, s_l, 2 s_l, ...`` below ``max_seq_len`` (P_l = ceil(max_seq_len / s_l)).
    """

    def __init__(self, max_seq_len: float, fpn_strides: Sequence[int],
                 regression_range: Sequence[Sequence[float]], use_offset: bool = False) -> None:
        super().__init__()
        assert len(fpn_strides) == len(regression_range)
        self.num_levels = len(fpn_strides)
        self.max_seq_len = max_seq_len
        self.fpn_strides = fpn_strides
        self.regression_range = regression_range
        self.use_offset = use_offset
        self.buffer_points = BufferList(self._generate_points())

    def _generate_points(self) -> List[torch.Tensor]:
        points_list = []
        for stride, reg_range in zip(self.fpn_strides, self.regression_range):
            t = torch.arange(0, self.max_seq_len, stride)[:, None].to(torch.float32)
            if self.use_offset:
                t = t + 0.5 * stride
            n = t.shape[0]
            lo_hi = torch.as_tensor(reg_range, dtype=torch.float32)[None].repeat(n, 1)
            s = torch.full((n, 1), float(stride), dtype=torch.float32)
            points_list.append(torch.cat((t, lo_hi, s), dim=1))
        return points_list

    def forward(self, feats: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Args: per-level features (B, C, T_l). Returns per-level points (T_l, 4)."""
        assert len(feats) == self.num_levels
        points = []
        for feat, buffer in zip(feats, self.buffer_points):
            T = feat.shape[-1]
            assert T <= buffer.shape[0], "Reached max buffer length for point generator"
            points.append(buffer[:T, :])
        return points
