"""Damaged and foreign checkpoint files: one CheckpointError naming the file and what is wrong
(empty, truncated, random bytes, a pickle with code, not a dict, missing / malformed keys);
nothing in them runs."""
from __future__ import annotations

import errno
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from libs.engine import checkpoint as ck
from libs.engine.ema import ModelEma
from libs.utils.cli import is_user_error


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _good(tmp_path, net):
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    return ck.save_checkpoint(str(tmp_path), 1, net, ModelEma(net), opt, sched), opt, sched


def _expect(path, pattern):
    with pytest.raises(ck.CheckpointError, match=pattern) as err:
        ck.load_checkpoint(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert is_user_error(err.value)


def test_empty_file(tmp_path):
    path = tmp_path / "epoch_001.pth.tar"
    path.write_bytes(b"")
    _expect(path, r"is empty \(0 bytes\): not a checkpoint$")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_file(tmp_path, keep):
    good, *_ = _good(tmp_path, _Net())
    data = open(good, "rb").read()
    path = tmp_path / "cut.pth.tar"
    path.write_bytes(data[:int(len(data) * keep)])
    _expect(path, r"cannot be read: truncated, corrupt or not a checkpoint \(")


def test_random_bytes(tmp_path):
    path = tmp_path / "rand.pth.tar"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _expect(path, r"(is not a checkpoint, or is corrupt|cannot be read)")


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_code_in_the_file_is_refused_unrun(tmp_path, how):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth.tar"
    obj = {"epoch": 1, "state_dict_ema": _Evil(str(marker))}
    if how == "torch.save":
        torch.save(obj, path)
        _expect(path, r"holds objects other than tensors .* GLOBAL posix.system")
    else:
        path.write_bytes(pickle.dumps(obj))
        _expect(path, r"is not a checkpoint, or is corrupt")
    assert not marker.exists()


def test_not_a_dict(tmp_path):
    path = tmp_path / "t.pth.tar"
    torch.save(torch.ones(2), path)
    _expect(path, r"is not a checkpoint: it holds a Tensor, expected a dict with keys "
                  r"\['epoch', 'state_dict', 'scheduler', 'optimizer', 'state_dict_ema'\]$")


def test_eval_weights_missing_or_malformed(tmp_path):
    path = tmp_path / "w.pth.tar"
    torch.save({"epoch": 3}, path)
    with pytest.raises(ck.CheckpointError, match=r"'.*w.pth.tar' has no 'state_dict_ema' entry "
                                                 r"\(keys: \['epoch'\]\)"):
        ck.load_model_weights(_Net(), str(path))
    torch.save({"state_dict_ema": [1, 2]}, path)
    with pytest.raises(ck.CheckpointError, match=r"\[state_dict_ema\] is not a state_dict .*"
                                                 r"found list"):
        ck.load_model_weights(_Net(), str(path))


def test_resume_with_a_foreign_optimizer_state(tmp_path):
    net = _Net()
    good, opt, sched = _good(tmp_path, net)
    state = torch.load(good, weights_only=True)
    state["optimizer"] = {"param_groups": [{"params": [0]}], "state": {}}  # wrong group size
    bad = tmp_path / "bad.pth.tar"
    torch.save(state, bad)
    with pytest.raises(ck.CheckpointError, match=r"bad.pth.tar': the optimizer / scheduler "
                                                 r"state does not fit"):
        ck.resume_from(str(bad), net, ModelEma(net), opt, sched)
    # the good file still resumes
    assert ck.resume_from(good, net, ModelEma(net), opt, sched).epoch == 1


def test_disk_full_keeps_the_previous_file_and_is_a_user_error(tmp_path, monkeypatch):
    net = _Net()
    good, opt, sched = _good(tmp_path, net)
    before = open(good, "rb").read()

    def full_disk(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError) as err:
        ck.save_checkpoint(str(tmp_path), 1, net, ModelEma(net), opt, sched)
    assert is_user_error(err.value)  # printed as "error: [Errno 28] No space left on device"
    assert open(good, "rb").read() == before and not list(tmp_path.glob("*.tmp*"))
