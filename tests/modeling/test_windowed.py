"""Windowed inference (libs/modeling/windowed.py) against whole-video inference.

Model: the tiny conformance config with the perturbed checkpoint (max_seq_len 256, buffer
factor 6: point buffers of 1,536 steps; 6 levels, window 9). Features: seeded random.

"Equal" means: a window that covers the video gives bitwise the same detections as
``model([item])`` (same code path); several windows with the default margin give the same
detections within float rounding, matched one to one (same label, segment within 1e-4 s,
score within 1e-4): the network runs on other lengths, which rounds differently (measured:
scores 1.0e-05, segments 3.1e-05 s apart at most for the 1,500-step video in 4 windows).
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from libs.core import load_config
from libs.engine import find_checkpoint, load_checkpoint, load_model_weights
from libs.modeling import make_meta_arch
from libs.modeling.windowed import (default_window, detect_video, fits_whole,
                                    receptive_radius, window_plan)

from tests._matching import assert_same_multiset, count_unmatched

TOL = 1e-4


def _build(cfg, factor=None):
    model_cfg = copy.deepcopy(cfg["model"])
    if factor is not None:
        model_cfg["max_buffer_len_factor"] = factor
    return make_meta_arch(cfg["model_name"], **model_cfg).eval()


@pytest.fixture(scope="module")
def tiny(conformance_dir):
    cfg = load_config(str(conformance_dir / "tiny_thumos.yaml"))
    model = _build(cfg)
    state = load_checkpoint(find_checkpoint(str(conformance_dir / "tiny_thumos_perturbed"), -1))
    load_model_weights(model, state, use_ema=True)
    return cfg, model


def _item(length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"video_id": "v", "feats": torch.randn(32, length, generator=g), "segments": None,
            "labels": None, "fps": 30.0, "duration": (length * 4 + 16) / 30.0,
            "feat_stride": 4, "feat_num_frames": 16}


def test_receptive_radius_of_the_tiny_config_by_hand(tiny):
    # 2 embedding convs (k 3): 2; 2 stem blocks (w 9): 2 * (4 + 1) = 10; 5 strided blocks:
    # sum 4 * s + s / 2 over s = 2..32 = 248 + 31 = 279; heads 3 convs (k 3) at stride 32: 96
    assert receptive_radius(tiny[0]["model"]) == 2 + 10 + 279 + 96
    anet = load_config(str(Path(__file__).resolve().parents[2] / "configs" / "anet_tsp.yaml"))
    assert receptive_radius(anet["model"]) is None  # global attention at the top level
    # margin rounded up to the coarsest stride; the window is the whole point buffer
    assert default_window(tiny[1], tiny[0]["model"]) == (1536, 416)


def test_outputs_do_not_depend_on_inputs_beyond_the_radius(tiny):
    cfg, model = tiny
    radius = receptive_radius(cfg["model"])
    item = _item(1024)
    base = model.forward_features([item])
    far = _item(1024)
    far["feats"][:, 1024 - 64:] += 5.0  # change only the last 64 steps
    out = model.forward_features([far])
    t0 = 1024 - 64 - radius - 1  # points at or before t0 cannot see the change
    for level, pts in enumerate(base["points"]):
        keep = pts[:, 0] <= t0
        torch.testing.assert_close(out["cls_logits"][level][0][keep],
                                   base["cls_logits"][level][0][keep], rtol=0, atol=1e-5)
    # and the change is visible nearby (the check above is not vacuous)
    assert not torch.allclose(out["cls_logits"][0][0][-64:], base["cls_logits"][0][0][-64:])


def test_window_plan_cores_tile_the_video():
    plan = window_plan(1500, 1024, 416)
    assert plan == [(0, 1024, 0, 608), (192, 1216, 608, 800), (384, 1408, 800, 992),
                    (576, 1500, 992, 1500)]
    assert window_plan(1000, 1024, 416) == [(0, 1000, 0, 1000)]
    with pytest.raises(ValueError, match="longer than twice the margin"):
        window_plan(1500, 800, 416)


def test_one_covering_window_is_bitwise_whole_video_inference(tiny):
    cfg, model = tiny
    item = _item(1500)
    whole = model([item])[0]
    got, n = detect_video(model, item, cfg["model"], window=1536)
    assert n == 1
    for key in ("segments", "scores", "labels"):
        assert torch.equal(got[key], whole[key]), key


def test_several_windows_equal_whole_video_within_rounding(tiny):
    cfg, model = tiny
    item = _item(1500)
    assert fits_whole(model, 1500)
    whole = model([item])[0]
    got, n = detect_video(model, item, cfg["model"], window=1024)
    assert n == 4 and len(whole["scores"]) == 200  # max_seg_num
    assert_same_multiset(got, whole, TOL, TOL)
    # without a margin the windows' edges change detections: the margin is what makes it exact
    no_margin, _ = detect_video(model, item, cfg["model"], window=1024, margin=0)
    assert count_unmatched(no_margin, whole, TOL, TOL) > 0


def test_too_long_video_failed_before_and_runs_in_windows_now(tiny):
    cfg, model = tiny
    item = _item(2000)  # > 1,536 buffered points
    assert not fits_whole(model, 2000)
    # before: the model itself stops at the point generator (unchanged, the original's)
    with pytest.raises(AssertionError, match="Reached max buffer length"):
        model([item])
    # after: two windows of 1,536 steps; equal to a model with buffers long enough (same
    # weights: buffers are not in the state_dict)
    got, n = detect_video(model, item, cfg["model"])
    assert n == 2
    big = _build(cfg, factor=12.0)
    big.load_state_dict(model.state_dict())
    assert_same_multiset(got, big([item])[0], TOL, TOL)


def test_bad_window_sizes_are_refused(tiny):
    cfg, model = tiny
    with pytest.raises(ValueError, match="multiple of the coarsest pyramid stride"):
        detect_video(model, _item(600), cfg["model"], window=1000)
    with pytest.raises(ValueError, match="does not fit the model's point buffers"):
        detect_video(model, _item(2000), cfg["model"], window=1792)
