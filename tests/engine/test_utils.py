"""libs.utils helpers used by the engine: device, comm (no process group), seed, meters."""
from __future__ import annotations

import os
import random
import warnings

import numpy as np
import pytest
import torch

from libs.utils import AverageMeter, comm, device, fix_random_seed


def test_average_meter_semantics():
    m = AverageMeter()
    m.update(2.0, n=3)
    assert (m.val, m.avg, m.sum, m.count) == (2.0, 2.0, 6.0, 3)
    m.update(6.0)
    assert (m.val, m.avg, m.sum, m.count) == (6.0, 3.0, 12.0, 4)


def _unset_env(monkeypatch, *names: str) -> None:
    """Removes ``names`` from os.environ for this test; monkeypatch restores every one of them
    afterwards, also when the code under test sets it (``delenv(raising=False)`` alone records
    nothing for a variable that is absent, so a value written later would leak)."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.fixture
def restore_determinism():
    """torch's process-wide deterministic-algorithms switch, put back after the test."""
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_fix_random_seed_returns_global_generator(monkeypatch, restore_determinism):
    _unset_env(monkeypatch, "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG")  # it writes both
    g = fix_random_seed(123, include_cuda=False)
    assert g is torch.default_generator
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    fix_random_seed(123, include_cuda=True)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
    assert os.environ["PYTHONHASHSEED"] == "123"
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled()


def test_device_rules(monkeypatch):
    monkeypatch.setattr(device, "is_cuda_available", lambda: False)
    monkeypatch.setattr(device, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert device.resolve_device(None, ["cuda:0"]).type == "cpu"
        assert device.resolve_device(None, ["cuda:0"]).type == "cpu"
    assert len([w for w in caught if "no CUDA device" in str(w.message)]) == 1
    # --device beats the config
    assert device.resolve_device("cpu", ["cuda:0"]).type == "cpu"
    assert device.resolve_device(None, None).type == "cpu"
    with pytest.raises(ValueError, match="--device"):
        device.resolve_device("tpu9", None)
    device.synchronize(torch.device("cpu"))  # no-op off CUDA


def test_comm_without_process_group():
    assert comm.get_world_size() == 1 and comm.get_rank() == 0 and comm.is_main_process()
    assert comm.all_reduce_sum(3.5) == 3.5
    assert comm.all_gather_object({"a": 1}) == [{"a": 1}]
    assert comm.broadcast_object("x") == "x"
    comm.barrier()
    assert comm.init_distributed(torch.device("cpu")) is False


def test_onednn_cache_is_enlarged_unless_the_user_chose(monkeypatch):
    _unset_env(monkeypatch, device.ONEDNN_CACHE_ENV, "DNNL_PRIMITIVE_CACHE_CAPACITY")
    assert device.enlarge_onednn_primitive_cache(4096) is True
    assert os.environ[device.ONEDNN_CACHE_ENV] == "4096"
    monkeypatch.setenv(device.ONEDNN_CACHE_ENV, "7")
    assert device.enlarge_onednn_primitive_cache() is False
    assert os.environ[device.ONEDNN_CACHE_ENV] == "7"
    monkeypatch.delenv(device.ONEDNN_CACHE_ENV)
    monkeypatch.setenv("DNNL_PRIMITIVE_CACHE_CAPACITY", "9")  # the older name counts too
    assert device.enlarge_onednn_primitive_cache() is False
    assert device.ONEDNN_CACHE_ENV not in os.environ


def test_cache_is_enlarged_by_the_entry_points_not_by_the_model(monkeypatch):
    from libs.utils.procedure import FAST, configure_process
    from tests.modeling.test_meta_arch import build
    _unset_env(monkeypatch, device.ONEDNN_CACHE_ENV, "DNNL_PRIMITIVE_CACHE_CAPACITY")
    build()
    assert device.ONEDNN_CACHE_ENV not in os.environ  # no side effect of building a model
    configure_process(FAST)  # what train.py / eval.py / tools/infer.py call
    assert os.environ[device.ONEDNN_CACHE_ENV] == str(device.ONEDNN_CACHE_CAPACITY)
