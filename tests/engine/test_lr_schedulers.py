"""LR schedules (docs/reference.md §7.6): hand-computed trajectories, checkpoint state format."""
from __future__ import annotations

import math

import pytest
import torch

from libs.engine.lr_schedulers import (LinearWarmupCosineAnnealingLR, LinearWarmupMultiStepLR,
                                       make_scheduler)

ETA = 1e-3


def _opt(lr=ETA, n_groups=2):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(n_groups)]
    return torch.optim.AdamW([{"params": [p]} for p in params], lr=lr)


def _cfg(**kw):
    cfg = {"type": "AdamW", "learning_rate": ETA, "weight_decay": 0.05, "momentum": 0.9,
           "epochs": 3, "warmup": True, "warmup_epochs": 2, "schedule_type": "cosine",
           "schedule_steps": [], "schedule_gamma": 0.1}
    cfg.update(kw)
    return cfg


def _trajectory(sched, n):
    lrs = [sched.get_last_lr()[0]]
    for _ in range(n):
        sched.optimizer.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    return lrs


def test_warmup_cosine_matches_hand_formula():
    # 4 iterations per epoch: W = 2*4 = 8 warm-up steps, M = (3+2)*4 = 20 steps in all
    iters = 4
    sched = make_scheduler(_opt(), _cfg(), iters)
    assert isinstance(sched, LinearWarmupCosineAnnealingLR)
    assert (sched.warmup_epochs, sched.max_epochs) == (8, 20)  # counted in iterations
    lrs = _trajectory(sched, 20)
    W, M = 8, 20
    # the very first optimizer step runs with LR 0; the base LR is reached at step W-1
    assert lrs[0] == 0.0
    for k in range(W):
        assert lrs[k] == pytest.approx(ETA * k / (W - 1), rel=1e-12, abs=1e-18)
    assert lrs[W - 1] == pytest.approx(ETA, rel=1e-12)
    assert lrs[W] == ETA
    for k in range(W, M + 1):
        expected = 1e-8 + 0.5 * (ETA - 1e-8) * (1 + math.cos(math.pi * (k - W) / (M - W)))
        assert lrs[k] == pytest.approx(expected, rel=1e-12, abs=1e-18)
    assert lrs[M] == pytest.approx(1e-8, rel=1e-9)
    # both param groups follow the same schedule
    assert sched.get_last_lr()[0] == sched.get_last_lr()[1]


def test_hand_values_small_case():
    # W = 3, M = 5, eta = 1e-3: 0, 5e-4, 1e-3, 1e-3, 1e-8 + (1e-3 - 1e-8)/2, 1e-8
    sched = LinearWarmupCosineAnnealingLR(_opt(n_groups=1), 3, 5)
    lrs = _trajectory(sched, 5)
    hand = [0.0, 5e-4, 1e-3, 1e-3, 1e-8 + (1e-3 - 1e-8) / 2, 1e-8]
    assert lrs == pytest.approx(hand, rel=1e-12, abs=1e-20)


def test_closed_form_agrees_with_chainable():
    sched = LinearWarmupCosineAnnealingLR(_opt(), 5, 40)
    for k in range(40):
        chain = sched.get_last_lr()[0]
        closed = sched._get_closed_form_lr()[0]
        assert abs(chain - closed) < 1e-17
        sched.optimizer.step()
        sched.step()


def test_warmup_multistep_hand_values():
    # W = 2 steps (1 epoch x 2 iters), milestones 1 and 2 epochs after warm-up = steps 2 and 4
    sched = make_scheduler(_opt(), _cfg(schedule_type="multistep", warmup_epochs=1,
                                        schedule_steps=[1, 2], schedule_gamma=0.5), 2)
    assert isinstance(sched, LinearWarmupMultiStepLR)
    lrs = _trajectory(sched, 8)
    hand = [0.0, ETA, ETA, ETA, ETA * 0.5, ETA * 0.5, ETA * 0.25, ETA * 0.25, ETA * 0.25]
    assert lrs == pytest.approx(hand, rel=1e-12, abs=1e-20)
    sched.last_epoch = 7
    assert sched._get_closed_form_lr()[0] == pytest.approx(ETA * 0.25)


def test_no_warmup_branches_use_pytorch_schedulers():
    cos = make_scheduler(_opt(), _cfg(warmup=False), 4)
    assert isinstance(cos, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert cos.T_max == 12  # epochs * iters, as the original
    # the original raised NameError here; milestones are in iterations
    ms = make_scheduler(_opt(), _cfg(warmup=False, schedule_type="multistep",
                                     schedule_steps=[1]), 4)
    assert isinstance(ms, torch.optim.lr_scheduler.MultiStepLR)
    lrs = _trajectory(ms, 5)
    assert lrs == pytest.approx([ETA] * 4 + [ETA * 0.1] * 2)


def test_unknown_schedule_type():
    with pytest.raises(TypeError, match="Unsupported scheduler!"):
        make_scheduler(_opt(), _cfg(schedule_type="linear"), 4)
    with pytest.raises(TypeError, match="Unsupported scheduler!"):
        make_scheduler(_opt(), _cfg(warmup=False, schedule_type="linear"), 4)


def test_state_dict_attribute_names_are_the_file_format():
    state = make_scheduler(_opt(), _cfg(), 1).state_dict()
    for key in ("warmup_epochs", "max_epochs", "warmup_start_lr", "eta_min", "base_lrs",
                "last_epoch"):
        assert key in state
    assert (state["warmup_start_lr"], state["eta_min"]) == (0.0, 1e-8)


def test_resumed_scheduler_continues_identically():
    a = make_scheduler(_opt(), _cfg(), 3)
    _trajectory(a, 7)
    b_opt = _opt()
    b = make_scheduler(b_opt, _cfg(), 3)
    b_opt.load_state_dict(a.optimizer.state_dict())
    b.load_state_dict(a.state_dict())
    assert _trajectory(a, 8) == _trajectory(b, 8)
