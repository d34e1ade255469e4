"""``batched_nms``, ``seg_voting`` and the backend switch (docs/reference.md §5.3,
§9 items 18-19).

Hand cases work out the expected detections from the specification; the random comparison runs
the full function through both backends (``ext``).
"""
from __future__ import annotations

import logging
import math

import pytest
import torch

import libs.ops.nms as nms_mod
from libs.ops import batched_nms, extension_available, nms_backend, nms_torch, seg_voting

from ._nms_oracle import random_case

ENV = "ACTIONFORMER_NMS_BACKEND"
BACKENDS = ["torch", pytest.param("cpp", marks=[
    pytest.mark.ext,
    pytest.mark.skipif(not extension_available(), reason="C++ NMS extension not built")])]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv(ENV, request.param)
    return request.param


def T(rows, dtype=torch.float32):
    return torch.tensor(rows, dtype=dtype)


# ------------------------------------------------------------------------ backend choice

def test_env_var_selects_backend(monkeypatch):
    monkeypatch.setenv(ENV, "torch")
    assert nms_backend() == "torch"
    monkeypatch.setenv(ENV, "auto")
    assert nms_backend() == ("cpp" if extension_available() else "torch")
    monkeypatch.setenv(ENV, "bogus")
    with pytest.raises(ValueError, match=f"{ENV}='bogus'.*auto, cpp, torch"):
        nms_backend()


def test_env_var_routes_calls(monkeypatch):
    calls = []
    real = nms_torch.softnms
    monkeypatch.setattr(nms_torch, "softnms", lambda *a: calls.append(1) or real(*a))
    segs, scores, labels = T([[0, 4], [1, 5]]), T([0.9, 0.8]), T([0, 0], torch.int64)
    monkeypatch.setenv(ENV, "torch")
    batched_nms(segs, scores, labels, 0.1, 0.001, 10)
    assert len(calls) == 1
    if extension_available():
        monkeypatch.setenv(ENV, "cpp")
        batched_nms(segs, scores, labels, 0.1, 0.001, 10)
        assert len(calls) == 1


def test_without_extension(monkeypatch, caplog):
    monkeypatch.setattr(nms_mod, "_C", None)
    monkeypatch.setattr(nms_mod, "_fallback_announced", False)
    monkeypatch.setenv(ENV, "cpp")
    with pytest.raises(RuntimeError, match="libs.ops._C is not built"):
        nms_backend()
    monkeypatch.setenv(ENV, "auto")
    with caplog.at_level(logging.INFO, logger="libs.ops.nms"):
        assert nms_backend() == "torch"
        segs, scores, labels = T([[0, 4], [1, 5]]), T([0.9, 0.8]), T([0, 1], torch.int64)
        out = batched_nms(segs, scores, labels, 0.1, 0.001, 10)
    assert out[2].tolist() == [0, 1]
    msgs = [r.getMessage() for r in caplog.records if r.name == "libs.ops.nms"]
    assert msgs == ["C++ NMS not built; using the PyTorch implementation (same results, slower)"]


# ----------------------------------------------------------------------------- hand cases

def test_empty_input(backend):
    segs, scores, labels = batched_nms(torch.zeros(0, 2), torch.zeros(0),
                                       torch.zeros(0, dtype=torch.int32), 0.1, 0.001, 100)
    assert segs.shape == (0, 2) and segs.dtype == torch.float32
    assert scores.shape == (0,) and scores.dtype == torch.float32
    assert labels.shape == (0,) and labels.dtype == torch.int32


def test_multiclass_keeps_identical_segments_of_different_classes(backend):
    # the THUMOS CliffDiving / Diving case: same boundaries, two labels
    segs, scores, labels = T([[2, 8], [2, 8]]), T([0.6, 0.7]), T([3, 1], torch.int64)
    out_segs, out_scores, out_labels = batched_nms(segs, scores, labels, 0.1, 0.001, 10)
    assert out_labels.tolist() == [1, 3]
    assert out_scores.tolist() == pytest.approx([0.7, 0.6])
    assert out_segs.tolist() == [[2, 8], [2, 8]]
    # class-agnostic: the second is decayed by e^-2 (IoU 1), no voting
    out = batched_nms(segs, scores, labels, 0.1, 0.001, 10, multiclass=False, voting_thresh=0)
    assert out[2].tolist() == [1, 3]
    assert out[1].tolist() == pytest.approx([0.7, 0.6 * math.exp(-2)], rel=1e-5)


def test_caps_per_class_and_overall(backend):
    segs = T([[0, 1], [2, 3], [4, 5], [10, 11], [12, 13]])
    scores, labels = T([0.1, 0.5, 0.3, 0.4, 0.2]), T([0, 0, 0, 1, 1], torch.int64)
    _, out_scores, out_labels = batched_nms(segs, scores, labels, 0.1, 0.001, 2)
    # class 0 keeps (0.5, 0.3), class 1 keeps (0.4, 0.2); overall top 2
    assert out_scores.tolist() == pytest.approx([0.5, 0.4])
    assert out_labels.tolist() == [0, 1]
    _, out_scores, _ = batched_nms(segs, scores, labels, 0.1, 0.001, 3, use_soft_nms=False)
    assert out_scores.tolist() == pytest.approx([0.5, 0.4, 0.3])


def test_min_score_soft_keeps_equal_hard_drops(backend):
    # disjoint segments: Soft-NMS weight is exactly 1, so 0.25 stays equal to min_score
    segs, scores, labels = T([[0, 1], [5, 6]]), T([0.5, 0.25]), T([0, 0], torch.int64)
    soft = batched_nms(segs, scores, labels, 0.1, 0.25, 10, use_soft_nms=True)
    hard = batched_nms(segs, scores, labels, 0.1, 0.25, 10, use_soft_nms=False)
    assert soft[1].tolist() == [0.5, 0.25]
    assert hard[1].tolist() == [0.5]


def test_hard_nms_scores_unchanged_and_suppression(backend):
    segs = T([[0, 10], [1, 10], [20, 30]])
    scores, labels = T([0.5, 0.9, 0.4]), T([0, 0, 0], torch.int64)
    out_segs, out_scores, _ = batched_nms(segs, scores, labels, 0.5, 0.001, 10,
                                          use_soft_nms=False)
    assert out_segs.tolist() == [[1, 10], [20, 30]]
    assert out_scores.tolist() == pytest.approx([0.9, 0.4])


def _vote(seg, all_segs, all_scores, thr):
    """seg_voting for one segment in plain Python (§5.3)."""
    wsum, acc = 0.0, [0.0, 0.0]
    for (s, e), sc in zip(all_segs, all_scores):
        inter = max(0.0, min(seg[1], e) - max(seg[0], s))
        iou = inter / ((seg[1] - seg[0]) + (e - s) - inter)
        w = sc * iou if iou >= thr else 0.0
        wsum += w
        acc = [acc[0] + w * s, acc[1] + w * e]
    return [acc[0] / wsum, acc[1] / wsum]


def test_class_agnostic_voting(backend):
    all_segs = [[0.0, 10.0], [1.0, 11.0], [30.0, 40.0]]
    all_scores = [0.9, 0.6, 0.5]
    segs, scores, labels = T(all_segs), T(all_scores), T([2, 0, 1], torch.int64)
    out_segs, out_scores, out_labels = batched_nms(segs, scores, labels, 0.1, 0.001, 10,
                                                   multiclass=False, voting_thresh=0.5)
    iou01 = 9 / 11
    decayed = 0.6 * math.exp(-iou01 ** 2 / 0.5)
    assert out_scores.tolist() == pytest.approx([0.9, 0.5, decayed], rel=1e-5)
    assert out_labels.tolist() == [2, 1, 0]
    expected = [_vote(s, all_segs, all_scores, 0.5) for s in (all_segs[0], all_segs[2],
                                                              all_segs[1])]
    torch.testing.assert_close(out_segs, T(expected), rtol=0, atol=1e-5)
    # voting is never applied in multiclass mode (§9 item 19)
    multi = batched_nms(segs, scores, T([0, 0, 0], torch.int64), 0.1, 0.001, 10,
                        multiclass=True, voting_thresh=0.5)
    assert multi[0].tolist() == [[0, 10], [30, 40], [1, 11]]


def test_seg_voting_threshold_and_unused_offset():
    nms_segs, all_segs, all_scores = T([[0, 10]]), T([[0, 10], [5, 15]]), T([0.8, 0.4])
    # IoU([0, 10], [5, 15]) = 1/3: counted at 0.3, not at 0.4
    got = seg_voting(nms_segs, all_segs, all_scores, 0.3)
    torch.testing.assert_close(got, T([_vote([0, 10], all_segs.tolist(), [0.8, 0.4], 0.3)]))
    assert seg_voting(nms_segs, all_segs, all_scores, 0.4).tolist() == [[0, 10]]
    assert torch.equal(seg_voting(nms_segs, all_segs, all_scores, 0.3, score_offset=99.0), got)


def test_inputs_cast_and_checked(backend):
    segs, scores, labels = T([[0, 4], [1, 5]], torch.float64), T([0.9, 0.8], torch.float64), \
        T([0, 1], torch.int64)
    out = batched_nms(segs, scores, labels, 0.1, 0.001, 10)
    assert out[0].dtype == torch.float32 and out[0].device.type == "cpu"
    with pytest.raises(ValueError, match=r"segs must have shape \(N, 2\)"):
        batched_nms(torch.zeros(3, 3), torch.zeros(3), torch.zeros(3, dtype=torch.int64),
                    0.1, 0.001, 10)
    with pytest.raises(ValueError, match=r"cls_idxs must have shape \(N,\) with N = 3"):
        batched_nms(torch.zeros(3, 2), torch.zeros(3), torch.zeros(2, dtype=torch.int64),
                    0.1, 0.001, 10)


# ------------------------------------------------------------ both backends, random inputs

def _run(monkeypatch, backend, *args, **kwargs):
    monkeypatch.setenv(ENV, backend)
    return batched_nms(*args, **kwargs)


@pytest.mark.ext
@pytest.mark.skipif(not extension_available(), reason="C++ NMS extension not built")
@pytest.mark.parametrize("soft, multiclass", [(True, True), (True, False), (False, True),
                                              (False, False)])
def test_backends_agree_on_random_videos(monkeypatch, soft, multiclass):
    gen = torch.Generator().manual_seed(7 + 2 * soft + multiclass)
    for case in range(60):
        segs, scores, labels = random_case(gen, max_n=120, num_classes=4)
        kwargs = dict(iou_threshold=[0.1, 0.5][case % 2], min_score=[0.001, 0.05][case % 2],
                      max_seg_num=[200, 5][case % 2], use_soft_nms=soft,
                      multiclass=multiclass, sigma=0.5, voting_thresh=0.7)
        a = _run(monkeypatch, "cpp", segs, scores, labels, **kwargs)
        b = _run(monkeypatch, "torch", segs, scores, labels, **kwargs)
        assert torch.equal(a[2], b[2]), case
        for x, y in zip(a[:2], b[:2]):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-6, equal_nan=True)
