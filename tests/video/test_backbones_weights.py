"""Loading video-backbone weights and the errors of bad input (issue 17 items 3 and 5).

Strict round trips, the usual checkpoint wrappings, weights of another architecture, unknown
names, frames too small for the pooling, random-weight warnings, the torchvision: prefix.
"""
from __future__ import annotations

import fractions
import hashlib
import logging
import pickle
import re

import pytest
import torch

from libs.video import WeightsError, list_backbones, make_backbone
from libs.video.i3d import same_padding
from tests.video._deterministic import deterministic_state_dict


@pytest.fixture(scope="module")
def r3d_state(resnet_ref):
    return deterministic_state_dict(resnet_ref["r3d_18"]["keys"])


@pytest.fixture(scope="module")
def r3d_file(tmp_path_factory, r3d_state):
    """A plain state_dict file of R3D-18 with the deterministic weights."""
    path = tmp_path_factory.mktemp("weights") / "r3d_18_det.pth"
    torch.save(r3d_state, path)
    return path


def _quiet(name, weights="none"):
    with pytest.warns(UserWarning, match="RANDOM"):
        return make_backbone(name, weights=weights)


def _assert_same_state(model, state):
    own = model.state_dict()
    assert list(own) == list(state)
    assert all(torch.equal(own[k], state[k]) for k in state)


def test_strict_round_trip_of_a_saved_state_dict(r3d_file, r3d_state):
    model = make_backbone("r3d_18", weights=r3d_file)
    _assert_same_state(model, r3d_state)
    digest = hashlib.sha256(r3d_file.read_bytes()).hexdigest()
    assert model.weights_info == {"kind": "file",
                                  "files": [{"name": "r3d_18_det.pth", "sha256": digest}]}
    assert model.describe()["weights"]["files"][0]["sha256"] == digest
    again = r3d_file.parent / "again.pth"
    torch.save(model.state_dict(), again)
    _assert_same_state(make_backbone("r3d_18", weights=str(again)), model.state_dict())


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix", "nested_prefixed"])
def test_wrapped_and_prefixed_checkpoints_load(wrap, tmp_path, r3d_state):
    state = r3d_state
    prefixed = {f"module.{k}": v for k, v in state.items()}
    obj = {"state_dict": state, "epoch": 3}, {"model": state, "optimizer": {}}, prefixed, \
        {"state_dict": prefixed, "epoch": 7}
    obj = dict(zip(["state_dict", "model", "module_prefix", "nested_prefixed"], obj))[wrap]
    torch.save(obj, tmp_path / "w.pt")
    _assert_same_state(make_backbone("r3d_18", weights=tmp_path / "w.pt"), state)


def test_weights_of_another_architecture_name_the_keys(r3d_file, resnet_ref):
    r3d = [k for k, _, _ in resnet_ref["r3d_18"]["keys"]]
    r21 = [k for k, _, _ in resnet_ref["r2plus1d_18"]["keys"]]
    missing, unexpected = [k for k in r21 if k not in r3d], [k for k in r3d if k not in r21]
    with pytest.raises(WeightsError) as err:
        make_backbone("r2plus1d_18", weights=r3d_file)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{r3d_file}: the weights do not fit backbone 'r2plus1d_18' (strict load; "
                          f"122 keys in the file, 224 in the model): ")
    assert f"{len(missing)} missing keys: {', '.join(missing[:5])}, ... (+{len(missing) - 5} more)" in msg
    assert f"{len(unexpected)} unexpected keys: {', '.join(unexpected[:5])}, ..." in msg
    # stem.0 is [64, 3, 3, 7, 7] in R3D, [45, 3, 1, 7, 7] in R(2+1)D
    assert "stem.0.weight (file [64, 3, 3, 7, 7], model [45, 3, 1, 7, 7])" in msg


def test_rgb_weights_into_the_flow_stream_name_the_shape(tmp_path, i3d_ref):
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(deterministic_state_dict(i3d_ref["rgb"]["keys"]), path)
    with pytest.raises(WeightsError, match=re.escape(
            "backbone 'i3d_flow' (strict load; 344 keys in the file, 344 in the model): "
            "1 shape mismatches: Conv3d_1a_7x7.conv3d.weight (file [64, 3, 7, 7, 7], "
            "model [64, 2, 7, 7, 7])")):
        make_backbone("i3d_flow", weights=path)


def test_two_stream_loads_a_pair_or_one_combined_file(tmp_path, i3d_ref):
    rgb = deterministic_state_dict(i3d_ref["rgb"]["keys"])
    flow = deterministic_state_dict(i3d_ref["flow"]["keys"])
    torch.save(rgb, tmp_path / "rgb.pt")
    torch.save(flow, tmp_path / "flow.pt")
    combined = {**{f"rgb.{k}": v for k, v in rgb.items()}, **{f"flow.{k}": v for k, v in flow.items()}}
    torch.save(combined, tmp_path / "both.pt")
    pair = make_backbone("i3d", weights=f"{tmp_path / 'rgb.pt'},{tmp_path / 'flow.pt'}")
    _assert_same_state(pair, combined)
    assert [f["name"] for f in pair.weights_info["files"]] == ["rgb.pt", "flow.pt"]
    _assert_same_state(make_backbone("i3d", weights=tmp_path / "both.pt"), combined)
    with pytest.raises(WeightsError, match=r"flow\.pt: the weights do not fit backbone 'i3d_rgb' .*"
                                           r"\(backbone 'i3d' takes 'rgb\.pt,flow\.pt': the RGB "
                                           r"stream's file first\)$"):
        make_backbone("i3d", weights=f"{tmp_path / 'flow.pt'},{tmp_path / 'rgb.pt'}")


def test_files_that_are_not_state_dicts(tmp_path):
    with pytest.raises(WeightsError, match=r"nope\.pt: weights file not found"):
        make_backbone("r3d_18", weights=tmp_path / "nope.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match=r"list\.pt: expected a state_dict \(name -> tensor\), found list"):
        make_backbone("r3d_18", weights=tmp_path / "list.pt")
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "nosd.pt")
    with pytest.raises(WeightsError, match=r"no 'state_dict' / 'model' entry"):
        make_backbone("r3d_18", weights=tmp_path / "nosd.pt")
    # a pickled global the weights_only loader refuses
    (tmp_path / "code.pt").write_bytes(pickle.dumps({"w": fractions.Fraction(1, 3)}, protocol=2))
    with pytest.raises(WeightsError, match=r"code\.pt: not a readable state_dict file "
                                           r"\(torch\.load with weights_only=True"):
        make_backbone("r3d_18", weights=tmp_path / "code.pt")


def test_unknown_backbone_lists_the_known_ones():
    assert list_backbones() == ["i3d", "i3d_flow", "i3d_rgb", "r2plus1d_18", "r3d_18"]
    with pytest.raises(ValueError, match=re.escape(
            "unknown video backbone 'i3d_rbg'; known backbones: i3d, i3d_flow, i3d_rgb, "
            "r2plus1d_18, r3d_18 (or torchvision:NAME")):
        make_backbone("i3d_rbg")


def test_random_weights_warn_and_log(caplog):
    with caplog.at_level(logging.WARNING, logger="libs.video.weights"):
        with pytest.warns(UserWarning, match="video backbone 'r3d_18' has RANDOM weights .*"
                                             "features are meaningless"):
            model = make_backbone("r3d_18", weights=None)
    assert any("RANDOM weights" in r.getMessage() for r in caplog.records)
    assert model.weights_info == {"kind": "random", "seed": 0}


def test_same_padding_hand_worked():
    # (T, H, W) = (16, 224, 7): k7 s2 -> 5 = 2 + 3 (even size); k3 s2 on 7 -> 3 - 1 = 2 = 1 + 1
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == [2, 3, 2, 3, 2, 3]
    assert same_padding((1, 7, 7), (3, 3, 3), (2, 2, 2)) == [1, 1, 1, 1, 1, 1]
    assert same_padding((8, 9, 10), (1, 3, 3), (1, 2, 2)) == [0, 1, 1, 1, 0, 0]
    assert same_padding((3, 3, 3), (2, 2, 2), (2, 2, 2)) == [0, 1, 0, 1, 0, 1]


def test_i3d_smallest_frame_and_clip():
    """ceil(s / 32) >= 7 needs s >= 193; ceil(T / 8) >= 2 needs T >= 9."""
    model = _quiet("i3d_rgb")
    with torch.inference_mode():
        assert model.forward_features(torch.zeros(1, 3, 9, 193, 193)).shape == (1, 1024, 1)
    with pytest.raises(ValueError, match=re.escape(
            "backbone 'i3d_rgb' needs frames of at least 193x193 pixels for its pooling, "
            "got 192x200 (H x W)")):
        model.clip_features(torch.zeros(1, 3, 16, 192, 200))
    with pytest.raises(ValueError, match=r"video\.mp4: backbone 'i3d_rgb' needs frames of at least"):
        model.check_frame_size(120, 160, source="video.mp4")
    with pytest.raises(ValueError, match="needs clips of at least 9 frames, got 8"):
        model.forward_features(torch.zeros(1, 3, 8, 224, 224))
    with pytest.raises(ValueError, match=re.escape(
            "backbone 'i3d_rgb' expects clips of shape (N, 3, T, H, W), got (1, 2, 16, 224, 224)")):
        model.forward_features(torch.zeros(1, 2, 16, 224, 224))
    with pytest.raises(ValueError, match="expects floating-point clips, got torch.uint8"):
        model.clip_features(torch.zeros(1, 3, 16, 224, 224, dtype=torch.uint8))


def _torchvision_imports() -> bool:
    try:
        import torchvision.models.video  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(_torchvision_imports(), reason="torchvision imports here")
def test_torchvision_prefix_without_torchvision_says_so():
    with pytest.raises(ImportError, match=r"backbones 'torchvision:NAME' need torchvision, which "
                                          r"does not import here \("):
        make_backbone("torchvision:r3d_18")


@pytest.mark.skipif(not _torchvision_imports(), reason="torchvision does not import here")
def test_torchvision_prefix_builds_its_model_without_the_head():
    with pytest.warns(UserWarning, match="RANDOM"):
        model = make_backbone("torchvision:r3d_18")
    assert (model.feature_dim, model.crop_size, model.resize_to) == (512, 112, (128, 171))
    with torch.inference_mode():
        assert model.clip_features(torch.rand(2, 3, 8, 112, 112)).shape == (2, 512)
