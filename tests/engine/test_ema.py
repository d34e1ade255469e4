"""ModelEma (REFERENCE.md §7.7)."""
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
