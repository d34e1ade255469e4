"""Shared pytest fixtures: where the read-only references live, and skips when they are absent.

The references (``shared/``: spec, conformance tensors, real annotations) sit beside the
repository as ``../shared``; ``ACTIONFORMER_SHARED`` overrides that location.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
