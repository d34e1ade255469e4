"""Basic layers of the network (docs/reference.md §3.2, §3.5).

Owns MaskedConv1D, the channel LayerNorm, Scale, drop path (the function and AffineDropPath;
the original's unused module form ``DropPath`` is not carried over), the sinusoid position
table and ConvBlock. Mirrors the original's
``libs/modeling/blocks.py``; attribute names (``conv``, ``weight``, ``bias``, ``scale``) and
registration order are frozen because they make the state_dict keys. Differences: the strided
mask is downsampled by slicing, which equals the original's nearest interpolation because the
length is asserted to be divisible by the stride.

Layout: features (B, C, T) float, masks (B, 1, T) bool (True = valid).

Speed on small inputs (numbers equal to float rounding): when a tensor has at most
``FAST_KERNEL_MAX_NUMEL`` elements (131,072: e.g. 2 x 64 channels x 1,024 steps), the time
goes to per-operator overhead, not arithmetic, and three layers switch to kernels with fewer
or cheaper calls (the convolutions only for float32 on the CPU outside autocast; the other two
are plain PyTorch operators on any device):

* :class:`Conv1d` (every dense, ``groups == 1`` conv of the network: an ``nn.Conv1d`` with the
  same parameters, names, init and random-number use) runs forward and backward on PyTorch's
  native im2col + GEMM kernels instead of oneDNN, which spends ~100 us per call planning and
  reordering (64-channel 1x1 conv at T = 256, forward + backward: 541 -> 230 us);
* :class:`LayerNorm` runs one ``F.layer_norm`` kernel instead of eight elementwise operators;
* the attention's q / k / v paths run batched (attention.py).

On large inputs (the full-size models) these kernels measured no faster or slower inside the
network, so the original operators (oneDNN) run there. That includes the 1x1 convolutions:
as one batched matrix product (``baddbmm``, PyTorch's BLAS) they were 2-3 % faster on an
AVX2-only machine, but on an AVX-512 one oneDNN reached 250-400 GFLOP/s and the BLAS product
150-170 (MKL runs its AVX2 code on AMD CPUs), so small inputs only take that path. The
model's procedure (``libs/utils/procedure.py``,
``Procedure.fast_kernels``) sets the ``fast_kernels`` attribute of every such layer; False
restores the original operators (the faithful procedure). A layer whose attribute is None
follows the module-wide default of ``set_fast_kernels`` (kept for old callers).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

__all__ = [
    "Conv1d", "set_fast_kernels", "fast_kernels_enabled", "use_fast_kernel", "MaskedConv1D",
    "LayerNorm", "Scale", "drop_path", "AffineDropPath",
    "get_sinusoid_encoding", "ConvBlock",
]


FAST_KERNEL_MAX_NUMEL = 1 << 17
_fast_kernels = True


def set_fast_kernels(enabled: bool) -> bool:
    """Turns the small-input kernels (module docstring) on / off; returns the previous state."""
    global _fast_kernels
    previous, _fast_kernels = _fast_kernels, bool(enabled)
    return previous


def fast_kernels_enabled() -> bool:
    return _fast_kernels


def use_fast_kernel(*numels: int, enabled: Optional[bool] = None) -> bool:
    """True when the fast kernels are on and every given element count is small.

    ``enabled``: the calling layer's ``fast_kernels`` attribute (None: the module default).
    """
    on = _fast_kernels if enabled is None else enabled
    return on and max(numels) <= FAST_KERNEL_MAX_NUMEL


class _OneDnnOff:
    """Switches PyTorch's oneDNN (mkldnn) convolutions off inside the block."""

    def __enter__(self):
        self.previous = torch._C._get_mkldnn_enabled()
        torch._C._set_mkldnn_enabled(False)

    def __exit__(self, *exc):
        torch._C._set_mkldnn_enabled(self.previous)


class _NativeConv1dFunction(torch.autograd.Function):
    """conv1d whose forward and backward both run with oneDNN off (native kernels)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, None if bias is None else bias.shape)
        with _OneDnnOff():
            return F.conv1d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, bias_shape = ctx.conf
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1],
                bias_shape is not None and ctx.needs_input_grad[2]]
        with _OneDnnOff():
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad.contiguous(), x, weight, list(bias_shape) if bias_shape else None,
                [stride], [padding], [dilation], False, [0], 1, mask)
        return gx, gw, gb, None, None, None


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` that runs small dense float32 CPU convolutions on the native kernels.

    Same constructor, parameters and state_dict as ``nn.Conv1d``; only ``zeros`` padding and
    integer stride / padding / dilation are routed (anything else uses ``nn.Conv1d``).
    ``fast_kernels`` (None: the module default; False: always ``nn.Conv1d``) is set by the
    model's procedure.
    """

    fast_kernels: Optional[bool] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = _fast_kernels if self.fast_kernels is None else self.fast_kernels
        if (not fast or self.groups != 1 or x.device.type != "cpu" or x.dim() != 3
                or x.dtype != torch.float32 or self.weight.dtype != torch.float32
                or self.padding_mode != "zeros" or isinstance(self.padding, str)
                or torch.is_autocast_enabled("cpu")):
            return super().forward(x)
        if not use_fast_kernel(x.numel(), x.shape[0] * self.out_channels * x.shape[-1],
                               enabled=fast):
            return super().forward(x)  # large: oneDNN, as the original (module docstring)
        if self.kernel_size == (1,) and self.stride == (1,) and self.padding == (0,):
            # pointwise: (C_out, C_in) @ (B, C_in, T) as one batched product
            weight = self.weight.view(1, self.out_channels, -1).expand(x.shape[0], -1, -1)
            if self.bias is None:
                return torch.bmm(weight, x)
            return torch.baddbmm(self.bias.view(1, -1, 1), weight, x)
        stride, padding, dilation = self.stride[0], self.padding[0], self.dilation[0]
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad or (
                self.bias is not None and self.bias.requires_grad)):
            return _NativeConv1dFunction.apply(x, self.weight, self.bias, stride, padding,
                                               dilation)
        with _OneDnnOff():
            return F.conv1d(x, self.weight, self.bias, stride, padding, dilation)


class MaskedConv1D(nn.Module):
    """A Conv1d whose output is zeroed outside the (downsampled) mask.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
        padding_mode: as for ``nn.Conv1d``; ``kernel_size`` must be odd and
            ``padding == kernel_size // 2`` so that a stride of 1 keeps the length.

    The conv is stored as attribute ``conv`` (keys ``<name>.conv.weight/bias``); it keeps
    PyTorch's default weight init and a zero bias.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        assert kernel_size % 2 == 1 and kernel_size // 2 == padding, \
            "MaskedConv1D needs an odd kernel and padding == kernel_size // 2"
        self.stride = stride
        self.conv = Conv1d(in_channels, out_channels, kernel_size, stride, padding,
                           dilation, groups=groups, bias=bias, padding_mode=padding_mode)
        if bias:
            nn.init.constant_(self.conv.bias, 0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, C_in, T); mask (B, 1, T) bool.

        Returns: (y (B, C_out, T // stride) zero where the mask is off,
        mask (B, 1, T // stride) bool). The strided mask takes input position ``stride * i``
        (nearest-neighbour downsampling; a valid prefix of n becomes ceil(n / stride)).
        """
        assert x.shape[-1] % self.stride == 0, "MaskedConv1D: length must divide the stride"
        y = self.conv(x)
        if self.stride > 1:
            out_mask = mask[:, :, ::self.stride].to(x.dtype)
        else:
            out_mask = mask.to(x.dtype)
        y = y * out_mask.detach()
        return y, out_mask.bool()


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (B, C, T) tensor.

    Parameters ``weight`` (ones) and ``bias`` (zeros) have shape (1, C, 1). The variance is
    the biased one, as in ``nn.LayerNorm``.

    Speed: on small inputs (``use_fast_kernel``) the normalisation runs as one
    ``F.layer_norm`` kernel on the (B, T, C) view instead of the original's eight elementwise
    operators (and about fifteen in the backward pass); the result agrees to float rounding
    (the kernel accumulates the mean and variance in another order: ~1e-7 relative, tested).
    A zero column still becomes exactly ``bias``. Large inputs that need a gradient
    (training) run the original's forward with a closed-form backward
    (:class:`_ChannelLayerNormFunction`: half the time, same output bits). ``fast_kernels``
    (None: the module default; False: always the original's operators) is set by the model's
    procedure.
    """

    fast_kernels: Optional[bool] = None

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones([1, num_channels, 1], **factory))
            self.bias = nn.Parameter(torch.zeros([1, num_channels, 1], **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, C, T). Returns: (B, C, T) normalised over C."""
        assert x.dim() == 3 and x.shape[1] == self.num_channels
        if use_fast_kernel(x.numel(), enabled=self.fast_kernels):
            weight = self.weight.view(-1) if self.affine else None
            bias = self.bias.view(-1) if self.affine else None
            return F.layer_norm(x.transpose(1, 2), (self.num_channels,), weight, bias,
                                self.eps).transpose(1, 2)
        if self.affine and self._short_backward(x):
            return _ChannelLayerNormFunction.apply(x, self.weight, self.bias, self.eps)
        out, _ = _normalised(x, self.eps)
        if self.affine:
            # in place, as the original (no new (B, C, T) buffers)
            out *= self.weight
            out += self.bias
        return out

    def _short_backward(self, x: torch.Tensor) -> bool:
        """Large inputs that need a gradient (fast kernels on): the closed-form backward."""
        on = _fast_kernels if self.fast_kernels is None else self.fast_kernels
        return on and torch.is_grad_enabled() and (
            x.requires_grad or self.weight.requires_grad or self.bias.requires_grad)


def _normalised(x: torch.Tensor, eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """The original's normalisation over C, operator for operator: ((x - mean) / denom,
    denom = sqrt(biased variance + eps))."""
    mu = torch.mean(x, dim=1, keepdim=True)
    res = x - mu
    sigma = torch.mean(res ** 2, dim=1, keepdim=True)
    denom = torch.sqrt(sigma + eps)
    return res / denom, denom


class _ChannelLayerNormFunction(torch.autograd.Function):
    """The original's LayerNorm forward, operator for operator (bitwise its output), with the
    closed-form backward instead of autograd's trace through its eight operators:

        gx = rstd * (g w - mean_C(g w) - xhat * mean_C(g w * xhat)),
        g_weight = sum_{B,T}(g * xhat),  g_bias = sum_{B,T}(g)

    (xhat = (x - mean) * rstd, biased variance). Eight passes over a (B, C, T) tensor instead of
    about fifteen, all in the (B, C, T) layout: forward + backward 9.1 -> 3.9 ms at
    2 x 512 x 1,760, 16.8 -> 9.4 ms at 2 x 512 x 3,470 (the fused heads); the gradients agree
    with autograd's to float rounding (tests/modeling/test_fast_kernels.py).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        xhat, denom = _normalised(x, eps)
        ctx.save_for_backward(xhat, denom, weight)
        out = xhat * weight
        out += bias
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        xhat, denom, weight = ctx.saved_tensors
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        g_weight = (grad * xhat).sum((0, 2), keepdim=True) if need_w else None
        g_bias = grad.sum((0, 2), keepdim=True) if need_b else None
        g_x = None
        if need_x:
            g_xhat = grad * weight
            mean_g = g_xhat.mean(1, keepdim=True)
            mean_gx = (g_xhat * xhat).mean(1, keepdim=True)
            g_x = torch.addcmul(g_xhat.sub_(mean_g), xhat, mean_gx, value=-1).div_(denom)
        return g_x, g_weight, g_bias, None


class Scale(nn.Module):
    """Multiplies the input by a learnable 0-dim float32 parameter ``scale``."""

    def __init__(self, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init_value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False) -> torch.Tensor:
    """Stochastic depth: drops whole samples of a residual branch.

    Identity if ``drop_prob == 0`` or not training. Otherwise draws one ``torch.rand`` of shape
    (B, 1, ..., 1) (the draw is part of the seeded behaviour) and returns
    ``x / keep * floor(keep + U)`` with ``keep = 1 - drop_prob``.
    """
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    mask.floor_()
    return x.div(keep_prob) * mask


class AffineDropPath(nn.Module):
    """Per-channel learnable scale followed by drop path.

    Args:
        num_dim: channels C; parameter ``scale`` has shape (1, C, 1), initialised to
            ``init_scale_value``.
        drop_prob: drop-path probability (set it to 0 to make training deterministic).
    """

    def __init__(self, num_dim: int, drop_prob: float = 0.0,
                 init_scale_value: float = 1e-4) -> None:
        super().__init__()
        self.scale = nn.Parameter(init_scale_value * torch.ones((1, num_dim, 1)),
                                  requires_grad=True)
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(self.scale * x, self.drop_prob, self.training)


def get_sinusoid_encoding(n_position: int, d_hid: int) -> torch.Tensor:
    """Sinusoid position table, shape (1, d_hid, n_position), float32.

    Channel j of position p holds sin (j even) / cos (j odd) of
    ``p / 10000^(2 * floor(j / 2) / d_hid)``; computed in float64, then cast.
    """
    pos = np.arange(n_position, dtype=np.float64)[:, None]
    hid = np.arange(d_hid)
    angles = pos / np.power(10000, 2 * (hid // 2) / d_hid)[None, :]
    table = np.empty_like(angles)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.as_tensor(table, dtype=torch.float32).transpose(0, 1).unsqueeze(0)


class ConvBlock(nn.Module):
    """Residual block of two masked convs (used only by the ``conv`` backbone, §3.5).

    Args:
        n_embd: input channels C.
        kernel_size: odd kernel > 1.
        n_ds_stride: downsampling stride of the first conv (and of the 1x1 shortcut).
        expansion_factor: hidden width = C * expansion_factor.
        n_out: output channels (default C).
        act_layer: activation class.
    """

    def __init__(self, n_embd: int, kernel_size: int = 3, n_ds_stride: int = 1,
                 expansion_factor: int = 2, n_out: Optional[int] = None,
                 act_layer=nn.ReLU) -> None:
        super().__init__()
        assert kernel_size % 2 == 1 and kernel_size > 1
        padding = kernel_size // 2
        if n_out is None:
            n_out = n_embd
        width = n_embd * expansion_factor
        self.conv1 = MaskedConv1D(n_embd, width, kernel_size, n_ds_stride, padding=padding)
        self.conv2 = MaskedConv1D(width, n_out, kernel_size, 1, padding=padding)
        if n_ds_stride > 1:
            self.downsample = MaskedConv1D(n_embd, n_out, 1, n_ds_stride)
        else:
            self.downsample = None
        self.act = act_layer()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, C, T); mask (B, 1, T). Returns (B, C_out, T / stride) and its mask."""
        identity = x
        out, out_mask = self.conv1(x, mask)
        out = self.act(out)
        out, out_mask = self.conv2(out, out_mask)
        if self.downsample is not None:
            identity, _ = self.downsample(x, mask)
        out = self.act(out + identity)
        return out, out_mask
