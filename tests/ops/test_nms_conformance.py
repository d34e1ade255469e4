"""``batched_nms`` reproduces the original's NMS output stored in tests/assets/conformance.

For both checkpoints ('init', 'perturbed') and the 3 eval videos, the stored ``pre_nms``
candidates (feature-grid units) through ``batched_nms`` with the tiny config's test_cfg must
give the stored ``nms`` detections: same count and labels, segments and scores within 1e-4.
docs/reference.md §5.3-§5.4; conformance/README.md (tiny_expected.pt).
"""
from __future__ import annotations

import pytest
import torch

from libs.ops import batched_nms, extension_available

BACKENDS = ["torch", pytest.param("cpp", marks=[
    pytest.mark.ext,
    pytest.mark.skipif(not extension_available(), reason="C++ NMS extension not built")])]


@pytest.fixture(scope="module")
def expected(conformance_dir):
    return torch.load(conformance_dir / "tiny_expected.pt")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("checkpoint", ["init", "perturbed"])
def test_batched_nms_matches_original(expected, checkpoint, backend, monkeypatch):
    monkeypatch.setenv("ACTIONFORMER_NMS_BACKEND", backend)
    test_cfg = expected["config"]["test_cfg"]
    assert test_cfg["nms_method"] == "soft" and test_cfg["multiclass_nms"] is True
    videos = expected[checkpoint]["eval"]
    assert len(videos) == 3
    for video_id, stages in videos.items():
        pre, want = stages["pre_nms"], stages["nms"]
        segs, scores, labels = batched_nms(
            pre["segments"], pre["scores"], pre["labels"],
            iou_threshold=test_cfg["iou_threshold"], min_score=test_cfg["min_score"],
            max_seg_num=test_cfg["max_seg_num"], use_soft_nms=True,
            multiclass=test_cfg["multiclass_nms"], sigma=test_cfg["nms_sigma"],
            voting_thresh=test_cfg["voting_thresh"])
        assert labels.shape == want["labels"].shape, video_id
        assert torch.equal(labels, want["labels"]), video_id
        torch.testing.assert_close(scores, want["scores"], rtol=0, atol=1e-4, msg=video_id)
        torch.testing.assert_close(segs, want["segments"], rtol=0, atol=1e-4, msg=video_id)
