"""External score fusion ``postprocess_results`` (docs/reference.md §5.5), hand-built cases."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from libs.evaluation import postprocess_results


def _results():
    # video "b" comes first in the input; output is in sorted id order ("a", "b").
    # "a" has three detections; with num_pred=2 the 0.04 one is dropped.
    return {"video-id": ["b", "a", "a", "a"],
            "t-start": np.array([5.0, 1.0, 2.0, 3.0], dtype=np.float32),
            "t-end": np.array([6.0, 1.5, 2.5, 3.5], dtype=np.float32),
            "label": np.array([0, 0, 0, 0]),
            "score": np.array([0.49, 0.36, 0.04, 0.64], dtype=np.float32)}


CLS = {"a": [0.25, 0.01, 0.81], "b": [0.09, 0.16, 0.0]}


def _check_fused(out):
    # a: classes by score: 2 (0.81), 0 (0.25); detections by score: 0.64 [3, 3.5],
    # 0.36 [1, 1.5]. k-major: sqrt(.81*.64)=.72, sqrt(.81*.36)=.54, sqrt(.25*.64)=.40,
    # sqrt(.25*.36)=.30. b: classes 1 (0.16), 0 (0.09); one detection 0.49 [5, 6]:
    # sqrt(.16*.49)=.28, sqrt(.09*.49)=.21
    assert out["video-id"] == ["a"] * 4 + ["b"] * 2
    np.testing.assert_allclose(out["score"], [0.72, 0.54, 0.40, 0.30, 0.28, 0.21], atol=1e-7)
    assert out["label"].tolist() == [2, 2, 0, 0, 1, 0]
    assert out["label"].dtype == np.int64
    np.testing.assert_allclose(out["t-start"], [3.0, 1.0, 3.0, 1.0, 5.0, 5.0])
    np.testing.assert_allclose(out["t-end"], [3.5, 1.5, 3.5, 1.5, 6.0, 6.0])


def test_fusion_json_with_results_key(tmp_path):
    path = tmp_path / "cuhk_val_simp_share.json"
    path.write_text(json.dumps({"results": CLS, "version": "x"}))
    _check_fused(postprocess_results(_results(), str(path), num_pred=2, topk=2))


def test_fusion_exact_product_of_float32_scores(tmp_path):
    # the original multiplies the float64 class score by the detection score read as a
    # Python float, then takes the square root
    path = tmp_path / "s.json"
    path.write_text(json.dumps(CLS))
    out = postprocess_results(_results(), str(path), num_pred=2, topk=2)
    det = float(np.float32(0.64))
    assert out["score"][0] == np.sqrt(0.81 * det)


def test_fusion_pickles(tmp_path):
    res_file = tmp_path / "eval_results.pkl"
    with open(res_file, "wb") as f:
        pickle.dump(_results(), f)
    cls_file = tmp_path / "scores.pkl"
    with open(cls_file, "wb") as f:
        pickle.dump({k: np.array(v) for k, v in CLS.items()}, f)
    _check_fused(postprocess_results(str(res_file), str(cls_file), num_pred=2, topk=2))


def test_fusion_default_keeps_all_and_topk_one(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(CLS))
    out = postprocess_results(_results(), str(path), topk=1)
    # a: class 2 only, all three detections by score 0.64, 0.36, 0.04 -> .72, .54, .18
    np.testing.assert_allclose(out["score"], [0.72, 0.54, 0.18, 0.28], atol=1e-7)
    assert out["label"].tolist() == [2, 2, 2, 1]


def test_fusion_missing_video(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"a": CLS["a"]}))
    with pytest.raises(KeyError, match="'b' has no class scores"):
        postprocess_results(_results(), str(path))
