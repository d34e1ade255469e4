"""Shared pytest fixtures: the repository root and the reference folders (tests/_assets.py).

``conformance_dir`` and ``spec_dir`` are the shipped ``tests/assets/conformance`` and
``tests/assets/spec`` (a test fails when they are missing); ``real_data_dir`` is the folder of
the real annotation files (``../shared/data``; the test is skipped without it).
"""
from __future__ import annotations

from pathlib import Path

import pytest

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
