"""train_one_epoch / valid_one_epoch on a toy model: step order, logging, failures."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from libs.engine.ema import ModelEma
from libs.engine.eval_loop import collect_results, shard_indices, valid_one_epoch
from libs.engine.lr_schedulers import LinearWarmupCosineAnnealingLR
from libs.engine.train_loop import (NonFiniteLossError, clip_grad_norm, log_step,
                                     train_one_epoch)
from libs.utils import AverageMeter


class ToyLoss(nn.Module):
    """Loss dict like the real model's; ``bad_at`` makes one batch return NaN."""

    def __init__(self, bad_at=None):
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.calls = 0
        self.bad_at = bad_at

    def forward(self, video_list):
        x = torch.stack([v["feats"] for v in video_list])
        cls_loss = ((x * self.w).sum(-1) ** 2).mean()
        reg_loss = self.w.abs().sum() * 0.1
        if self.bad_at is not None and self.calls == self.bad_at:
            cls_loss = cls_loss * float("nan")
        self.calls += 1
        return {"cls_loss": cls_loss, "reg_loss": reg_loss, "final_loss": cls_loss + reg_loss}


def _loader(n_batches=6, bs=2):
    g = torch.Generator().manual_seed(0)
    return [[{"feats": torch.randn(3, generator=g)} for _ in range(bs)]
            for _ in range(n_batches)]


def _pieces(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return opt, LinearWarmupCosineAnnealingLR(opt, 2, 12)


def test_one_epoch_steps_every_iteration_and_logs(capsys):
    model = ToyLoss()
    opt, sched = _pieces(model)
    ema = ModelEma(model)
    out = train_one_epoch(_loader(), model, opt, sched, 0, model_ema=ema, print_freq=2,
                          max_epochs=2)
    assert out["completed"] == 6 and not out["interrupted"]
    assert sched.last_epoch == 6
    assert not torch.equal(ema.module.w, model.w)  # EMA lags behind the model
    text = capsys.readouterr().out
    assert "[Train]: Epoch 0 started" in text
    assert "Epoch: [000][00002/00006]\tTime " in text
    assert "Epoch: [000][00004/00006]" in text and "[00000/" not in text
    assert "\tcls_loss " in text and "\treg_loss " in text and "ETA " in text
    assert f"[Train]: Epoch 0 finished with lr={sched.get_last_lr()[0]:.8f}" in text


def test_first_step_runs_with_lr_zero():
    model = ToyLoss()
    opt, sched = _pieces(model)
    before = model.w.detach().clone()
    train_one_epoch(_loader(1), model, opt, sched, 0, print_freq=100)
    assert torch.equal(model.w, before)  # warm-up starts at LR 0 (§9 item 15)


def test_non_finite_loss_names_epoch_and_iteration():
    model = ToyLoss(bad_at=3)
    opt, sched = _pieces(model)
    # named at the next print step (4), as the first bad iteration (3)
    with pytest.raises(NonFiniteLossError, match=r"epoch 4, iteration 3: .*cls_loss.*nan"):
        train_one_epoch(_loader(), model, opt, sched, 4, print_freq=2)
    # a NaN in the last iterations is caught before the caller saves a checkpoint
    model = ToyLoss(bad_at=5)
    opt, sched = _pieces(model)
    with pytest.raises(NonFiniteLossError, match="iteration 5"):
        train_one_epoch(_loader(), model, opt, sched, 0, print_freq=100)


def test_stop_request_ends_epoch_early():
    model = ToyLoss()
    opt, sched = _pieces(model)
    out = train_one_epoch(_loader(), model, opt, sched, 0, print_freq=100,
                          should_stop=lambda: model.calls >= 2)
    assert out["interrupted"] and out["completed"] == 2 and sched.last_epoch == 2


def test_log_step_format_and_tensorboard():
    class Writer:
        def __init__(self):
            self.calls = []

        def add_scalar(self, tag, value, step):
            self.calls.append((tag, value, step))

        def add_scalars(self, tag, values, step):
            self.calls.append((tag, values, step))

    w, meters, bt = Writer(), {}, AverageMeter()
    bt.update(0.5)
    line = log_step({"cls_loss": 1.0, "reg_loss": 0.5, "final_loss": 1.5}, meters, bt, 1e-4,
                    2, 10, 20, 100, w)
    assert line.startswith("Epoch: [002][00010/00020]\tTime 0.50 (0.50)\tLoss 1.50 (1.50)\n")
    assert "\tcls_loss 1.00 (1.00)\treg_loss 0.50 (0.50)" in line
    assert line.endswith("LR 1.000e-04\tETA 0:00:50")
    assert w.calls == [("train/learning_rate", 1e-4, 50),
                       ("train/all_losses", {"cls_loss": 1.0, "reg_loss": 0.5}, 50),
                       ("train/final_loss", 1.5, 50)]


class ToyDetector(nn.Module):
    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, video_list):
        out = []
        for v in video_list:
            n = v["n"]
            out.append({"video_id": v["video_id"],
                        "segments": torch.arange(2 * n, dtype=torch.float32).view(n, 2),
                        "scores": torch.full((n,), 0.5), "labels": torch.arange(n)})
        return out


def test_valid_one_epoch_saves_results_and_handles_no_detection(tmp_path):
    loader = [[{"video_id": "a", "n": 2}], [{"video_id": "b", "n": 0}],
              [{"video_id": "c", "n": 1}]]
    out = tmp_path / "res.pkl"
    assert valid_one_epoch(loader, ToyDetector(), -1, output_file=str(out)) == 0.0
    res = pickle.loads(out.read_bytes())
    assert res["video-id"] == ["a", "a", "c"]
    assert res["t-start"].dtype == np.float32 and res["label"].dtype == np.int64
    assert res["t-end"].tolist() == [1.0, 3.0, 1.0]
    # no detection at all: empty arrays instead of the original's crash (§9 item 22)
    valid_one_epoch([[{"video_id": "b", "n": 0}]], ToyDetector(), -1, output_file=str(out))
    res = pickle.loads(out.read_bytes())
    assert res["video-id"] == [] and res["score"].shape == (0,)
    with pytest.raises(ValueError, match="evaluator or an output_file"):
        valid_one_epoch(loader, ToyDetector(), -1)


def test_valid_one_epoch_calls_evaluator():
    class Evaluator:
        def evaluate(self, results, verbose=True):
            self.results = results
            return np.array([0.5, 0.7]), 0.6, None
    ev = Evaluator()
    mAP = valid_one_epoch([[{"video_id": "a", "n": 3}]], ToyDetector(), 3, evaluator=ev)
    assert mAP == pytest.approx(0.6) and len(ev.results["video-id"]) == 3


def test_sharding_and_order_restoration():
    assert shard_indices(7, 0, 2) == [0, 2, 4, 6] and shard_indices(7, 1, 2) == [1, 3, 5]
    rows = [(2, "c", np.zeros((1, 2)), np.zeros(1), np.zeros(1)),
            (0, "a", np.zeros((2, 2)), np.zeros(2), np.zeros(2))]
    assert collect_results(rows)["video-id"] == ["a", "a", "c"]


def test_clip_grad_norm_is_bitwise_the_per_tensor_loop():
    """Oracle: the original's call (PyTorch's per-tensor loop on CPU)."""
    g = torch.Generator().manual_seed(0)
    shapes = [(64, 32, 3), (64,), (1, 64, 1), (), (5, 64, 3)]
    grads = [torch.randn(s, generator=g) * 3 for s in shapes]
    ours = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    theirs = [torch.nn.Parameter(torch.zeros(s)) for s in shapes]
    for p, q, grad in zip(ours, theirs, grads):
        p.grad, q.grad = grad.clone(), grad.clone()
    ours.append(torch.nn.Parameter(torch.zeros(2)))  # no gradient: skipped by both
    norm = clip_grad_norm(ours, 1.0)
    ref = torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=False)
    assert torch.equal(norm, ref) and norm > 1.0
    for p, q in zip(ours, theirs):
        assert torch.equal(p.grad, q.grad)
