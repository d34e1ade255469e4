"""The pre-LN transformer block of the backbone (docs/reference.md §3.4).

Mirrors the original's ``TransformerBlock`` (libs/modeling/blocks.py). Frozen attribute names
and order: ``ln1, ln2, attn, pool_skip, mlp (0 conv, 1 GELU, 2 dropout, 3 conv, 4 dropout),
drop_path_attn, drop_path_mlp``. Differences: none in behaviour.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from .attention import LocalMaskedMHCA, MaskedMHCA
from .blocks import AffineDropPath, Conv1d, LayerNorm

__all__ = ["TransformerBlock"]


class TransformerBlock(nn.Module):
    """Pre-LN block: masked (local) attention + MLP, each with a masked residual.

    Args:
        n_embd: channels C.
        n_head: attention heads.
        n_ds_strides: (query stride, key/value stride); a stride > 1 downsamples the level and
            turns the skip path into a max-pool (kernel s + 1, stride s, padding (s + 1) // 2).
        n_out: output channels of the MLP (default C).
        n_hidden: MLP hidden channels (default 4 C).
        act_layer: MLP activation class (exact GELU).
        attn_pdrop, proj_pdrop: dropout on attention probabilities / projections and MLP.
        path_pdrop: drop-path rate; > 0 adds AffineDropPath (with ``scale`` parameters).
        mha_win_size: local window (odd, > 1) or <= 1 for global attention.
        use_rel_pe: relative position bias (local attention only).
    """

    def __init__(self, n_embd: int, n_head: int, n_ds_strides: Sequence[int] = (1, 1),
                 n_out: Optional[int] = None, n_hidden: Optional[int] = None,
                 act_layer=nn.GELU, attn_pdrop: float = 0.0, proj_pdrop: float = 0.0,
                 path_pdrop: float = 0.0, mha_win_size: int = -1,
                 use_rel_pe: bool = False) -> None:
        super().__init__()
        assert len(n_ds_strides) == 2
        q_stride, kv_stride = n_ds_strides
        self.ln1 = LayerNorm(n_embd)
        self.ln2 = LayerNorm(n_embd)
        if mha_win_size > 1:
            self.attn = LocalMaskedMHCA(n_embd, n_head, window_size=mha_win_size,
                                        n_qx_stride=q_stride, n_kv_stride=kv_stride,
                                        attn_pdrop=attn_pdrop, proj_pdrop=proj_pdrop,
                                        use_rel_pe=use_rel_pe)
        else:
            self.attn = MaskedMHCA(n_embd, n_head, n_qx_stride=q_stride,
                                   n_kv_stride=kv_stride, attn_pdrop=attn_pdrop,
                                   proj_pdrop=proj_pdrop)
        if q_stride > 1:
            kernel, stride, padding = q_stride + 1, q_stride, (q_stride + 1) // 2
            self.pool_skip = nn.MaxPool1d(kernel, stride=stride, padding=padding)
        else:
            self.pool_skip = nn.Identity()
        if n_hidden is None:
            n_hidden = 4 * n_embd
        if n_out is None:
            n_out = n_embd
        self.mlp = nn.Sequential(
            Conv1d(n_embd, n_hidden, 1),
            act_layer(),
            nn.Dropout(proj_pdrop, inplace=True),
            Conv1d(n_hidden, n_out, 1),
            nn.Dropout(proj_pdrop, inplace=True),
        )
        if path_pdrop > 0.0:
            self.drop_path_attn = AffineDropPath(n_embd, drop_prob=path_pdrop)
            self.drop_path_mlp = AffineDropPath(n_out, drop_prob=path_pdrop)
        else:
            self.drop_path_attn = nn.Identity()
            self.drop_path_mlp = nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                pos_embd: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, C, T); mask (B, 1, T) bool; pos_embd optional (1 or B, C, T / stride).

        Returns: (out (B, C_out, T / stride), exactly 0 at padded positions; mask).
        """
        out, out_mask = self.attn(self.ln1(x), mask)
        mask_f = out_mask.to(out.dtype)
        out = self.pool_skip(x) * mask_f + self.drop_path_attn(out)
        out = out + self.drop_path_mlp(self.mlp(self.ln2(out)) * mask_f)
        if pos_embd is not None:
            out = out + pos_embd * mask_f
        return out, out_mask
