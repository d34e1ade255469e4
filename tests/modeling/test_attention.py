"""Local attention equals a dense O(T^2) masked attention with the band semantics of
docs/reference.md §3.3 (written here, independently of the implementation)."""
from __future__ import annotations

import pytest
import torch

from libs.modeling import LocalMaskedMHCA, MaskedMHCA
from libs.modeling.attention import local_window_attention


def dense_band_attention(q, k, v, kv_mask, w, rel_pe=None):
    """q, k, v (B, nh, T, hs); kv_mask (B, T) bool; band |i - j| <= w."""
    B, nh, T, _ = q.shape
    scores = q @ k.transpose(-1, -2)                         # (B, nh, T, T)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    band = (j - i).abs() <= w
    if rel_pe is not None:
        column = (j - i + w).clamp(0, 2 * w)                 # band column of key j
        scores = scores + torch.where(band, rel_pe[0, 0][:, column], torch.zeros(()))[None]
    key_term = torch.where(kv_mask[:, None, None, :], 0.0, -1e4)
    scores = scores + key_term
    scores = scores.masked_fill(~band, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    probs = probs * kv_mask[:, None, :, None]
    return probs @ v


def _random_qkv(B, nh, T, hs, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, nh, T, hs, generator=g) for _ in range(3)]


@pytest.mark.parametrize("use_rel_pe", [False, True])
def test_band_function_matches_dense_reference_with_padded_batch(use_rel_pe):
    q, k, v = _random_qkv(3, 2, 16, 4, seed=1)
    kv_mask = torch.arange(16)[None, :] < torch.tensor([16, 11, 3])[:, None]
    rel_pe = torch.randn(1, 1, 2, 7) if use_rel_pe else None
    out = local_window_attention(q, k, v, kv_mask, 3, rel_pe=rel_pe)
    expected = dense_band_attention(q, k, v, kv_mask, 3, rel_pe)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert (out[2, :, 3:] == 0).all()


@pytest.mark.parametrize("block_size", [1, 5, 6, 7, 16, 40])
@pytest.mark.parametrize("T", [16, 37])
def test_band_function_is_independent_of_the_query_block_size(block_size, T):
    # blocks smaller than, equal to, not dividing, and larger than T / 2w
    q, k, v = _random_qkv(2, 3, T, 8, seed=T)
    kv_mask = torch.arange(T)[None, :] < torch.tensor([T, T - 9])[:, None]
    rel_pe = torch.randn(1, 1, 3, 7)
    out = local_window_attention(q, k, v, kv_mask, 3, rel_pe=rel_pe, block_size=block_size)
    expected = dense_band_attention(q, k, v, kv_mask, 3, rel_pe)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def _module_qkv(attn, x, mask):
    """q (scaled), k, v and masks from the module's own projection submodules."""
    def heads(t):
        B, C, T = t.shape
        return t.view(B, attn.n_head, C // attn.n_head, T).transpose(2, 3)
    q, qmask = attn.query_conv(x, mask)
    k, kvmask = attn.key_conv(x, mask)
    v, _ = attn.value_conv(x, mask)
    q = heads(attn.query(attn.query_norm(q))) / (attn.n_embd // attn.n_head) ** 0.5
    k = heads(attn.key(attn.key_norm(k)))
    v = heads(attn.value(attn.value_norm(v)))
    return q, k, v, qmask, kvmask


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("use_rel_pe", [False, True])
def test_local_mhca_matches_dense_reference(stride, use_rel_pe):
    torch.manual_seed(0)
    attn = LocalMaskedMHCA(8, 2, window_size=5, n_qx_stride=stride, n_kv_stride=stride,
                           use_rel_pe=use_rel_pe)
    with torch.no_grad():  # non-trivial biases so that the test can see the padding rules
        for p in attn.parameters():
            p.add_(0.3 * torch.randn_like(p))
    attn.eval()
    T = 16 * stride
    x = torch.randn(2, 8, T)
    mask = (torch.arange(T)[None, :] < torch.tensor([T, T - 7])[:, None]).unsqueeze(1)
    out, out_mask = attn(x, mask)

    q, k, v, qmask, kvmask = _module_qkv(attn, x, mask)
    ctx = dense_band_attention(q, k, v, kvmask[:, 0], 2, attn.rel_pe if use_rel_pe else None)
    B, nh, Tq, hs = ctx.shape
    expected = attn.proj(ctx.transpose(2, 3).reshape(B, nh * hs, Tq)) * qmask
    assert torch.equal(out_mask, qmask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_rel_pe_is_listed_first_and_truncated():
    torch.manual_seed(0)
    attn = LocalMaskedMHCA(32, 4, window_size=9, use_rel_pe=True)
    keys = list(attn.state_dict())
    assert keys[0] == "rel_pe" and keys[1] == "query_conv.conv.weight"
    assert attn.rel_pe.shape == (1, 1, 4, 9)
    assert attn.rel_pe.abs().max() <= 2.0 and attn.rel_pe.std() > 0


def test_local_attention_keeps_the_length_divisibility_precondition():
    attn = LocalMaskedMHCA(8, 2, window_size=9)  # 2w = 8
    with pytest.raises(AssertionError):
        attn(torch.randn(1, 8, 12), torch.ones(1, 1, 12, dtype=torch.bool))


def test_global_mhca_ignores_padded_keys():
    torch.manual_seed(0)
    attn = MaskedMHCA(8, 2)
    attn.eval()
    mask = (torch.arange(10) < 6).view(1, 1, 10)
    x = torch.randn(1, 8, 10)
    x2 = x.clone()
    x2[..., 7:] = 100.0  # change only padded keys that the depthwise conv cannot reach
    out1, _ = attn(x, mask)
    out2, _ = attn(x2, mask)
    torch.testing.assert_close(out1, out2)
    assert (out1[..., 6:] == 0).all()


@pytest.mark.parametrize("T,w,use_rel_pe", [(32, 4, False), (36, 9, True), (16, 2, True),
                                           (64, 4, False)])
def test_original_chunked_algorithm_equals_the_banded_kernel(T, w, use_rel_pe):
    """Two independent implementations of docs/reference.md §3.3: the original's overlapping chunks
    and the block-banded kernel, on a padded batch."""
    from libs.modeling.attention import chunked_window_attention
    g = torch.Generator().manual_seed(T + w)
    q, k, v = (torch.randn(2, 4, T, 8, generator=g) for _ in range(3))
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[1, T - 7:] = False
    rel = torch.randn(1, 1, 4, 2 * w + 1, generator=g) if use_rel_pe else None
    banded = local_window_attention(q, k, v, mask, w, rel)
    chunked = chunked_window_attention(q, k, v, mask, w, rel)
    torch.testing.assert_close(chunked, banded, atol=1e-5, rtol=1e-5)
    assert torch.all(chunked[1, :, T - 7:] == 0)
    with pytest.raises(AssertionError, match="divisible"):
        chunked_window_attention(q[:, :, :-1], k[:, :, :-1], v[:, :, :-1], mask[:, :-1], w)


def test_module_kernel_switch(monkeypatch):
    torch.manual_seed(0)
    attn = LocalMaskedMHCA(16, 4, window_size=9, n_qx_stride=2, n_kv_stride=2, use_rel_pe=True)
    x = torch.randn(2, 16, 32)
    mask = torch.ones(2, 1, 32, dtype=torch.bool)
    mask[0, :, 20:] = False
    banded = attn(x, mask)[0]
    monkeypatch.setattr(LocalMaskedMHCA, "attention_kernel", "chunked")
    torch.testing.assert_close(attn(x, mask)[0], banded, atol=1e-5, rtol=1e-5)
