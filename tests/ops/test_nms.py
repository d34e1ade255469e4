"""The 1-D NMS / Soft-NMS kernels of both backends (docs/reference.md §5.4, STYLE.md §3.9).

Hand cases with known answers run on every backend; the PyTorch kernels are also checked
against the scalar transcription of §5.4 in ``_nms_oracle.py``; the C++ and PyTorch kernels are
compared on hundreds of random inputs (``ext``: skipped when ``libs.ops._C`` is not built).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from libs.ops import extension_available, nms_torch

from ._nms_oracle import random_case, ref_nms, ref_softnms

requires_ext = [pytest.mark.ext,
                pytest.mark.skipif(not extension_available(),
                                   reason="C++ NMS extension libs.ops._C not built")]


def _ext():
    from libs.ops import _C
    return _C


KERNELS = [pytest.param("torch", id="torch"), pytest.param("cpp", id="cpp", marks=requires_ext)]


@pytest.fixture(params=KERNELS)
def kernels(request):
    return nms_torch if request.param == "torch" else _ext()


def T(rows):
    return torch.tensor(rows, dtype=torch.float32)


def soft(kernels, segs, scores, thr=0.1, sigma=0.5, min_score=0.001, method=2):
    dets = torch.full((len(segs), 3), -7.0)
    inds = kernels.softnms(segs, scores, dets, thr, sigma, min_score, method)
    return inds.tolist(), dets[: len(inds)]


# ---------------------------------------------------------------------------- hand cases

def test_hard_disjoint_keeps_all_in_score_order(kernels):
    segs = T([[0, 1], [2, 3], [4, 5]])
    assert kernels.nms(segs, T([0.2, 0.9, 0.5]), 0.1).tolist() == [1, 2, 0]


def test_hard_nested_iou_against_threshold(kernels):
    # IoU([0, 10], [2, 4]) = 2 / (10 + 2 - 2) = 0.2 (plus the 1e-6 area terms)
    segs, scores = T([[0, 10], [2, 4]]), T([0.9, 0.8])
    assert kernels.nms(segs, scores, 0.1).tolist() == [0]
    assert kernels.nms(segs, scores, 0.3).tolist() == [0, 1]


def test_hard_threshold_is_inclusive(kernels):
    # IoU([0, 4], [0, 2]) = 2 / (4 + 2 - 2) = 0.5 (up to the 1e-6 areas): suppressed at 0.5
    segs, scores = T([[0, 4], [0, 2]]), T([0.9, 0.8])
    iou = np.float32(2) / (np.float32(4 + 1e-6) + np.float32(2 + 1e-6) - np.float32(2))
    assert kernels.nms(segs, scores, float(iou)).tolist() == [0]


def test_hard_identical_segments_keep_the_best(kernels):
    segs = T([[3, 7], [3, 7], [3, 7]])
    assert kernels.nms(segs, T([0.3, 0.6, 0.5]), 0.9).tolist() == [1]


def test_hard_tied_scores_follow_aten_sort(kernels):
    segs, scores = T([[3, 7], [3, 7], [20, 30]]), T([0.5, 0.5, 0.5])
    order = scores.sort(descending=True)[1].tolist()  # the ATen sort the spec prescribes
    keep = kernels.nms(segs, scores, 0.5).tolist()
    first_dup = [i for i in order if i in (0, 1)][0]
    assert keep == [i for i in order if i in (first_dup, 2)]


def test_empty_and_single(kernels):
    empty = torch.zeros(0, 2)
    out = kernels.nms(empty, torch.zeros(0), 0.5)
    assert out.dtype == torch.int64 and out.numel() == 0
    inds, _ = soft(kernels, empty, torch.zeros(0))
    assert inds == []
    assert kernels.nms(T([[1, 2]]), T([0.3]), 0.5).tolist() == [0]
    # the first selected candidate is never tested against min_score (§9 item 18)
    inds, dets = soft(kernels, T([[1, 2]]), T([0.0001]), min_score=0.001)
    assert inds == [0] and dets.tolist() == [[1.0, 2.0, pytest.approx(0.0001)]]


def test_soft_gaussian_identical_and_tied(kernels):
    # identical segments: IoU = 1 (to ~1e-7) so each selection multiplies the rest by e^-2;
    # with tied scores the first position wins each time
    segs, scores = T([[3, 7]] * 3), T([0.5, 0.5, 0.5])
    inds, dets = soft(kernels, segs, scores, min_score=0.0)
    assert inds == [0, 1, 2]
    w = math.exp(-1 / 0.5)
    np.testing.assert_allclose(dets[:, 2].numpy(), [0.5, 0.5 * w, 0.5 * w * w], rtol=1e-5)
    assert dets[:, :2].tolist() == [[3, 7]] * 3
    # 0.5 e^-4 = 0.00916 < 0.01: the third one is deleted
    inds, _ = soft(kernels, segs, scores, min_score=0.01)
    assert inds == [0, 1]


def test_soft_gaussian_ignores_iou_threshold(kernels):
    segs, scores = T([[0, 10], [5, 15], [8, 20]]), T([0.9, 0.8, 0.7])
    a = soft(kernels, segs, scores, thr=0.05)
    b = soft(kernels, segs, scores, thr=0.95)
    assert a[0] == b[0] and torch.equal(a[1], b[1])


def test_soft_linear_and_hard_methods(kernels):
    segs, scores = T([[0, 10], [5, 15]]), T([0.9, 0.8])  # IoU = 5 / 15
    inds, dets = soft(kernels, segs, scores, thr=0.3, method=1)
    assert inds == [0, 1]
    assert dets[1, 2].item() == pytest.approx(0.8 * (1 - 1 / 3), rel=1e-5)
    inds, dets = soft(kernels, segs, scores, thr=0.4, method=1)  # below threshold: unchanged
    assert dets[1, 2].item() == pytest.approx(0.8)
    inds, _ = soft(kernels, segs, scores, thr=0.3, method=0)  # weight 0 -> deleted
    assert inds == [0]
    inds, _ = soft(kernels, segs, scores, thr=0.4, method=0)
    assert inds == [0, 1]


def test_soft_swap_with_last_decides_later_ties(kernels):
    # A is selected first; B (same segment, score 0.005 -> 0.005 e^-2 < 0.001) is deleted and the
    # *last* entry D takes its slot, so the tie between C and D (disjoint from A, weight 1) goes
    # to D. A stable compaction would pick C first.
    segs = T([[0, 10], [0, 10], [100, 110], [200, 210]])
    scores = T([1.0, 0.005, 0.5, 0.5])
    inds, dets = soft(kernels, segs, scores)
    assert inds == [0, 3, 2]
    assert dets[:, 2].tolist() == [1.0, 0.5, 0.5]


def test_soft_min_score_is_strict(kernels):
    # disjoint segments: weight exp(-0) = 1, so the second keeps exactly 0.25 = min_score
    segs, scores = T([[0, 1], [5, 6]]), T([0.5, 0.25])
    assert soft(kernels, segs, scores, min_score=0.25)[0] == [0, 1]
    assert soft(kernels, segs, scores, min_score=0.2500001)[0] == [0]


def test_inputs_are_not_modified(kernels):
    segs, scores = T([[0, 10], [1, 9], [2, 30]]), T([0.3, 0.9, 0.5])
    s0, c0 = segs.clone(), scores.clone()
    kernels.nms(segs, scores, 0.1)
    soft(kernels, segs, scores)
    assert torch.equal(segs, s0) and torch.equal(scores, c0)


@pytest.mark.parametrize("segs, scores, message", [
    (torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3), "segs must be float32"),
    (torch.zeros(3, 2), torch.zeros(3, dtype=torch.float16), "scores must be float32"),
    (torch.zeros(3, 3), torch.zeros(3), r"segs must have shape \(N, 2\)"),
    (torch.zeros(3, 2), torch.zeros(4), r"scores must have shape \(N,\)"),
])
def test_bad_inputs_raise_clear_errors(kernels, segs, scores, message):
    with pytest.raises(ValueError, match="nms: " + message):
        kernels.nms(segs, scores, 0.5)
    with pytest.raises(ValueError, match="softnms: " + message):
        kernels.softnms(segs, scores, torch.zeros(len(segs), 3), 0.5, 0.5, 0.001, 2)


def test_bad_dets_and_method(kernels):
    segs, scores = torch.zeros(3, 2), torch.zeros(3)
    with pytest.raises(ValueError, match=r"dets must .*\(N, 3\)"):
        kernels.softnms(segs, scores, torch.zeros(2, 3), 0.5, 0.5, 0.001, 2)
    with pytest.raises(ValueError, match="method must be 0"):
        kernels.softnms(segs, scores, torch.zeros(3, 3), 0.5, 0.5, 0.001, 3)


@pytest.mark.ext
@pytest.mark.skipif(not extension_available(), reason="C++ NMS extension not built")
def test_cpp_rejects_non_contiguous():
    _C = _ext()
    segs = torch.zeros(2, 4)[:, ::2]
    with pytest.raises(ValueError, match="segs must be contiguous"):
        _C.nms(segs, torch.zeros(2), 0.5)


# --------------------------------------------------------- the PyTorch kernels vs the oracle

def test_torch_kernels_match_scalar_oracle():
    gen = torch.Generator().manual_seed(11)
    for case in range(80):
        segs, scores, _ = random_case(gen, max_n=25)
        thr = [0.1, 0.5, 0.7][case % 3]
        assert nms_torch.nms(segs, scores, thr).tolist() == ref_nms(segs, scores, thr), case
        for method in (0, 1, 2):
            min_score = [0.001, 0.05, 0.3][case % 3]
            inds, dets = soft(nms_torch, segs, scores, thr, 0.5, min_score, method)
            ref_inds, ref_dets = ref_softnms(segs, scores, thr, 0.5, min_score, method)
            assert inds == ref_inds, (case, method)
            np.testing.assert_allclose(dets.numpy(), ref_dets, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- C++ vs PyTorch, random

@pytest.mark.ext
@pytest.mark.skipif(not extension_available(), reason="C++ NMS extension not built")
def test_backends_agree_on_random_inputs():
    _C = _ext()
    gen = torch.Generator().manual_seed(2024)
    n_cases = 300
    for case in range(n_cases):
        segs, scores, _ = random_case(gen, max_n=80)
        thr = float(torch.rand(1, generator=gen)) * 0.9 + 0.05
        assert torch.equal(_C.nms(segs, scores, thr), nms_torch.nms(segs, scores, thr)), case
        for method in (0, 1, 2):
            min_score = [0.001, 0.02, 0.2][case % 3]
            a_inds, a_dets = soft(_C, segs, scores, thr, 0.5, min_score, method)
            b_inds, b_dets = soft(nms_torch, segs, scores, thr, 0.5, min_score, method)
            assert a_inds == b_inds, (case, method)
            # methods 0/1 are bit-identical; Gaussian differs by at most an ulp of expf
            atol = 1e-6 if method == 2 else 0.0
            torch.testing.assert_close(a_dets, b_dets, rtol=0, atol=atol)


# ------------------------------------------------------------------ PyTorch kernels on GPU

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_kernels_on_gpu_match_cpu():
    gen = torch.Generator().manual_seed(5)
    dev = torch.device("cuda")
    for case in range(40):
        segs, scores, _ = random_case(gen, max_n=80)
        assert nms_torch.nms(segs.to(dev), scores.to(dev), 0.3).cpu().tolist() == \
            nms_torch.nms(segs, scores, 0.3).tolist(), case
        for method in (0, 1, 2):
            a_inds, a_dets = soft(nms_torch, segs, scores, 0.3, 0.5, 0.01, method)
            dets = torch.zeros(len(segs), 3, device=dev)
            b_inds = nms_torch.softnms(segs.to(dev), scores.to(dev), dets, 0.3, 0.5, 0.01, method)
            assert b_inds.cpu().tolist() == a_inds, (case, method)
            torch.testing.assert_close(dets[: len(b_inds)].cpu(), a_dets, rtol=0, atol=1e-6)
