"""Video backbones against their references: state_dict listings and outputs (issue 17 item 3).

References: ../shared/spec/i3d/i3d_reference.pt (the original I3D port) and
../shared/spec/video_backbones/video_backbones_reference.pt (torchvision), with the weights and
inputs of their READMEs (tests/video/_deterministic.py). Each reference runs once per module.
"""
from __future__ import annotations

import pytest
import torch

from libs.video import make_backbone
from tests.video._deterministic import (deterministic_input, deterministic_state_dict,
                                        state_dict_listing)

TOL = 1e-4
STREAM_OF = {"i3d_rgb": "rgb", "i3d_flow": "flow"}
CHANNELS = {"i3d_rgb": 3, "i3d_flow": 2}


def _listing(keys):
    return [(name, list(shape), dtype) for name, shape, dtype in keys]


def _deterministic_model(name: str, keys) -> torch.nn.Module:
    with pytest.warns(UserWarning, match="RANDOM weights"):
        model = make_backbone(name, weights="none")
    model.load_state_dict(deterministic_state_dict(keys), strict=True)
    return model.eval()


@pytest.fixture(scope="module", params=["i3d_rgb", "i3d_flow"])
def i3d_outputs(request, i3d_ref):
    """(reference dict, features 16, features 32, logits 16) of one deterministic I3D stream."""
    name = request.param
    ref = i3d_ref[STREAM_OF[name]]
    model = _deterministic_model(name, ref["keys"])
    with torch.inference_mode():
        x16 = deterministic_input(CHANNELS[name], 16, 224)
        out = (ref, model.forward_features(x16),
               model.forward_features(deterministic_input(CHANNELS[name], 32, 224)),
               model(x16))
    return out


@pytest.fixture(scope="module", params=["r3d_18", "r2plus1d_18"])
def resnet_outputs(request, resnet_ref):
    name = request.param
    ref = resnet_ref[name]
    model = _deterministic_model(name, ref["keys"])
    with torch.inference_mode():
        feats = {t: model.forward_features(deterministic_input(3, t, 112)) for t in (16, 32)}
    return ref, feats, model


@pytest.mark.parametrize("name, count", [("i3d_rgb", 344), ("i3d_flow", 344),
                                         ("r3d_18", 122), ("r2plus1d_18", 224)])
def test_state_dict_equals_reference_listing(name, count, i3d_ref, resnet_ref):
    ref = i3d_ref[STREAM_OF[name]] if name in STREAM_OF else resnet_ref[name]
    with pytest.warns(UserWarning):
        model = make_backbone(name)
    got = state_dict_listing(model)
    assert len(got) == count
    assert got == _listing(ref["keys"])


def test_two_stream_state_dict_is_both_streams_prefixed(i3d_ref):
    with pytest.warns(UserWarning):
        model = make_backbone("i3d")
    expected = [(f"{prefix}.{n}", s, d) for prefix in ("rgb", "flow")
                for n, s, d in _listing(i3d_ref[prefix]["keys"])]
    assert state_dict_listing(model) == expected


def test_i3d_features_and_logits_equal_reference(i3d_outputs):
    ref, f16, f32, logits = i3d_outputs
    assert f16.shape == (1, 1024, 1) and f32.shape == (1, 1024, 3) and logits.shape == (1, 400, 1)
    # the reference features are (1, 1024, T', 1, 1): the same squeeze of the spatial dims
    for got, want in ((f16, ref["feat_16x224"]), (f32, ref["feat_32x224"]),
                      (logits, ref["logits_16x224"])):
        want = want.flatten(2)
        assert want.abs().max() > 0.1  # a real signal, not zeros
        assert (got - want).abs().max().item() <= TOL


def test_resnet_features_equal_reference(resnet_outputs):
    ref, feats, _ = resnet_outputs
    for frames in (16, 32):
        want = ref[f"feat_{frames}x112"]
        assert feats[frames].shape == (1, 512) == want.shape
        assert want.abs().max() > 0.1
        assert (feats[frames] - want).abs().max().item() <= TOL


def test_resnet_clip_features_normalise_with_kinetics_stats(resnet_outputs):
    """clip_features(x in [0, 1]) = forward_features((x - mean) / std), mean/std from the README."""
    _, _, model = resnet_outputs
    mean = torch.tensor([0.43216, 0.394666, 0.37645]).view(1, 3, 1, 1, 1)
    std = torch.tensor([0.22803, 0.22145, 0.216989]).view(1, 3, 1, 1, 1)
    rgb01 = (deterministic_input(3, 8, 112).repeat(2, 1, 1, 1, 1) + 1) / 2
    rgb01[1] = rgb01[1].flip(-1)
    with torch.inference_mode():
        got = model.clip_features(rgb01)
        want = model.forward_features((rgb01 - mean) / std)
        one = model.clip_features(rgb01[1:])
    assert got.shape == (2, 512)
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(got[1:], one, atol=1e-5)  # batch of two = each alone
    assert not torch.allclose(got[0], got[1], atol=1e-3)


def test_i3d_rgb_clip_features_scale_to_minus_one_one(i3d_ref):
    model = _deterministic_model("i3d_rgb", i3d_ref["rgb"]["keys"])
    rgb01 = (deterministic_input(3, 16, 224) + 1) / 2
    with torch.inference_mode():
        got = model.clip_features(rgb01)
    want = i3d_ref["rgb"]["feat_16x224"].flatten(1)   # x = 2 * rgb01 - 1 is the reference input
    assert got.shape == (1, 1024)
    assert (got - want).abs().max().item() <= TOL


@pytest.mark.parametrize("name, dim, crop, resize, mean", [
    ("i3d_rgb", 1024, 224, 256, (0.5, 0.5, 0.5)),
    ("i3d_flow", 1024, 224, 256, (0.0, 0.0, 0.0)),
    ("i3d", 2048, 224, 256, (0.5, 0.5, 0.5)),
    ("r3d_18", 512, 112, (128, 171), (0.43216, 0.394666, 0.37645)),
    ("r2plus1d_18", 512, 112, (128, 171), (0.43216, 0.394666, 0.37645)),
])
def test_registered_attributes(name, dim, crop, resize, mean):
    with pytest.warns(UserWarning):
        model = make_backbone(name)
    assert (model.name, model.feature_dim, model.crop_size, model.resize_to) == (name, dim, crop, resize)
    assert model.default_clip_len == 16 and tuple(model.pixel_mean) == mean
    assert not model.training
    info = model.describe()
    assert info["backbone"] == name and info["feature_dim"] == dim
    assert info["weights"] == {"kind": "random", "seed": 0}
