"""Where the tests find the conformance assets: ``tests/assets/conformance/NAME`` when the
repository carries them, else ``../shared/conformance/NAME`` (``ACTIONFORMER_SHARED``)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_REPO = REPO_ROOT / "tests" / "assets" / "conformance"
SHARED = Path(os.environ.get("ACTIONFORMER_SHARED", REPO_ROOT.parent / "shared")) / "conformance"


def conformance_path(name: str) -> Path:
    """Path of the conformance asset ``name`` (a file or folder); the in-repository copy wins.

    Raises:
        FileNotFoundError: neither location has it (the message names both).
    """
    for base in (IN_REPO, SHARED):
        if (base / name).exists():
            return base / name
    raise FileNotFoundError(f"conformance asset '{name}' is missing: looked in {IN_REPO} and "
                            f"{SHARED}")
