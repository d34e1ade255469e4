"""Basic layers: MaskedConv1D, LayerNorm, drop path, sinusoid table, TransformerBlock, ConvBlock
(docs/reference.md §3.2, §3.4, §3.5); oracles are hand values and torch reference functions."""
from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from libs.modeling import (AffineDropPath, ConvBlock, LayerNorm, MaskedConv1D,
                           TransformerBlock, drop_path, get_sinusoid_encoding)


def _prefix_mask(lengths, T):
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).unsqueeze(1)


def test_masked_conv_zeroes_outputs_outside_the_mask():
    torch.manual_seed(0)
    conv = MaskedConv1D(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 8)
    mask = _prefix_mask([5, 8], 8)
    y, out_mask = conv(x, mask)
    assert torch.equal(out_mask, mask)
    assert (y[0, :, 5:] == 0).all()
    expected = conv.conv(x)
    torch.testing.assert_close(y[0, :, :5], expected[0, :, :5])
    torch.testing.assert_close(y[1], expected[1])


def test_masked_conv_stride_two_downsamples_the_mask_by_nearest_neighbour():
    torch.manual_seed(0)
    conv = MaskedConv1D(3, 3, 3, stride=2, padding=1)
    mask = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0], dtype=torch.bool).view(1, 1, 8)
    y, out_mask = conv(torch.randn(1, 3, 8), mask)
    # output i takes input 2i: positions 0, 2, 4, 6
    assert out_mask.tolist() == [[[True, True, False, True]]]
    assert y.shape == (1, 3, 4)
    assert (y[..., 2] == 0).all()
    # a valid prefix of length n becomes ceil(n / 2)
    _, m = conv(torch.randn(1, 3, 8), _prefix_mask([5], 8))
    assert m.sum().item() == 3


def test_masked_conv_rejects_even_kernels_and_zero_bias_init():
    with pytest.raises(AssertionError):
        MaskedConv1D(2, 2, 2, padding=1)
    assert (MaskedConv1D(2, 5, 3, padding=1).conv.bias == 0).all()


def test_layer_norm_equals_functional_layer_norm_over_channels():
    torch.manual_seed(0)
    ln = LayerNorm(6)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(3, 6, 11) * 3 + 1
    expected = F.layer_norm(x.transpose(1, 2), (6,), ln.weight.view(6), ln.bias.view(6),
                            eps=1e-5).transpose(1, 2)
    torch.testing.assert_close(ln(x), expected, atol=1e-5, rtol=1e-5)
    assert ln.weight.shape == (1, 6, 1)


def test_drop_path_is_identity_in_eval_and_for_zero_probability():
    x = torch.randn(4, 3, 5)
    assert drop_path(x, 0.5, training=False) is x
    assert drop_path(x, 0.0, training=True) is x
    module = AffineDropPath(3, drop_prob=0.5)
    module.eval()
    torch.testing.assert_close(module(x), x * 1e-4)


def test_drop_path_keeps_or_drops_whole_samples_rescaled():
    torch.manual_seed(3)
    x = torch.ones(64, 2, 3)
    y = drop_path(x, 0.5, training=True)
    per_sample = y.view(64, -1)
    for row in per_sample:
        assert torch.all(row == 0) or torch.all(row == 2.0)
    assert 0 < (per_sample[:, 0] == 0).sum() < 64


def test_sinusoid_table_hand_values():
    table = get_sinusoid_encoding(3, 4)
    assert table.shape == (1, 4, 3) and table.dtype == torch.float32
    expected_pos1 = [math.sin(1.0), math.cos(1.0), math.sin(0.01), math.cos(0.01)]
    torch.testing.assert_close(table[0, :, 1], torch.tensor(expected_pos1))
    torch.testing.assert_close(table[0, :, 0], torch.tensor([0.0, 1.0, 0.0, 1.0]))


@pytest.mark.parametrize("stride,window", [(1, 5), (2, 5), (1, -1), (2, -1)])
def test_transformer_block_output_is_zero_at_padded_positions(stride, window):
    torch.manual_seed(0)
    block = TransformerBlock(8, 2, n_ds_strides=(stride, stride), path_pdrop=0.1,
                             mha_win_size=window)
    block.eval()
    x = torch.randn(2, 8, 16)  # padded positions hold non-zero values on purpose
    mask = _prefix_mask([9, 16], 16)
    y, out_mask = block(x, mask)
    assert y.shape == (2, 8, 16 // stride)
    assert out_mask[0, 0].sum().item() == math.ceil(9 / stride)
    assert (y[0, :, out_mask[0, 0].sum():] == 0).all()
    assert (y[0, :, :out_mask[0, 0].sum()] != 0).any()


def test_transformer_block_stride_two_skip_is_max_pool_of_three():
    torch.manual_seed(0)
    block = TransformerBlock(4, 1, n_ds_strides=(2, 2), mha_win_size=3)
    assert block.pool_skip.kernel_size == 3 and block.pool_skip.padding == 1
    x = torch.arange(8, dtype=torch.float32).view(1, 1, 8).repeat(1, 4, 1)
    # positions 2i-1, 2i, 2i+1 -> max 2i+1 (the border uses -inf padding)
    assert block.pool_skip(x)[0, 0].tolist() == [1.0, 3.0, 5.0, 7.0]


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_block_keeps_padded_positions_zero(stride):
    torch.manual_seed(0)
    block = ConvBlock(4, 3, n_ds_stride=stride)
    mask = _prefix_mask([5, 8], 8)
    x = torch.randn(2, 4, 8) * mask
    y, out_mask = block(x, mask)
    assert y.shape == (2, 4, 8 // stride)
    assert (y * ~out_mask == 0).all()
    assert (stride > 1) == (block.downsample is not None)
