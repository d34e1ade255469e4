"""Backbones: ``convTransformer`` and ``conv`` (docs/reference.md §3.6).

Mirrors the original's ``libs/modeling/backbones.py``. Frozen attribute names and order:
``proj`` (multi-input only), ``embd``, ``embd_norm``, (buffer ``pos_embd``, non-persistent),
``stem``, ``branch``. Differences: none in behaviour; the shared input projection and
embedding stack live in one helper that keeps the names and the construction order.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import ConvBlock, LayerNorm, MaskedConv1D, get_sinusoid_encoding
from .registry import BACKBONES
from .transformer import TransformerBlock

__all__ = ["ConvTransformerBackbone", "ConvBackbone"]

IntOrList = Union[int, Sequence[int]]


class _EmbeddingMixin(nn.Module):
    """Builds/applies ``proj`` (multi-input projection) and the ``embd``/``embd_norm`` stack,
    and runs the ``stem`` / ``branch`` blocks into pyramid levels (both backbones)."""

    def _pyramid(self, x: torch.Tensor, mask: torch.Tensor
                 ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """Stem blocks, then one level per (strided) branch block: level 0 is the stem output,
        level l the output of branch block l - 1. Returns (features, masks) per level."""
        for block in self.stem:
            x, mask = block(x, mask)
        out_feats, out_masks = (x,), (mask,)
        for block in self.branch:
            x, mask = block(x, mask)
            out_feats += (x,)
            out_masks += (mask,)
        return out_feats, out_masks

    def _build_embedding(self, n_in: IntOrList, n_embd: IntOrList, n_embd_ks: int,
                         n_layers: int, with_ln: bool) -> int:
        """Registers ``relu``, ``proj``, ``embd``, ``embd_norm``; returns the embedding width."""
        self.relu = nn.ReLU(inplace=True)
        if isinstance(n_in, (list, tuple)):
            assert isinstance(n_embd, (list, tuple)) and len(n_in) == len(n_embd), \
                "a list input_dim needs a list embd_dim of the same length"
            self.n_in = list(n_in)
            self.proj = nn.ModuleList(
                [MaskedConv1D(c_in, c_out, 1) for c_in, c_out in zip(n_in, n_embd)])
            n_in = n_embd = sum(n_embd)
        else:
            self.n_in = n_in
            self.proj = None
        self.embd = nn.ModuleList()
        self.embd_norm = nn.ModuleList()
        for idx in range(n_layers):
            self.embd.append(MaskedConv1D(n_in if idx == 0 else n_embd, n_embd, n_embd_ks,
                                          stride=1, padding=n_embd_ks // 2, bias=not with_ln))
            self.embd_norm.append(LayerNorm(n_embd) if with_ln else nn.Identity())
        return n_embd

    def _embed(self, x: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, C_in, T), (B, 1, T) -> (B, C, T): projection, then conv -> mask -> LN -> ReLU."""
        if self.proj is not None:
            chunks = torch.split(x, self.n_in, dim=1)
            x = torch.cat([proj(chunk, mask)[0] for proj, chunk in zip(self.proj, chunks)],
                          dim=1)
        for conv, norm in zip(self.embd, self.embd_norm):
            x, mask = conv(x, mask)
            x = self.relu(norm(x))
        return x, mask

    def _zero_biases(self) -> None:
        # every Linear/Conv1d bias of the backbone starts at 0 (original __init_weights__)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d)) and module.bias is not None:
                nn.init.constant_(module.bias, 0.0)


@BACKBONES.register("convTransformer")
class ConvTransformerBackbone(_EmbeddingMixin):
    """Conv embedding + transformer stem + strided transformer branch (a feature pyramid).

    Args:
        n_in: input channels (or a list for several concatenated feature types).
        n_embd: embedding channels C (a list, summed, when ``n_in`` is a list).
        n_head: attention heads.
        n_embd_ks: kernel of the embedding convs.
        max_len: training length (size of the absolute position table).
        arch: (#embedding convs, #stem blocks, #branch blocks).
        mha_win_size: per-level window sizes, length 1 + arch[2] (<= 1: global attention).
        scale_factor: downsampling between pyramid levels.
        with_ln: LayerNorm after each embedding conv.
        attn_pdrop, proj_pdrop, path_pdrop: dropout / drop-path rates.
        use_abs_pe: add the sinusoid position table (non-persistent buffer ``pos_embd``).
        use_rel_pe: relative position bias in local attention.

    Forward returns tuples of ``arch[2] + 1`` features (B, C, T / scale^l) and masks.
    """

    def __init__(self, n_in: IntOrList, n_embd: IntOrList, n_head: int, n_embd_ks: int,
                 max_len: int, arch: Sequence[int] = (2, 2, 5),
                 mha_win_size: Sequence[int] = (-1,) * 6, scale_factor: int = 2,
                 with_ln: bool = False, attn_pdrop: float = 0.0, proj_pdrop: float = 0.0,
                 path_pdrop: float = 0.0, use_abs_pe: bool = False,
                 use_rel_pe: bool = False) -> None:
        super().__init__()
        assert len(arch) == 3
        assert len(mha_win_size) == 1 + arch[2]
        self.arch = arch
        self.mha_win_size = mha_win_size
        self.max_len = max_len
        self.scale_factor = scale_factor
        self.use_abs_pe = use_abs_pe
        self.use_rel_pe = use_rel_pe
        n_embd = self._build_embedding(n_in, n_embd, n_embd_ks, arch[0], with_ln)
        if use_abs_pe:
            pos_embd = get_sinusoid_encoding(max_len, n_embd) / (n_embd ** 0.5)
            self.register_buffer("pos_embd", pos_embd, persistent=False)
        self.stem = nn.ModuleList([
            TransformerBlock(n_embd, n_head, n_ds_strides=(1, 1), attn_pdrop=attn_pdrop,
                             proj_pdrop=proj_pdrop, path_pdrop=path_pdrop,
                             mha_win_size=mha_win_size[0], use_rel_pe=use_rel_pe)
            for _ in range(arch[1])])
        self.branch = nn.ModuleList([
            TransformerBlock(n_embd, n_head, n_ds_strides=(scale_factor, scale_factor),
                             attn_pdrop=attn_pdrop, proj_pdrop=proj_pdrop,
                             path_pdrop=path_pdrop, mha_win_size=mha_win_size[1 + idx],
                             use_rel_pe=use_rel_pe)
            for idx in range(arch[2])])
        self._zero_biases()

    def forward(self, x: torch.Tensor, mask: torch.Tensor
                ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """Args: x (B, C_in, T); mask (B, 1, T) bool. Returns (features, masks) per level."""
        x, mask = self._embed(x, mask)
        if self.use_abs_pe:
            T = x.shape[-1]
            if self.training:
                assert T <= self.max_len, "Reached max length."
                pe = self.pos_embd
            elif T >= self.max_len:
                # longer inference inputs stretch the table (identity when T == max_len)
                pe = F.interpolate(self.pos_embd, T, mode="linear", align_corners=False)
            else:
                pe = self.pos_embd
            x = x + pe[:, :, :T] * mask.to(x.dtype)
        return self._pyramid(x, mask)


@BACKBONES.register("conv")
class ConvBackbone(_EmbeddingMixin):
    """Conv embedding + residual conv stem + strided conv branch (no attention, no PE).

    Args:
        n_in, n_embd, n_embd_ks, arch, scale_factor, with_ln: as ConvTransformerBackbone.
    """

    def __init__(self, n_in: IntOrList, n_embd: IntOrList, n_embd_ks: int,
                 arch: Sequence[int] = (2, 2, 5), scale_factor: int = 2,
                 with_ln: bool = False) -> None:
        super().__init__()
        assert len(arch) == 3
        self.arch = arch
        self.scale_factor = scale_factor
        n_embd = self._build_embedding(n_in, n_embd, n_embd_ks, arch[0], with_ln)
        self.stem = nn.ModuleList([ConvBlock(n_embd, 3, 1) for _ in range(arch[1])])
        self.branch = nn.ModuleList(
            [ConvBlock(n_embd, 3, scale_factor) for _ in range(arch[2])])
        self._zero_biases()

    def forward(self, x: torch.Tensor, mask: torch.Tensor
                ) -> Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]:
        """Args: x (B, C_in, T); mask (B, 1, T) bool. Returns (features, masks) per level."""
        x, mask = self._embed(x, mask)
        return self._pyramid(x, mask)
