"""Multi-head attention modules (docs/reference.md §3.3, Appendix D).

Owns MaskedMHCA (global attention with depthwise-conv q/k/v projections) and LocalMaskedMHCA
(the same with a sliding window). The original's plain ``MaskedMHA`` is not carried over:
no model of the original builds it.
Attribute names and their registration order are frozen (state_dict keys):
``query_conv, query_norm, key_conv, key_norm, value_conv, value_norm, key, query, value,
attn_drop, proj_drop, proj`` (+ ``rel_pe``, created last but listed first in the state_dict
because it is a direct parameter).

Differences from the original: the local attention computes the band directly (Appendix D):
query blocks meet the keys around them in one matrix product each and the band is read out by
an exact reshape, instead of the Longformer overlapping-chunk trick (which the faithful
procedure runs operator for operator: chunked_attention.py). The semantics are those of
docs/reference.md §3.3: out-of-range keys excluded (-inf), padded keys get an additive -1e4,
``rel_pe`` is added before the key mask, rows of padded queries are zeroed after the softmax.
The original's precondition T % 2w == 0 is kept so that the same inputs are accepted and
rejected.

Heads are head-major in channels: channel ``h * hs + d`` (B, C, T) -> (B, nh, T, hs).

Speed on small inputs (``blocks.use_fast_kernel``; numbers equal to float rounding): the
original runs q, k and v through three depthwise convs, three LayerNorms and three 1x1 convs.
When the three depthwise convs have the same kernel and stride (every shipped config) they run
as one grouped conv with three outputs per channel, one LayerNorm kernel normalises the three
results (each with its own weight and bias) and one batched matrix product applies the three
1x1 projections: ~10 fewer operator calls per block in each direction. Large inputs (and
``fast_kernels = False``, set by the faithful procedure) keep the three separate paths.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .blocks import Conv1d, LayerNorm, MaskedConv1D, use_fast_kernel
from .chunked_attention import chunked_attention_flat, chunked_window_attention, flat_heads
from .weight_init import trunc_normal_

__all__ = ["MaskedMHCA", "LocalMaskedMHCA", "local_window_attention",
           "chunked_window_attention"]


def _split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, C, T) -> (B, nh, T, hs), head-major channels."""
    B, C, T = x.shape
    return x.view(B, n_head, C // n_head, T).transpose(2, 3)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs) -> (B, C, T)."""
    B, nh, T, hs = x.shape
    return x.transpose(2, 3).contiguous().view(B, nh * hs, T)


def _global_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      kv_mask: torch.Tensor, attn_drop: nn.Module) -> torch.Tensor:
    """Dense attention over all valid keys.

    Args: q (B, nh, Tq, hs) already scaled; k, v (B, nh, Tk, hs); kv_mask (B, 1, Tk) bool.
    Returns: (B, nh, Tq, hs); invalid keys get -inf and invalid values are zeroed.
    """
    att = q @ k.transpose(-2, -1)  # (B, nh, Tq, Tk)
    att = att.masked_fill(torch.logical_not(kv_mask[:, :, None, :]), float("-inf"))
    att = F.softmax(att, dim=-1)
    att = attn_drop(att)
    return att @ (v * kv_mask[:, :, :, None].to(v.dtype))


def _band_from_blocks(scores: torch.Tensor, n_cols: int) -> torch.Tensor:
    """(..., b, b + 2w) block scores -> (..., b, 2w + 1) band: out[r, c] = scores[r, r + c].

    The "skew" reshape: flatten the rows, pad by b, and re-read with rows one element longer,
    so row r starts r elements further right. Only views, a pad and a slice (exact).
    """
    *lead, b, width = scores.shape
    flat = F.pad(scores.reshape(*lead, b * width), (0, b))
    return flat.view(*lead, b, width + 1)[..., :n_cols]


def _blocks_from_band(band: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of :func:`_band_from_blocks`: (..., b, 2w + 1) -> (..., b, b + 2w), zeros off-band."""
    *lead, b, n_cols = band.shape
    flat = F.pad(band, (0, width + 1 - n_cols)).reshape(*lead, b * (width + 1))
    return flat[..., : b * width].view(*lead, b, width)


def local_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           kv_mask: torch.Tensor, window_overlap: int,
                           rel_pe: torch.Tensor | None = None,
                           attn_drop: nn.Module | None = None,
                           block_size: int | None = None) -> torch.Tensor:
    """Banded attention: query i attends to keys i - w ... i + w (docs/reference.md §3.3 steps 2-7).

    Args:
        q: (B, nh, T, hs) queries, already multiplied by 1/sqrt(hs).
        k, v: (B, nh, T, hs) keys and values on the same grid.
        kv_mask: (B, T) bool, True = valid key (also used to zero padded query rows).
        window_overlap: w, half the window; the window has 2w + 1 columns.
        rel_pe: optional (1, 1, nh, 2w + 1) bias added per head and column.
        attn_drop: optional dropout on the probabilities.
        block_size: queries per block (default: max(2w, 16)).

    Returns:
        (B, nh, T, hs). Column c of row i is key j = i - w + c; keys outside [0, T) are
        excluded, in-range padded keys get -1e4 added, padded query rows get zero weights.

    How: the queries are cut into blocks of b; each block meets the b + 2w keys around it in
    one matrix product, (b, hs) @ (hs, b + 2w), and the 2w + 1 band columns are read out of
    that product (and written back for the value product) by an exact reshape. This is the
    banded semantics computed with GEMMs (about (b + 2w) / (2w + 1) times the band's work),
    without the original's overlapping-chunk bookkeeping.
    """
    B, nh, T, hs = q.shape
    w = window_overlap
    n_cols = 2 * w + 1
    b = block_size or max(2 * w, 16)
    n_blocks = -(-T // b)
    t_pad = n_blocks * b
    width = b + 2 * w
    # queries padded to whole blocks; keys / values padded by w in front and to t_pad + w
    q_blocks = F.pad(q, (0, 0, 0, t_pad - T)).reshape(B, nh, n_blocks, b, hs)
    k_ext = F.pad(k, (0, 0, w, t_pad - T + w))
    v_ext = F.pad(v, (0, 0, w, t_pad - T + w))
    k_blocks = k_ext.unfold(2, width, b)                       # (B, nh, nb, hs, b + 2w)
    v_blocks = v_ext.unfold(2, width, b).transpose(-1, -2)     # (B, nh, nb, b + 2w, hs)
    scores = _band_from_blocks(q_blocks @ k_blocks, n_cols)    # (B, nh, nb, b, 2w + 1)
    scores = scores.reshape(B, nh, t_pad, n_cols)[:, :, :T]    # (B, nh, T, 2w + 1)

    # additive bias per (batch, query, column): -inf out of range, -1e4 padded key, 0 else
    key_valid = F.pad(kv_mask.to(q.dtype), (w, w), value=0.0).unfold(1, n_cols, 1)  # (B,T,W)
    pos = torch.arange(T, device=q.device)[:, None] + torch.arange(n_cols, device=q.device) - w
    in_range = (pos >= 0) & (pos < T)  # (T, W)
    bias = (1.0 - key_valid) * -1e4
    bias = bias.masked_fill(~in_range, float("-inf"))
    if rel_pe is not None:
        # (1, 1, nh, W) -> (1, nh, 1, W); added before the key mask as in the original
        scores = scores + rel_pe.view(1, nh, 1, n_cols)
    scores = scores + bias[:, None, :, :]
    probs = F.softmax(scores, dim=-1)
    probs = probs.masked_fill(torch.logical_not(kv_mask)[:, None, :, None], 0.0)
    if attn_drop is not None:
        probs = attn_drop(probs)
    probs = F.pad(probs, (0, 0, 0, t_pad - T)).reshape(B, nh, n_blocks, b, n_cols)
    out = _blocks_from_band(probs, width) @ v_blocks         # (B, nh, nb, b, hs)
    return out.reshape(B, nh, t_pad, hs)[:, :, :T]           # (B, nh, T, hs)


class MaskedMHCA(nn.Module):
    """Global multi-head "conv attention": depthwise conv + LayerNorm before q/k/v.

    Args:
        n_embd: channels C (divisible by ``n_head``).
        n_head: number of heads.
        n_qx_stride: query downsampling stride (1 or even).
        n_kv_stride: key/value downsampling stride (1 or even). The query conv uses this
            stride too (a quirk of the original, harmless because both are always equal).
        attn_pdrop, proj_pdrop: dropout rates.
    """

    def __init__(self, n_embd: int, n_head: int, n_qx_stride: int = 1, n_kv_stride: int = 1,
                 attn_pdrop: float = 0.0, proj_pdrop: float = 0.0) -> None:
        super().__init__()
        assert n_embd % n_head == 0
        self.n_embd = n_embd
        self.n_head = n_head
        self.n_channels = n_embd // n_head
        self.scale = 1.0 / math.sqrt(self.n_channels)
        assert n_qx_stride == 1 or n_qx_stride % 2 == 0
        assert n_kv_stride == 1 or n_kv_stride % 2 == 0
        self.n_qx_stride = n_qx_stride
        self.n_kv_stride = n_kv_stride
        self._build_projections(attn_pdrop, proj_pdrop)

    def _build_projections(self, attn_pdrop: float, proj_pdrop: float) -> None:
        # registration order fixes the state_dict order and the RNG order at init
        C = self.n_embd
        kernel = self.n_qx_stride + 1 if self.n_qx_stride > 1 else 3
        self.query_conv = MaskedConv1D(C, C, kernel, stride=self.n_kv_stride,
                                       padding=kernel // 2, groups=C, bias=False)
        self.query_norm = LayerNorm(C)
        kernel = self.n_kv_stride + 1 if self.n_kv_stride > 1 else 3
        self.key_conv = MaskedConv1D(C, C, kernel, stride=self.n_kv_stride,
                                     padding=kernel // 2, groups=C, bias=False)
        self.key_norm = LayerNorm(C)
        self.value_conv = MaskedConv1D(C, C, kernel, stride=self.n_kv_stride,
                                       padding=kernel // 2, groups=C, bias=False)
        self.value_norm = LayerNorm(C)
        self.key = Conv1d(C, C, 1)
        self.query = Conv1d(C, C, 1)
        self.value = Conv1d(C, C, 1)
        self.attn_drop = nn.Dropout(attn_pdrop)
        self.proj_drop = nn.Dropout(proj_pdrop)
        self.proj = Conv1d(C, C, 1)

    # None: the module default of blocks.set_fast_kernels; set by the model's procedure
    fast_kernels = None

    def _can_fuse_qkv(self, x: torch.Tensor) -> bool:
        convs = (self.query_conv.conv, self.key_conv.conv, self.value_conv.conv)
        return (use_fast_kernel(3 * x.numel(), enabled=self.fast_kernels)
                and len({(c.kernel_size, c.stride, c.padding) for c in convs}) == 1
                and all(c.bias is None for c in convs))

    def _project_fused(self, x: torch.Tensor, mask: torch.Tensor):
        """:meth:`_project` with the three paths batched (see the module docstring)."""
        B, C, _ = x.shape
        convs = (self.query_conv, self.key_conv, self.value_conv)
        norms = (self.query_norm, self.key_norm, self.value_norm)
        projs = (self.query, self.key, self.value)
        conv = convs[0].conv
        stride = conv.stride[0]
        # output channel 3c + j is path j (q, k, v) of input channel c
        weight = torch.stack([m.conv.weight for m in convs], dim=1).flatten(0, 1)
        y = F.conv1d(x, weight, None, stride, conv.padding[0], groups=C)   # (B, 3C, T')
        out_mask = mask[:, :, ::stride] if stride > 1 else mask
        y = y * out_mask.to(y.dtype)
        T = y.shape[-1]
        y = y.view(B, C, 3, T).permute(0, 2, 3, 1)                           # (B, 3, T', C)
        y = F.layer_norm(y, (C,), None, None, norms[0].eps)
        ln_w = torch.stack([n.weight.view(C) for n in norms])[:, None]       # (3, 1, C)
        ln_b = torch.stack([n.bias.view(C) for n in norms])[:, None]
        y = y * ln_w + ln_b
        proj_w = torch.stack([p.weight.view(C, C) for p in projs])           # (3, C, C)
        proj_b = torch.stack([p.bias for p in projs])[:, None]               # (3, 1, C)
        y = torch.matmul(y, proj_w.transpose(1, 2)) + proj_b                 # (B, 3, T', C)
        q, k, v = (y[:, j].view(B, T, self.n_head, self.n_channels).transpose(1, 2)
                   for j in range(3))
        return q * self.scale, k, v, out_mask, out_mask

    def _project_channels(self, x: torch.Tensor, mask: torch.Tensor):
        """The original's three paths: q, k, v (B, C, T') unscaled and the q / kv masks."""
        q, qx_mask = self.query_conv(x, mask)
        q = self.query_norm(q)
        k, kv_mask = self.key_conv(x, mask)
        k = self.key_norm(k)
        v, _ = self.value_conv(x, mask)
        v = self.value_norm(v)
        return self.query(q), self.key(k), self.value(v), qx_mask, kv_mask

    def _project(self, x: torch.Tensor, mask: torch.Tensor):
        """Returns q (scaled), k, v as (B, nh, T', hs) and the masks (B, 1, T') of q and kv."""
        if self._can_fuse_qkv(x):
            return self._project_fused(x, mask)
        q, k, v, qx_mask, kv_mask = self._project_channels(x, mask)
        q, k, v = (_split_heads(t, self.n_head) for t in (q, k, v))
        return q * self.scale, k, v, qx_mask, kv_mask

    def _output(self, out: torch.Tensor, qx_mask: torch.Tensor) -> torch.Tensor:
        return self.proj_drop(self.proj(_merge_heads(out))) * qx_mask.to(out.dtype)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, C, T); mask (B, 1, T) bool.

        Returns: (out (B, C, T / stride) zero at padded queries, query mask (B, 1, T / stride)).
        """
        q, k, v, qx_mask, kv_mask = self._project(x, mask)
        out = _global_attention(q, k, v, kv_mask, self.attn_drop)
        return self._output(out, qx_mask), qx_mask


class LocalMaskedMHCA(MaskedMHCA):
    """Sliding-window version of :class:`MaskedMHCA` (window 2w + 1 centred on the query).

    Args:
        n_embd, n_head, n_qx_stride, n_kv_stride, attn_pdrop, proj_pdrop: as MaskedMHCA.
        window_size: odd window 2w + 1 (> 1); the downsampled length must be divisible by 2w.
        use_rel_pe: learn a (1, 1, nh, window_size) bias ``rel_pe`` (truncated normal,
            std sqrt(2 / n_embd), cut at +-2).
    """

    # The original asserts T' % 2w == 0. local_window_attention pads internally and needs no
    # divisibility; the model switches the check off only while it runs its exact minimal
    # padding (meta_archs.PtTransformer.forward_features), never for the original rule.
    check_length_divisible = True
    # 'banded' (local_window_attention) or 'chunked' (the original's algorithm, used by the
    # faithful procedure; needs the original padding). Set per instance by the procedure.
    attention_kernel = "banded"

    def __init__(self, n_embd: int, n_head: int, window_size: int, n_qx_stride: int = 1,
                 n_kv_stride: int = 1, attn_pdrop: float = 0.0, proj_pdrop: float = 0.0,
                 use_rel_pe: bool = False) -> None:
        super().__init__(n_embd, n_head, n_qx_stride, n_kv_stride, attn_pdrop, proj_pdrop)
        assert window_size > 1
        self.window_size = window_size
        self.window_overlap = window_size // 2
        self.use_rel_pe = use_rel_pe
        if use_rel_pe:
            # created last (RNG order of the original); the state_dict still lists it first
            assert window_size == 2 * self.window_overlap + 1, "rel_pe needs an odd window"
            self.rel_pe = nn.Parameter(torch.zeros(1, 1, n_head, window_size))
            trunc_normal_(self.rel_pe, std=(2.0 / n_embd) ** 0.5)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, C, T); mask (B, 1, T) bool.

        Returns: (out (B, C, T / stride) zero at padded queries, query mask (B, 1, T / stride)).
        """
        if self.attention_kernel == "chunked":
            return self._forward_chunked(x, mask)
        q, k, v, qx_mask, kv_mask = self._project(x, mask)
        T = q.shape[2]
        if self.check_length_divisible:
            assert T % (2 * self.window_overlap) == 0, \
                "local attention needs the (downsampled) length to be divisible by " \
                "2 * (window // 2)"
        out = local_window_attention(q, k, v, kv_mask[:, 0, :], self.window_overlap,
                                     rel_pe=self.rel_pe if self.use_rel_pe else None,
                                     attn_drop=self.attn_drop)
        return self._output(out, qx_mask), qx_mask

    def _forward_chunked(self, x: torch.Tensor, mask: torch.Tensor
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The original's forward operator for operator (chunked_attention.py)."""
        q, k, v, qx_mask, kv_mask = self._project_channels(x, mask)
        q, k, v = (flat_heads(t, self.n_head) for t in (q, k, v))
        q *= self.scale
        out = chunked_attention_flat(q, k, v, kv_mask, self.n_head, self.window_overlap,
                                     rel_pe=self.rel_pe if self.use_rel_pe else None,
                                     attn_drop=self.attn_drop)
        return self._output(out, qx_mask), qx_mask
