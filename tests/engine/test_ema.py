"""ModelEma (docs/reference.md §7.7)."""
from __future__ import annotations

import torch
from torch import nn

from libs.engine.ema import ModelEma


def test_update_is_decayed_average():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = ModelEma(model)
    assert not ema.module.training
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.999))
    ema.update(model)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.999 * 0.999))
    ema.set(model)
    assert torch.equal(ema.module.weight, model.weight)


def test_copy_is_independent_and_unwrapped():
    model = nn.Linear(2, 1)
    ema = ModelEma(nn.DataParallel(model))
    assert list(ema.module.state_dict()) == ["weight", "bias"]
    assert ema.module.weight.data_ptr() != model.weight.data_ptr()


def _perturbed_pair(seed=0):
    from tests.modeling.test_meta_arch import build
    model = build()
    ema_src = build()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g))
    return model, ema_src


def test_foreach_update_is_bitwise_the_original_loop():
    """Oracle: the original's formula entry by entry over ``state_dict()`` values."""
    model, start = _perturbed_pair()
    fast, slow = ModelEma(start), ModelEma(start, foreach=False)
    reference = {k: v.clone() for k, v in start.state_dict().items()}
    for step in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.01)
        fast.update(model)
        slow.update(model)
        for (key, e), m in zip(reference.items(), model.state_dict().values()):
            reference[key] = 0.999 * e + (1. - 0.999) * m
    for key, value in fast.module.state_dict().items():
        assert torch.equal(value, reference[key]), key
        assert torch.equal(value, slow.module.state_dict()[key]), key


def test_entries_follow_state_dict_and_survive_to_and_load():
    from libs.engine.ema import state_dict_tensors
    model, start = _perturbed_pair()
    tensors = state_dict_tensors(model)
    values = list(model.state_dict().values())
    assert len(tensors) == len(values)
    assert all(t.data_ptr() == v.data_ptr() for t, v in zip(tensors, values))
    ema = ModelEma(start)
    ema.update(model)
    # replacing the model's storage (load_state_dict / .to) is seen by the next update
    new = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(new)
    model.to(torch.float64).to(torch.float32)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    ema.update(model)
    for key, value in ema.module.state_dict().items():
        assert torch.equal(value, 0.999 * before[key] + (1. - 0.999) * 0.0), key


def test_ema_does_not_register_the_source_model():
    model, start = _perturbed_pair()
    ema = ModelEma(start)
    ema.update(model)
    assert [k for k, _ in ema.named_children()] == ["module"]
    assert all(k.startswith("module.") for k in ema.state_dict())
