"""Shared pytest fixtures: where the read-only references live, and skips when they are absent;
the ``device`` fixture ('cpu' always, the GPU when present) and ``to_device``.

The references (``shared/``: spec, conformance tensors, real annotations) sit beside the
repository as ``../shared``; ``ACTIONFORMER_SHARED`` overrides that location.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from libs.utils.device import DEVICE_TYPES, device_type_available, exact_float32

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("ACTIONFORMER_SHARED", REPO_ROOT.parent / "shared"))
CONFORMANCE_DIR = SHARED_DIR / "conformance"
SPEC_DIR = SHARED_DIR / "spec"
REAL_DATA_DIR = SHARED_DIR / "data"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (set ACTIONFORMER_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return _require(CONFORMANCE_DIR, "conformance fixtures")


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    return _require(SPEC_DIR, "spec files")


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    return _require(REAL_DATA_DIR, "real annotation files")


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
