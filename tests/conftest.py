"""Shared pytest fixtures: the repository root, the reference folders (tests/_assets.py),
the ``device`` fixture ('cpu' always, the GPU when present) and ``to_device``.

``conformance_dir`` and ``spec_dir`` are the shipped ``tests/assets/conformance`` and
``tests/assets/spec`` (a test fails when they are missing); ``real_data_dir`` is the folder of
the real annotation files (``../shared/data``; the test is skipped without it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from libs.utils.device import DEVICE_TYPES, device_type_available, exact_float32

from tests._assets import REPO_ROOT, asset_path, shared_data_path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return asset_path("conformance")


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    return asset_path("spec")


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    return shared_data_path()


@pytest.fixture(scope="module", params=list(DEVICE_TYPES))
def device(request) -> torch.device:
    """Every device type the tests run on: 'cpu' always, the GPU when one is visible (skipped
    cleanly otherwise). TF32 is switched off so that GPU results compare with float32
    reference tensors."""
    if not device_type_available(request.param):
        pytest.skip(f"no {request.param} device available")
    exact_float32(True)
    return torch.device(request.param)


@pytest.fixture(scope="session")
def gpu_device() -> torch.device:
    """The GPU, for tests that only make sense there (NCCL); skipped without one."""
    gpu = DEVICE_TYPES[1]
    if not device_type_available(gpu):
        pytest.skip(f"no {gpu} device available")
    exact_float32(True)
    return torch.device(gpu)


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` (tensors in nested dicts / lists / tuples) with every tensor on ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj
