"""The heads' fused-levels path (``fuse_levels``, default on) equals the per-level loop.

Oracle: the per-level loop of the original (``fuse_levels = False``), run on the same modules.
Cases: LayerNorm on / off (a LayerNorm turns the zero gap columns into its bias: they must be
re-zeroed), kernel sizes 1 / 3 / 5 (gaps of 0 / 1 / 2 columns), levels whose last position is
valid (no padding: the gap is the only zero neighbour) and levels with padded tails (their
LayerNorm-bias values must still reach the valid neighbours), forward values and gradients.
"""
from __future__ import annotations

import pytest
import torch

from libs.modeling.heads import PtTransformerClsHead, PtTransformerRegHead, concat_levels


def _pyramid(B=2, C=8, T=32, levels=4, valid=(32, 19), seed=0):
    g = torch.Generator().manual_seed(seed)
    feats, masks = [], []
    for level in range(levels):
        T_l = T // 2 ** level
        feats.append(torch.randn(B, C, T_l, generator=g))
        steps = torch.arange(T_l)
        masks.append(torch.stack([(steps < -(-v // 2 ** level))[None] for v in valid]))
    return feats, masks


def _perturb(head, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


def _run(head, feats, masks, fused):
    head.fuse_levels = fused
    feats = [f.clone().requires_grad_(True) for f in feats]
    out = head(feats, masks)
    loss = sum((o * torch.linspace(-1, 1, o.shape[-1])).sum() for o in out)
    head.zero_grad()
    loss.backward()
    grads = [p.grad.clone() for p in head.parameters()] + [f.grad for f in feats]
    return [o.detach() for o in out], grads


@pytest.mark.parametrize("with_ln", [True, False])
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("kind", ["cls", "reg"])
def test_fused_levels_equal_the_per_level_loop(with_ln, kernel_size, kind):
    torch.manual_seed(0)
    if kind == "cls":
        head = PtTransformerClsHead(8, 8, num_classes=3, kernel_size=kernel_size,
                                    with_ln=with_ln)
    else:
        head = PtTransformerRegHead(8, 8, fpn_levels=4, kernel_size=kernel_size,
                                    with_ln=with_ln)
    _perturb(head, seed=1)
    feats, masks = _pyramid()
    fused, fused_grads = _run(head, feats, masks, True)
    loop, loop_grads = _run(head, feats, masks, False)
    assert [o.shape for o in fused] == [o.shape for o in loop]
    for a, b in zip(fused, loop):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(fused_grads, loop_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # padded positions are zero in both (masked convs)
    for out, mask in zip(fused, masks):
        assert torch.all(out.masked_select(~mask) == 0)


def test_gap_columns_are_needed():
    """Without re-zeroing the gaps a LayerNorm bias would leak between levels: the test
    above would see it (guard against a silently weaker oracle)."""
    torch.manual_seed(0)
    head = PtTransformerClsHead(8, 8, num_classes=3, kernel_size=3, with_ln=True)
    _perturb(head, seed=1)
    feats, masks = _pyramid(valid=(32, 32))
    x, mask, keep, sizes = concat_levels(feats, masks, 1)
    leaky = head.cls_head(head._tower(x, mask, keep=None), mask)[0]
    loop = head.cls_head(head._tower(feats[0], masks[0]), masks[0])[0]
    assert not torch.allclose(leaky[..., :sizes[0]], loop, atol=1e-4)


def test_concat_levels_layout():
    feats = [torch.full((1, 2, 4), 1.0), torch.full((1, 2, 2), 2.0), torch.full((1, 2, 1), 3.)]
    masks = [torch.ones(1, 1, t, dtype=torch.bool) for t in (4, 2, 1)]
    x, mask, keep, sizes = concat_levels(feats, masks, 2)
    assert sizes == [4, 2, 2, 2, 1]
    assert x[0, 0].tolist() == [1, 1, 1, 1, 0, 0, 2, 2, 0, 0, 3]
    assert mask[0, 0].tolist() == [True] * 4 + [False] * 2 + [True] * 2 + [False] * 2 + [True]
    assert keep[0, 0].tolist() == [1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1]
    x, mask, keep, sizes = concat_levels(feats, masks, 0)
    assert keep is None and sizes == [4, 2, 1] and x.shape[-1] == 7


def test_fused_path_is_the_default(monkeypatch):
    """A fresh head takes the concatenated path (one tower call for all levels)."""
    from libs.modeling import heads
    calls = []

    def counting(*args):
        calls.append(len(args[0]))
        return concat_levels(*args)

    monkeypatch.setattr(heads, "concat_levels", counting)
    head = PtTransformerRegHead(8, 8, fpn_levels=4)
    feats, masks = _pyramid()
    head(feats, masks)
    assert calls == [4]
    head.fuse_levels = False
    head(feats, masks)
    assert calls == [4]
