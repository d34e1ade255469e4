"""Fixture of the dataset tests: `simple`, two THUMOS-like videos written as JSON + .npy files."""
from __future__ import annotations

import numpy as np
import pytest

from ._helpers import video, write_json


@pytest.fixture
def simple(tmp_path):
    """Two THUMOS-like videos of 150 steps x 8 channels: v1 (Test, 2 actions), v2 (Validation)."""
    (tmp_path / "feats").mkdir()
    db = {"v1": video(acts=((1.0, 3.0, "a", 0), (10.0, 12.0, "b", 1))),
          "v2": video(subset="Validation")}
    write_json(tmp_path / "ann.json", db)
    np.save(tmp_path / "feats" / "v1.npy", np.ones((150, 8), np.float32))
    np.save(tmp_path / "feats" / "v2.npy", np.ones((150, 8), np.float32))
    return tmp_path
