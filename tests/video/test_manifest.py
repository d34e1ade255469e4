"""The feature manifest: config keys, centre times pinned to the loader, round trip, errors,
and the checks of a config against it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from libs.datasets import make_dataset
from libs.video.manifest import (MANIFEST_NAME, Manifest, check_against_config,
                                 check_folder_manifest, load_manifest, settings_hash)

from ..datasets._helpers import ds_kwargs, video, write_json


def _settings(fps=30.0, clip_len=16, stride=4, dim=8):
    return {"backbone": "toy", "weights": {"kind": "random"}, "fps": fps, "clip_len": clip_len,
            "stride": stride, "frames": {"resize_to": 48, "crop_size": 48},
            "pixel_normalisation": {"mean": [0, 0, 0], "std": [1, 1, 1]},
            "feature_dim": dim, "short_video_policy": "pad_last_frame"}


def _entry(manifest, num_features, duration=20.0, source="v1.mp4"):
    return {"source": source, "source_bytes": 10, "decoded_frames": 600, "sampled_frames": 600,
            "duration_s": duration, "num_features": num_features, "padded": False,
            "settings_hash": manifest.hash}


def test_config_keys_and_centre_times():
    m = Manifest(_settings(fps=30.0, clip_len=16, stride=4, dim=2048))
    assert m.config_keys() == {"feat_stride": 4, "num_frames": 16, "default_fps": 30,
                               "input_dim": 2048}
    assert m.feature_center_time(0) == pytest.approx(8 / 30)
    assert m.feature_center_time(10) == pytest.approx(48 / 30)  # (10 * 4 + 8) / 30
    ntsc = Manifest(_settings(fps=29.97, clip_len=8, stride=8))
    assert ntsc.config_keys()["default_fps"] == 29.97
    assert ntsc.feature_center_time(3) == pytest.approx(28 / 29.97)


@pytest.mark.parametrize("fps, clip_len, stride", [(30.0, 16, 4), (25.0, 8, 8), (15.0, 32, 16)])
def test_centre_time_is_the_loaders_grid(tmp_path, fps, clip_len, stride):
    # an action starting at the centre of feature 7 and ending at that of feature 12 must be
    # at grid positions 7 and 12 in the THUMOS loader configured with the manifest's keys
    m = Manifest(_settings(fps=fps, clip_len=clip_len, stride=stride))
    start, end = m.feature_center_time(7), m.feature_center_time(12)
    (tmp_path / "feats").mkdir()
    write_json(tmp_path / "ann.json", {"v1": video(fps=fps, acts=((start, end, "a", 0),))})
    np.save(tmp_path / "feats" / "v1.npy", np.zeros((40, 8), np.float32))
    kw = ds_kwargs(tmp_path, num_classes=1)
    kw.update(m.config_keys())
    item = make_dataset("thumos", False, ["test"], **kw)[0]
    assert item["segments"].tolist() == [pytest.approx([7.0, 12.0], abs=1e-5)]


def test_round_trip(tmp_path):
    m = Manifest(_settings())
    m.videos["v1"] = _entry(m, 147)
    m.failed["bad"] = {"source": "bad.mp4", "reason": "bad.mp4: not a video file"}
    path = str(tmp_path / MANIFEST_NAME)
    m.save(path)
    back = load_manifest(path)
    assert back.settings == m.settings and back.videos == m.videos and back.failed == m.failed
    data = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert data["config_keys"] == m.config_keys()
    assert data["settings_hash"] == m.hash == settings_hash(_settings())
    assert data["feature_center_time_s"] == "(i * 4 + 16 / 2) / 30"
    assert not list(tmp_path.glob("*.tmp*"))


def test_hash_changes_with_any_setting():
    assert settings_hash(_settings()) != settings_hash(_settings(stride=8))
    assert settings_hash(_settings()) == settings_hash(dict(reversed(_settings().items())))


@pytest.mark.parametrize("edit, message", [
    (lambda d: "{not json", r"m\.json: malformed feature manifest: not JSON"),
    (lambda d: {**d, "schema": "other"}, r"m\.json: not a feature manifest \(expected "),
    (lambda d: {**d, "schema_version": 99}, r"m\.json: feature manifest schema_version 99, "
                                            r"this code reads 1"),
    (lambda d: {**d, "settings": {k: v for k, v in d["settings"].items() if k != "stride"}},
     r"m\.json: malformed feature manifest: settings has no 'stride'"),
    (lambda d: {**d, "settings": {**d["settings"], "clip_len": "16"}},
     r"m\.json: malformed feature manifest: settings\.clip_len is '16', expected int"),
    (lambda d: {**d, "videos": {"v1": {"source": "v1.mp4"}}},
     r"m\.json: malformed feature manifest: videos\.v1 has no 'decoded_frames'"),
])
def test_malformed_manifests(tmp_path, edit, message):
    m = Manifest(_settings())
    m.videos["v1"] = _entry(m, 147)
    data = edit(m.to_json())
    (tmp_path / "m.json").write_text(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(ValueError, match=message):
        load_manifest(str(tmp_path / "m.json"))


def _cfg(**ds):
    base = {"feat_stride": 4, "num_frames": 16, "default_fps": 30, "input_dim": 8,
            "file_prefix": None}
    base.update(ds)
    return {"dataset": base}


def test_matching_config_has_no_problems():
    m = Manifest(_settings())
    m.videos["v1"] = _entry(m, 147)  # 20 s at 30 fps: (600 - 16) // 4 + 1 = 147
    assert check_against_config(m, _cfg(), {"v1": {"duration": 20.0, "fps": 30}},
                                {"v1": 147}) == []


def test_each_disagreement_is_reported():
    m = Manifest(_settings())
    m.videos["v1"] = _entry(m, 147)
    problems = check_against_config(m, _cfg(feat_stride=8, num_frames=32, default_fps=25,
                                            input_dim=2048))
    assert problems == [
        "dataset.feat_stride is 8 but the features were made with feat_stride 4 (manifest)",
        "dataset.num_frames is 32 but the features were made with num_frames 16 (manifest)",
        "dataset.input_dim is 2048 but the features were made with input_dim 8 (manifest)",
        "dataset.default_fps is 25 but the frames were sampled at 30.0 fps (manifest)"]


def test_per_video_problems():
    m = Manifest(_settings())
    m.videos["v1"] = _entry(m, 147)
    m.videos["v2"] = _entry(m, 147)
    db = {"v1": {"duration": 40.0, "fps": 30}, "v2": {"duration": 20.0, "fps": 25}}
    problems = check_against_config(m, _cfg(default_fps=None), db, {"v1": 140})
    assert problems == [
        "video 'v1': the feature file holds 140 features, the manifest says 147",
        "video 'v1': 147 features, but its annotated duration 40.0 s gives 297 on this grid",
        "video 'v2': default_fps is not set, so the loader uses the annotated fps 25, but its "
        "frames were sampled at 30.0"]


def test_entries_of_other_settings_are_reported():
    old = Manifest(_settings(stride=8))
    m = Manifest(_settings(), {"v1": _entry(old, 10)})
    assert m.stale() == ["v1"]
    assert check_against_config(m, _cfg()) == [
        "1 manifest entries were made with other settings than the manifest's (re-extract "
        "them): v1"]


def test_folder_check(tmp_path):
    cfg = _cfg(feat_folder=str(tmp_path), feat_stride=2)
    assert check_folder_manifest(cfg) == []  # no manifest: nothing to check
    Manifest(_settings()).save(str(tmp_path / MANIFEST_NAME))
    path = str(tmp_path / MANIFEST_NAME)
    assert check_folder_manifest(cfg) == [
        f"{path}: dataset.feat_stride is 2 but the features were made with feat_stride 4 "
        "(manifest)"]
    (tmp_path / MANIFEST_NAME).write_text("[]")
    assert check_folder_manifest(cfg)[0].startswith(f"{path}: not a feature manifest")
