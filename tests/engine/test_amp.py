"""Opt-in mixed-precision training (libs/engine/amp.py, train.py --amp): off by default, the
network autocasts while the losses stay float32, fp16 scales the loss and unscales before
clipping, and a bf16 / fp16 step lands close to the float32 step on the tiny model."""
from __future__ import annotations

import copy

import pytest
import torch

from libs.engine.amp import MixedPrecision, make_mixed_precision
from libs.engine.train_loop import train_step
from libs.modeling import make_meta_arch
from tests._assets import asset_path


@pytest.fixture(scope="module")
def tiny():
    cfg = torch.load(asset_path("conformance/tiny_expected.pt"))["config"]
    videos = torch.load(asset_path("conformance/tiny_inputs.pt"))["videos"]
    torch.manual_seed(0)
    return make_meta_arch(cfg["model_name"], **copy.deepcopy(cfg["model"])), videos


def _step(model, videos, amp, clip=1.0):
    model = copy.deepcopy(model).train()
    if amp is not None:
        amp.attach(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    losses = train_step(videos, model, opt, sched, clip_grad_l2norm=clip, amp=amp)
    return model, losses


def test_off_by_default_and_modes_validated():
    assert make_mixed_precision(None, torch.device("cpu")) is None
    assert make_mixed_precision("none", torch.device("cpu")) is None
    with pytest.raises(ValueError, match=r"--amp must be one of \['bf16', 'fp16'\], got 'fp8'"):
        MixedPrecision("fp8", torch.device("cpu"))
    assert MixedPrecision("bf16", torch.device("cpu")).scaler is None
    assert MixedPrecision("fp16", torch.device("cpu")).scaler is not None


def test_model_default_is_float32(tiny):
    model, _ = tiny
    assert model.train_amp_dtype is None


@pytest.mark.parametrize("mode,tol", [("bf16", 0.05), ("fp16", 0.01)])
def test_mixed_precision_step_is_close_to_float32(tiny, mode, tol):
    model, videos = tiny
    ref, ref_losses = _step(model, videos, None)
    amp = MixedPrecision(mode, torch.device("cpu"))
    got, losses = _step(model, videos, amp)
    assert losses["final_loss"].dtype == torch.float32  # losses computed in float32
    rel = abs(losses["final_loss"].item() - ref_losses["final_loss"].item())
    assert rel <= tol * ref_losses["final_loss"].item()
    start = dict(model.named_parameters())
    moved = max((p - start[n]).abs().max().item() for n, p in ref.named_parameters())
    diff = max((p - q).abs().max().item()
               for p, q in zip(got.parameters(), ref.parameters()))
    assert moved > 0 and diff <= 0.2 * moved  # the same step to within a fifth of its size
    if mode == "fp16":
        # scaled backward, unscaled before clipping: the scale grew from 65536 or stayed
        assert amp.scaler.get_scale() >= 65536.0
