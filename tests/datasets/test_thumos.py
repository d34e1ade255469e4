"""THUMOS14 dataset: the original's items for the conformance files, grid conversion, skipping.

Oracles: tiny_inputs.pt (items the original THUMOS14Dataset returned for tiny_data/), the worked
example of docs/reference.md Appendix C, the 20 THUMOS14 class names, and the real annotation file.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from libs.core import load_config
from libs.datasets import make_dataset

from ._helpers import ds_kwargs, video, write_json

# THUMOS14's 20 classes, ids in alphabetical order (the annotation file's label_ids)
THUMOS14_CLASSES = [
    "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving",
    "CricketBowling", "CricketShot", "Diving", "FrisbeeCatch", "GolfSwing", "HammerThrow",
    "HighJump", "JavelinThrow", "LongJump", "PoleVault", "Shotput", "SoccerPenalty",
    "TennisSwing", "ThrowDiscus", "VolleyballSpiking"]


@pytest.fixture
def tiny_cfg(conformance_dir, monkeypatch):
    monkeypatch.chdir(conformance_dir)  # the tiny config's paths are relative to it
    return load_config("tiny_thumos.yaml")


def _assert_same_item(got, ref):
    assert set(got) == set(ref)
    for key, value in ref.items():
        if isinstance(value, torch.Tensor):
            assert got[key].dtype == value.dtype, key
            assert torch.equal(got[key], value), key
        else:
            assert got[key] == value and type(got[key]) is type(value), key


def test_items_equal_the_originals(tiny_cfg, conformance_dir):
    inputs = torch.load(conformance_dir / "tiny_inputs.pt")
    refs = inputs["videos"] + inputs["extra_eval_videos"]
    # video 52 has a segment ending after its duration: one warning, values unchanged
    with pytest.warns(UserWarning, match=r"1 segment\(s\) end after the video's duration; "
                      r"kept unchanged.*'video_validation_0000052' segment 4 \[31, 35.5\]"):
        ds = make_dataset("thumos", False, ["validation", "test"], **tiny_cfg["dataset"])
    assert len(ds) == len(refs) == 3
    items = {ds[i]["video_id"]: ds[i] for i in range(len(ds))}
    for ref in refs:
        _assert_same_item(items[ref["video_id"]], ref)


def test_config_splits_select_the_reference_videos(tiny_cfg, conformance_dir):
    inputs = torch.load(conformance_dir / "tiny_inputs.pt")
    with pytest.warns(UserWarning, match="video_validation_0000052"):
        train = make_dataset("thumos", True, tiny_cfg["train_split"], **tiny_cfg["dataset"])
    assert [v["id"] for v in train.data_list] == inputs["train_video_ids"]
    test = make_dataset("thumos", False, tiny_cfg["val_split"], **tiny_cfg["dataset"])
    assert [test[i]["video_id"] for i in range(len(test))] == ["video_test_0000007"]
    attrs = test.get_attributes()
    assert attrs["dataset_name"] == "thumos-14" and attrs["empty_label_ids"] == []
    # exact float values matter at tIoU ties
    assert attrs["tiou_thresholds"].tolist() == np.linspace(0.3, 0.7, 5).tolist()
    assert attrs["tiou_thresholds"][1] == 0.39999999999999997


def test_seconds_to_grid_matches_appendix_c(simple):
    # fps 30, stride 4, 16 frames: offset 2; [10 s, 12 s] -> [73, 88]; [1 s, 3 s] -> [5.5, 20.5]
    ds = make_dataset("thumos", False, ["test"], **ds_kwargs(simple))
    item = ds[0]
    assert item["segments"].tolist() == [[5.5, 20.5], [73.0, 88.0]]
    assert item["segments"].dtype == torch.float32 and item["labels"].dtype == torch.int64
    assert item["feats"].shape == (8, 150) and item["feats"].is_contiguous()
    assert item["feat_stride"] == 4 and item["feat_num_frames"] == 16
    assert item["labels"].tolist() == [0, 1] and item["fps"] == 30.0


def test_downsample_rate_halves_features_and_doubles_stride(simple):
    ds = make_dataset("thumos", False, ["test"], **ds_kwargs(simple, downsample_rate=2))
    item = ds[0]
    # stride 8, offset 0.5 * 16 / 8 = 1: 10 s * 30 / 8 - 1 = 36.5
    assert item["feats"].shape[1] == 75 and item["feat_stride"] == 8
    assert item["segments"][1].tolist() == [36.5, 44.0]


def test_default_fps_overrides_the_json(simple):
    ds = make_dataset("thumos", False, ["test"], **ds_kwargs(simple, default_fps=20))
    assert ds[0]["fps"] == 20 and ds[0]["segments"][1].tolist() == [48.0, 58.0]


def test_video_without_annotations_has_no_segments(simple):
    db = {"v1": video(acts=((1.0, 3.0, "a", 0), (10.0, 12.0, "b", 1))),
          "v2": dict(video(subset="Validation"), annotations=[])}
    write_json(simple / "ann.json", db)
    ds = make_dataset("thumos", True, ["validation"], **ds_kwargs(simple))
    item = ds[0]
    # no truncation without segments (as the original): all 150 > max_seq_len 64 steps
    assert item["segments"] is None and item["labels"] is None
    assert item["feats"].shape[1] == 150


def test_videos_without_features_are_skipped_with_one_warning(simple):
    (simple / "feats" / "v2.npy").unlink()
    with pytest.warns(UserWarning, match=r"1 video\(s\) of split .* skipped: no feature file "
                                         r"\(v2; expected e.g. .*v2.npy\)"):
        ds = make_dataset("thumos", False, ["test", "validation"], **ds_kwargs(simple))
    assert [v["id"] for v in ds.data_list] == ["v1"]


def test_real_thumos14_annotations_with_synthetic_features(real_data_dir, tmp_path):
    from make_synthetic_dataset import make_synthetic_dataset
    src = real_data_dir / "thumos14" / "thumos14.json"
    info = make_synthetic_dataset(str(tmp_path), dim=4, from_json=str(src), seed=0)
    kw = dict(feat_folder=info["feat_folder"], json_file=info["json_file"], feat_stride=4,
              num_frames=16, default_fps=None, downsample_rate=1, max_seq_len=2304,
              trunc_thresh=0.5, crop_ratio=[0.9, 1.0], input_dim=4, num_classes=20,
              file_prefix=None, file_ext=".npy", force_upsampling=False)
    # known label noise: a few videos have segments starting / ending past their duration
    # (warnings, not errors: the original keeps them and its numbers depend on them)
    with pytest.warns(UserWarning, match="start at or after the video's end") as rec:
        train = make_dataset("thumos", True, ["validation"], **kw)
    assert all("kept unchanged" in str(w.message) for w in rec)
    with pytest.warns(UserWarning) as rec:
        test = make_dataset("thumos", False, ["test"], **kw)
    assert any("'video_test_0000270' segment" in str(w.message) for w in rec)
    assert len(train) == 200 and len(test) == 212
    assert train.label_dict == {name: i for i, name in enumerate(THUMOS14_CLASSES)}
    database = json.loads(src.read_text())["database"]
    for ds in (train, test):
        for idx in (0, len(ds) - 1):
            video = database[ds.data_list[idx]["id"]]
            item = ds[idx]
            assert item["feats"].shape[0] == 4
            if not ds.is_training:  # real features: T = duration * fps / feat_stride
                assert item["feats"].shape[1] == round(video["duration"] * video["fps"] / 4)
            assert len(item["segments"]) == len(item["labels"]) > 0
    n_test_segments = sum(len(v["segments"]) for v in test.data_list)
    assert n_test_segments == 3358
