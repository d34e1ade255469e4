"""The original's local attention algorithm (docs/reference.md §3.3: Longformer overlapping
chunks), operator for operator: what the faithful procedure runs, at the original's cost.

Every step is the original's sequence of PyTorch operators (same allocations, in-place
updates, layouts and einsum products), so the faithful baseline costs what the original's
``LocalMaskedMHCA`` costs: q / k / v made contiguous as (B * nh, T, hs), ``q *= scale`` in
place, chunk products on ``as_strided`` overlapping views, the band assembled in an
uninitialised tensor, the out-of-range corners masked in place, ``rel_pe`` and the key-mask
band added in place on the (B, T, nh, 2w + 1) view, and the value product on chunks of 3w.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["flat_heads", "chunked_scores", "chunked_values", "chunked_attention_flat",
           "chunked_window_attention"]


def flat_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, C, T) -> contiguous (B * nh, T, hs) with head-major channels (the original's
    ``view(B, nh, hs, -1).transpose(2, 3).view(B * nh, -1, hs).contiguous()``)."""
    B, C, _ = x.shape
    hs = C // n_head
    return x.view(B, n_head, hs, -1).transpose(2, 3).reshape(B * n_head, -1, hs).contiguous()


def _chunk(x: torch.Tensor, w: int) -> torch.Tensor:
    """(BH, T, d) contiguous -> (BH, T / w - 1, 2w, d): chunks of 2w overlapping by w."""
    x = x.view(x.size(0), x.size(1) // (2 * w), 2 * w, x.size(2))
    size, stride = list(x.size()), list(x.stride())
    size[1], stride[1] = size[1] * 2 - 1, stride[1] // 2
    return x.as_strided(size=size, stride=stride)


def _mask_invalid_locations(scores: torch.Tensor, w: int) -> None:
    """In place: -inf at the band entries whose key lies before 0 or after T - 1.

    ``scores``: (B, T, nh, 2w + 1) (any strides)."""
    begin = scores.new_ones(w, w + 1).tril().flip(dims=[0])[None, :, None, :]
    end = begin.flip(dims=(1, 3))
    head = scores[:, :w, :, : w + 1]
    head.masked_fill_(begin.expand(head.size()) == 1, -float("inf"))
    tail = scores[:, -w:, :, -(w + 1):]
    tail.masked_fill_(end.expand(tail.size()) == 1, -float("inf"))


def chunked_scores(q: torch.Tensor, k: torch.Tensor, n_head: int, w: int) -> torch.Tensor:
    """Band scores of (B * nh, T, d) contiguous queries and keys: (B, T, nh, 2w + 1), column
    c of row i is key i - w + c, out-of-range corners -inf (a transposed view)."""
    bnh, T, _ = q.size()
    assert T % (2 * w) == 0, "chunked attention needs T divisible by 2 * window_overlap"
    n = T // w - 1
    chunk = torch.einsum("bcxd,bcyd->bcxy", (_chunk(q, w), _chunk(k, w)))  # (BH, n, 2w, 2w)
    # pad one row and re-read as (2w, 2w + 1): row x then holds keys x - w ... x + w
    chunk = F.pad(chunk, (0, 0, 0, 1))
    chunk = chunk.view(*chunk.size()[:-2], chunk.size(-1), chunk.size(-2))
    band = chunk.new_empty((bnh, n + 1, w, 2 * w + 1))
    band[:, :-1, :, w:] = chunk[:, :, :w, : w + 1]
    band[:, -1, :, w:] = chunk[:, -1, w:, : w + 1]
    band[:, 1:, :, :w] = chunk[:, :, -(w + 1):-1, w + 1:]
    band[:, 0, 1:w, 1:w] = chunk[:, 0, : w - 1, 1 - w:]
    band = band.view(bnh // n_head, n_head, T, 2 * w + 1).transpose(2, 1)
    _mask_invalid_locations(band, w)
    return band


def chunked_values(probs: torch.Tensor, v: torch.Tensor, n_head: int, w: int
                   ) -> torch.Tensor:
    """``sum_c probs[i, c] * v[i - w + c]``: probs (B, T, nh, 2w + 1), v (B * nh, T, d)
    contiguous -> (B, nh, T, d)."""
    bnh, T, d = v.size()
    B = bnh // n_head
    n = T // w - 1
    p = probs.transpose(1, 2).reshape(bnh, T // w, w, 2 * w + 1)
    padded_v = F.pad(v, (0, 0, w, w), value=-1)  # pads always meet a zero weight
    s0, s1, s2 = padded_v.stride()
    chunked_v = padded_v.as_strided(size=(bnh, n + 1, 3 * w, d), stride=(s0, w * s1, s1, s2))
    # diagonalise: row x of chunk c gets its 2w + 1 weights at columns x ... x + 2w of 3w
    p = F.pad(p, (0, w + 1))
    p = p.view(bnh, n + 1, -1)[:, :, :-w]
    p = p.view(bnh, n + 1, w, 3 * w + 1)[:, :, :, :-1]
    context = torch.einsum("bcwd,bcdh->bcwh", (p, chunked_v))
    return context.view(B, n_head, T, d)


def chunked_attention_flat(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           kv_mask: torch.Tensor, n_head: int, w: int,
                           rel_pe: Optional[torch.Tensor] = None,
                           attn_drop: Optional[nn.Module] = None) -> torch.Tensor:
    """The original's steps 2-7 on (B * nh, T, hs) contiguous q (scaled), k, v.

    Args: kv_mask (B, 1, T) bool; rel_pe (1, 1, nh, 2w + 1) or None.
    Returns: (B, nh, T, hs).
    """
    B = kv_mask.shape[0]
    att = chunked_scores(q, k, n_head, w)                             # (B, T, nh, 2w + 1)
    if rel_pe is not None:
        att += rel_pe
    inverse_kv_mask = torch.logical_not(kv_mask[:, :, :, None].view(B, -1, 1))
    float_inverse_kv_mask = inverse_kv_mask.type_as(q).masked_fill(inverse_kv_mask, -1e4)
    diagonal_mask = chunked_scores(float_inverse_kv_mask.new_ones(
        size=float_inverse_kv_mask.size()), float_inverse_kv_mask, 1, w)
    att += diagonal_mask
    att = F.softmax(att, dim=-1)
    att = att.masked_fill(torch.logical_not(kv_mask.squeeze(1)[:, :, None, None]), 0.0)
    if attn_drop is not None:
        att = attn_drop(att)
    return chunked_values(att, v, n_head, w)


def chunked_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                             kv_mask: torch.Tensor, window_overlap: int,
                             rel_pe: Optional[torch.Tensor] = None,
                             attn_drop: Optional[nn.Module] = None) -> torch.Tensor:
    """:func:`chunked_attention_flat` with the arguments of
    ``attention.local_window_attention``: q (scaled), k, v (B, nh, T, hs); kv_mask (B, T).
    Needs ``T % (2 * window_overlap) == 0`` (the original's assertion)."""
    B, nh, T, hs = q.shape
    q, k, v = (t.reshape(B * nh, T, hs).contiguous() for t in (q, k, v))
    return chunked_attention_flat(q, k, v, kv_mask[:, None, :], nh, window_overlap,
                                  rel_pe, attn_drop)
