"""Where the tests find their reference files: the shipped conformance / spec assets
(``tests/assets/``, required) and the real annotation files (``../shared/data``, optional).

``asset_path`` fails the calling test when a shipped asset is missing (a broken checkout must not
pass as skipped); ``shared_data_path`` skips it when the real annotation files are absent (they
are not part of the repository). ``ACTIONFORMER_SHARED`` overrides the ``../shared`` location.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["ASSETS_DIR", "REPO_ROOT", "asset_path", "shared_data_dir", "shared_data_path"]

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = REPO_ROOT / "tests" / "assets"


def asset_path(relpath: str) -> Path:
    """``tests/assets/<relpath>``; fails the test (never skips) when it does not exist.

    Args:
        relpath: a path relative to ``tests/assets``, e.g. ``"conformance/tiny_expected.pt"``.
    """
    path = ASSETS_DIR / relpath
    if not path.exists():
        pytest.fail(f"test asset missing: tests/assets/{relpath} (shipped with the repository; "
                    f"restore it with 'git checkout -- tests/assets')", pytrace=False)
    return path


def shared_data_dir() -> Path:
    """The folder of the real annotation files: ``$ACTIONFORMER_SHARED/data`` or
    ``../shared/data`` beside the repository (it may not exist)."""
    shared = os.environ.get("ACTIONFORMER_SHARED")
    return (Path(shared) if shared else REPO_ROOT.parent / "shared") / "data"


def shared_data_path(relpath: str = "") -> Path:
    """``<shared data folder>/<relpath>``; skips the test when it does not exist.

    Only the tests that read the real THUMOS14 / ActivityNet / EPIC / Ego4D annotation files
    use this; everything the repository ships is read with :func:`asset_path`.
    """
    path = shared_data_dir() / relpath
    if not path.exists():
        pytest.skip(f"real annotation files not found at {path} (set ACTIONFORMER_SHARED to "
                    f"the folder that holds data/)")
    return path

