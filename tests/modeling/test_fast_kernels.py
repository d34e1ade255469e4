"""The small-input kernels of libs.modeling keep the numbers (float rounding only).

Oracles: the original's operators, selected by ``set_fast_kernels(False)`` (and used on large
inputs), and hand-worked values (a zero column normalises to exactly the bias).
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from libs.modeling import blocks
from libs.modeling.attention import LocalMaskedMHCA, MaskedMHCA
from libs.modeling.blocks import (FAST_KERNEL_MAX_NUMEL, Conv1d, LayerNorm,
                                  fast_kernels_enabled, set_fast_kernels)


@pytest.fixture
def original_kernels():
    """Restores the default after a test flips the process-wide switch."""
    state = fast_kernels_enabled()
    yield
    set_fast_kernels(state)


def _fwd_bwd(module, *inputs):
    inputs = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out = module(*inputs)
    out = out[0] if isinstance(out, tuple) else out
    g = torch.Generator().manual_seed(5)
    module.zero_grad()
    out.backward(torch.randn(out.shape, generator=g))
    grads = [p.grad.clone() for p in module.parameters() if p.grad is not None]
    return out.detach(), grads + [t.grad for t in inputs if t.grad is not None]


def _assert_close_lists(a, b, tol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=tol, rtol=tol)


def _layernorm_and_input(T):
    """A 16-channel LayerNorm with random affine parameters and a (2, 16, T) input whose last
    five columns are zero (padding)."""
    torch.manual_seed(0)
    ln = LayerNorm(16)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(2, 16, T) * 3 + 1
    x[:, :, -5:] = 0  # padded columns
    return ln, x


def test_layernorm_kernel_matches_the_original_arithmetic(original_kernels):
    ln, x = _layernorm_and_input(40)
    set_fast_kernels(True)
    fast = _fwd_bwd(ln, x)
    set_fast_kernels(False)
    slow = _fwd_bwd(ln, x)
    torch.testing.assert_close(fast[0], slow[0], atol=1e-5, rtol=1e-5)
    _assert_close_lists(fast[1], slow[1])
    # a zero column is exactly the bias in both
    assert torch.equal(fast[0][:, :, -1], ln.bias.detach()[:, :, 0].expand(2, 16))
    assert torch.equal(slow[0][:, :, -1], ln.bias.detach()[:, :, 0].expand(2, 16))


@pytest.mark.parametrize("cls,stride", [(MaskedMHCA, 1), (MaskedMHCA, 2),
                                        (LocalMaskedMHCA, 1), (LocalMaskedMHCA, 2)])
def test_fused_qkv_matches_three_separate_paths(original_kernels, cls, stride):
    torch.manual_seed(0)
    kw = dict(window_size=5) if cls is LocalMaskedMHCA else {}
    attn = cls(16, 4, n_qx_stride=stride, n_kv_stride=stride, **kw)
    with torch.no_grad():
        for p in attn.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(2, 16, 32)
    mask = torch.ones(2, 1, 32, dtype=torch.bool)
    mask[1, :, 21:] = False
    set_fast_kernels(True)
    assert attn._can_fuse_qkv(x)
    fast = _fwd_bwd(attn, x, mask)
    set_fast_kernels(False)
    assert not attn._can_fuse_qkv(x)
    slow = _fwd_bwd(attn, x, mask)
    torch.testing.assert_close(fast[0], slow[0], atol=1e-5, rtol=1e-5)
    _assert_close_lists(fast[1], slow[1])


def test_qkv_fusion_needs_identical_convs(original_kernels):
    attn = MaskedMHCA(16, 4, n_qx_stride=4, n_kv_stride=2)
    # the query conv's kernel follows n_qx_stride, its stride n_kv_stride: kernels differ
    assert attn.query_conv.conv.kernel_size != attn.key_conv.conv.kernel_size
    x, mask = torch.randn(1, 16, 16), torch.ones(1, 1, 16, dtype=torch.bool)
    assert not attn._can_fuse_qkv(x)
    out, out_mask = attn(x, mask)
    assert out.shape == (1, 16, 8) and out_mask.shape == (1, 1, 8)


@pytest.mark.parametrize("cin,cout,k,stride,bias", [(8, 16, 1, 1, True), (16, 8, 1, 1, False),
                                                    (16, 8, 3, 1, False), (8, 8, 1, 2, True),
                                                    (8, 8, 3, 2, True), (8, 4, 5, 1, True)])
def test_native_dense_conv_matches_pytorch_default(original_kernels, cin, cout, k, stride,
                                                   bias):
    torch.manual_seed(0)
    conv = Conv1d(cin, cout, k, stride, k // 2, bias=bias)
    ref = nn.Conv1d(cin, cout, k, stride, k // 2, bias=bias)
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(2, cin, 24)
    fast = _fwd_bwd(conv, x)
    slow = _fwd_bwd(ref, x)
    torch.testing.assert_close(fast[0], slow[0], atol=1e-5, rtol=1e-5)
    _assert_close_lists(fast[1], slow[1])
    with torch.no_grad():  # the inference path (no autograd function)
        torch.testing.assert_close(conv(x), ref(x), atol=1e-5, rtol=1e-5)


def test_conv1d_is_an_nn_conv1d_with_the_same_state_and_rng_use():
    torch.manual_seed(3)
    ours = Conv1d(4, 6, 3, padding=1)
    torch.manual_seed(3)
    theirs = nn.Conv1d(4, 6, 3, padding=1)
    assert isinstance(ours, nn.Conv1d)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
        assert torch.equal(a, b)


def test_switch_returns_previous_and_large_inputs_keep_the_original_operators(
        original_kernels, monkeypatch):
    assert set_fast_kernels(False) is True and not fast_kernels_enabled()
    assert set_fast_kernels(True) is False
    # above the size limit and without a gradient (inference) the original arithmetic runs:
    # bitwise the switched-off result
    torch.manual_seed(0)
    ln = LayerNorm(8)
    with torch.no_grad():
        ln.bias.normal_()
    x = torch.randn(1, 8, FAST_KERNEL_MAX_NUMEL // 8 + 1)
    with torch.no_grad():
        big = ln(x)
        set_fast_kernels(False)
        assert torch.equal(big, ln(x))
        # and the fast path is taken below it (the kernel rounds differently somewhere)
        set_fast_kernels(True)
        monkeypatch.setattr(blocks, "FAST_KERNEL_MAX_NUMEL", x.numel())
        assert blocks.use_fast_kernel(x.numel()) and not torch.equal(ln(x), big)


def test_large_layernorm_that_needs_a_gradient_has_the_closed_form_backward(original_kernels):
    ln, x = _layernorm_and_input(FAST_KERNEL_MAX_NUMEL // 32 + 7)
    assert not blocks.use_fast_kernel(x.numel())
    set_fast_kernels(True)
    assert type(ln(x.requires_grad_()).grad_fn).__name__ == "_ChannelLayerNormFunctionBackward"
    fast = _fwd_bwd(ln, x.detach())
    set_fast_kernels(False)
    assert "ChannelLayerNorm" not in type(ln(x).grad_fn).__name__
    slow = _fwd_bwd(ln, x.detach())
    assert torch.equal(fast[0], slow[0])  # the original's forward, bit for bit
    _assert_close_lists(fast[1], slow[1], tol=1e-4)  # weight / bias grads: sums of 8,000
    # against float64 autograd of the original arithmetic: the closed form is as accurate
    x64 = x.detach().double().requires_grad_()
    ln64 = copy.deepcopy(ln).double()
    out = ln64(x64)
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(5)).double())
    want = [p.grad for p in ln64.parameters()] + [x64.grad]
    for got, ref, other in zip(fast[1], want, slow[1]):
        err = (got.double() - ref).abs().max() / ref.abs().max()
        err_autograd = (other.double() - ref).abs().max() / ref.abs().max()
        assert err < 1e-6 and err <= 4 * err_autograd + 1e-9, (err, err_autograd)
