"""Checkpoint format (docs/reference.md §7.1 step 14, §3.12; conformance/README.md)."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from libs.core import load_config
from libs.engine import checkpoint as ck
from libs.engine.ema import ModelEma
from libs.engine.lr_schedulers import make_scheduler
from libs.engine.optim import make_optimizer
from libs.modeling import make_meta_arch


@pytest.fixture(scope="module")
def tiny(conformance_dir):
    cfg = load_config(str(conformance_dir / "tiny_thumos.yaml"))
    torch.manual_seed(0)
    model = make_meta_arch(cfg["model_name"], **cfg["model"])
    return cfg, model


def _pieces(cfg, model, iters=1):
    ema = ModelEma(model)
    opt = make_optimizer(model, cfg["opt"])
    sched = make_scheduler(opt, cfg["opt"], iters)
    return ema, opt, sched


def test_original_checkpoint_loads_strict(tiny, conformance_dir):
    cfg, model = tiny
    path = str(conformance_dir / "tiny_thumos_perturbed" / "epoch_000.pth.tar")
    ck.load_model_weights(model, path)
    raw = torch.load(path, weights_only=True)
    for (k, v), (k2, v2) in zip(raw["state_dict_ema"].items(), model.state_dict().items()):
        assert k == "module." + k2 and torch.equal(v, v2)


def test_our_file_has_the_original_layout(tiny, conformance_dir, tmp_path):
    cfg, model = tiny
    ema, opt, sched = _pieces(cfg, model)
    path = ck.save_checkpoint(str(tmp_path), 0, model, ema, opt, sched)
    assert os.path.basename(path) == "epoch_000.pth.tar"
    ours = torch.load(path, weights_only=True)
    theirs = torch.load(conformance_dir / "tiny_thumos" / "epoch_000.pth.tar",
                        weights_only=True)
    assert list(ours) == list(theirs) == list(ck.CHECKPOINT_KEYS)
    assert list(ours["state_dict"]) == list(theirs["state_dict"])
    assert list(ours["state_dict_ema"]) == list(theirs["state_dict_ema"])
    for k, v in theirs["state_dict"].items():
        assert ours["state_dict"][k].shape == v.shape
    # scheduler and optimizer built by our make_* equal the original's (1 iter per epoch)
    assert ours["scheduler"] == theirs["scheduler"]
    for g_ours, g_theirs in zip(ours["optimizer"]["param_groups"],
                                theirs["optimizer"]["param_groups"]):
        assert g_ours == g_theirs
    assert ours["epoch"] == 0


def test_mismatch_report_is_readable(tiny, tmp_path):
    cfg, model = tiny
    sd = ck.add_prefix(model.state_dict())
    sd.pop("module.cls_head.cls_head.conv.bias")
    sd["module.extra.layer.weight"] = torch.zeros(1)
    sd["module.reg_head.offset_head.conv.weight"] = torch.zeros(3, 32, 3)
    with pytest.raises(ck.CheckpointError) as err:
        ck.load_model_weights(model, {"state_dict_ema": sd})
    msg = str(err.value)
    assert "missing in checkpoint (1): cls_head.cls_head" in msg
    assert "unexpected in checkpoint (1): extra.layer" in msg
    assert "reg_head.offset_head.conv.weight: checkpoint (3, 32, 3) vs model (2, 32, 3)" in msg
    with pytest.raises(ck.CheckpointError, match="state_dict_ema"):
        ck.load_model_weights(model, {"state_dict": sd})
    with pytest.raises(FileNotFoundError, match="nope.pth.tar"):
        ck.load_model_weights(model, str(tmp_path / "nope.pth.tar"))


def test_crash_while_writing_keeps_previous_file(tiny, tmp_path, monkeypatch):
    cfg, model = tiny
    ema, opt, sched = _pieces(cfg, model)
    path = ck.save_checkpoint(str(tmp_path), 5, model, ema, opt, sched)
    before = open(path, "rb").read()

    def broken_save(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(str(tmp_path), 5, model, ema, opt, sched)
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["epoch_005.pth.tar"]
    torch.load(path, weights_only=True)


def test_find_checkpoint(tmp_path):
    for e in (5, 10, 35):
        (tmp_path / ck.checkpoint_name(e)).write_bytes(b"x")
    (tmp_path / ck.INTERRUPTED_NAME).write_bytes(b"x")
    assert ck.find_checkpoint(str(tmp_path)).endswith("epoch_035.pth.tar")
    assert ck.find_checkpoint(str(tmp_path) + "/").endswith("epoch_035.pth.tar")
    assert ck.find_checkpoint(str(tmp_path), epoch=10).endswith("epoch_010.pth.tar")
    f = str(tmp_path / "epoch_005.pth.tar")
    assert ck.find_checkpoint(f) == f
    with pytest.raises(FileNotFoundError, match="epoch 7"):
        ck.find_checkpoint(str(tmp_path), epoch=7)
    with pytest.raises(FileNotFoundError):
        ck.find_checkpoint(str(tmp_path / "epoch_099.pth.tar"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ck.find_checkpoint(str(tmp_path / "missing_folder"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no \\*.pth.tar"):
        ck.find_checkpoint(str(empty))


def test_rng_state_round_trip(tmp_path):
    gen = torch.Generator().manual_seed(3)
    random.seed(1); np.random.seed(2); torch.manual_seed(4)
    state = ck.capture_rng_state(gen)
    ck.atomic_save(state, str(tmp_path / "rng.pt"))
    expected = (random.random(), np.random.rand(), torch.rand(1).item(),
                torch.rand(1, generator=gen).item())
    random.seed(9); np.random.seed(9); torch.manual_seed(9); gen.manual_seed(9)
    ck.restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), gen)
    assert (random.random(), np.random.rand(), torch.rand(1).item(),
            torch.rand(1, generator=gen).item()) == expected


def test_resume_restores_everything(tiny, tmp_path):
    cfg, model = tiny
    ema, opt, sched = _pieces(cfg, model, iters=3)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    for _ in range(4):
        opt.step(); sched.step(); ema.update(model)
    model.loss_normalizer = 77.5
    torch.manual_seed(11)
    extra = {"loss_normalizer": model.loss_normalizer, "rng_state": ck.capture_rng_state()}
    path = ck.save_checkpoint(str(tmp_path), 2, model, ema, opt, sched, extra=extra)
    after = torch.rand(3)

    torch.manual_seed(0)
    model2 = make_meta_arch(cfg["model_name"], **cfg["model"])
    ema2, opt2, sched2 = _pieces(cfg, model2, iters=3)
    info = ck.resume_from(path, model2, ema2, opt2, sched2)
    assert info.epoch == 2 and info.iteration == 0
    assert set(info.restored) == {"loss_normalizer", "rng_state"}
    assert model2.loss_normalizer == 77.5
    assert torch.equal(torch.rand(3), after)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(ema.module.state_dict().values(), ema2.module.state_dict().values()):
        assert torch.equal(a, b)
    assert sched2.state_dict() == sched.state_dict()
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_original_file_resumes_without_optional_keys(tiny, conformance_dir):
    cfg, model = tiny
    ema, opt, sched = _pieces(cfg, model)
    model.loss_normalizer = 5.0
    info = ck.resume_from(str(conformance_dir / "tiny_thumos" / "epoch_000.pth.tar"),
                          model, ema, opt, sched)
    assert info.epoch == 0 and info.restored == []
    assert model.loss_normalizer == 5.0
    with pytest.raises(FileNotFoundError):
        ck.resume_from(str(conformance_dir / "missing.pth.tar"), model, ema, opt, sched)


def test_kernel_choice_is_not_saved_and_survives_resume(tiny, conformance_dir, tmp_path):
    """The fused optimizer's flag is an implementation switch: files carry the original's
    None, and resuming (from ours or the original's file) keeps the running choice."""
    cfg, model = tiny
    ema, opt, sched = _pieces(cfg, model)
    assert all(g["fused"] for g in opt.param_groups)
    path = ck.save_checkpoint(str(tmp_path), 0, model, ema, opt, sched)
    saved = torch.load(path, weights_only=True)["optimizer"]["param_groups"]
    assert all(g["fused"] is None and g["foreach"] is None for g in saved)
    assert all(g["fused"] for g in opt.param_groups)  # saving did not touch the optimizer
    for source in (path, str(conformance_dir / "tiny_thumos" / "epoch_000.pth.tar")):
        ema2, opt2, sched2 = _pieces(cfg, model)
        ck.resume_from(source, model, ema2, opt2, sched2)
        assert all(g["fused"] for g in opt2.param_groups)
    loop = make_optimizer(model, dict(cfg["opt"], fused=False))
    ck.resume_from(path, model, ema, loop, sched)
    assert not any(g["fused"] for g in loop.param_groups)
