"""tools/infer.py on a video longer than the model's point buffers: decoded in windows.

Before windowed inference such a video stopped at the point generator's assertion; the
model-level before/after pin is in tests/modeling/test_windowed.py. Here: the tool runs it,
says how many windows it used, and a forced window on a short video gives its detections.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import infer  # noqa: E402


@pytest.fixture
def tiny(conformance_dir, monkeypatch):
    monkeypatch.chdir(conformance_dir)  # the tiny config's paths are relative to it
    return conformance_dir


def test_long_video_runs_in_windows(tiny, tmp_path):
    feats = np.random.default_rng(0).standard_normal((2000, 32)).astype(np.float32)
    np.save(tmp_path / "long.npy", feats)  # 2,000 steps > 1,536 buffered points
    (res,) = infer.detect("tiny_thumos.yaml", "tiny_thumos_perturbed",
                          [str(tmp_path / "long.npy")], fps=30.0)
    assert res["windows"] == 2
    assert len(res["detections"]) == 200  # max_seg_num of the config
    assert res["duration"] == pytest.approx((1999 * 4 + 16) / 30.0)
    assert all(0 <= d["start"] <= d["end"] <= res["duration"] for d in res["detections"])


def test_forced_window_matches_whole_video(tiny):
    path = "tiny_data/i3d_features/video_test_0000007.npy"
    (whole,) = infer.detect("tiny_thumos.yaml", "tiny_thumos_perturbed", [path])
    assert whole["windows"] == 1
    (one,) = infer.detect("tiny_thumos.yaml", "tiny_thumos_perturbed", [path], window=1536)
    assert one["windows"] == 1 and one["detections"] == whole["detections"]
