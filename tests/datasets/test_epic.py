"""EPIC-Kitchens dataset: .npz features, empty classes, missing files, real annotations.

Oracles: hand-built files (grid values worked by hand with docs/reference.md Appendix C: fps 30,
stride 16, 32 frames -> offset 1), the real EPIC-KITCHENS-100 validation annotations.
"""
from __future__ import annotations

import numpy as np
import pytest

from libs.datasets import make_dataset

from ._helpers import ds_kwargs, video, write_json

EPIC = dict(file_ext=".npz", default_fps=30, feat_stride=16, num_frames=32, trunc_thresh=0.3)


def test_npz_features_and_empty_label_ids(tmp_path):
    (tmp_path / "feats").mkdir()
    write_json(tmp_path / "ann.json", {"p1": video(subset="training",
                                                   acts=((1, 2, "a", 0), (3, 4, "c", 3)))})
    np.savez(tmp_path / "feats" / "p1.npz", feats=np.zeros((40, 8), np.float32))
    ds = make_dataset("epic", False, ["training"], **ds_kwargs(tmp_path, num_classes=5, **EPIC))
    attrs = ds.get_attributes()
    assert attrs["empty_label_ids"] == [1, 2, 4] and attrs["dataset_name"] == "epic-kitchens-100"
    assert attrs["tiou_thresholds"][2] == 0.30000000000000004  # np.linspace(0.1, 0.5, 5)
    item = ds[0]
    # 1 s * 30 / 16 - 1 = 0.875; 2 s -> 2.75
    assert item["segments"][0].tolist() == [0.875, 2.75] and item["feats"].shape == (8, 40)
    # more classes than num_classes -> error
    with pytest.raises(ValueError, match="2 classes in the annotations, more than "
                                         "dataset.num_classes = 1"):
        make_dataset("epic", False, ["training"], **ds_kwargs(tmp_path, num_classes=1, **EPIC))


def test_all_classes_used_means_no_empty_ids(tmp_path):
    (tmp_path / "feats").mkdir()
    write_json(tmp_path / "ann.json", {"p1": video(subset="training",
                                                   acts=((1, 2, "a", 1), (3, 4, "c", 0)))})
    np.savez(tmp_path / "feats" / "p1.npz", feats=np.zeros((40, 8), np.float32))
    ds = make_dataset("epic", False, ["training"], **ds_kwargs(tmp_path, num_classes=2, **EPIC))
    assert ds.get_attributes()["empty_label_ids"] == [] and ds.label_dict == {"a": 1, "c": 0}


def test_missing_npz_files_are_listed_at_construction(tmp_path):
    (tmp_path / "feats").mkdir()
    write_json(tmp_path / "ann.json", {f"p{i}": video(subset="validation") for i in range(8)})
    np.savez(tmp_path / "feats" / "p0.npz", feats=np.zeros((40, 8), np.float32))
    with pytest.raises(FileNotFoundError, match=r"7 video\(s\) of split \['validation'\] have "
                                                r"no feature file \(p1, p2, p3, p4, p5 \.\.\.; "
                                                r"expected e.g. .*p1.npz\)"):
        make_dataset("epic", False, ["validation"], **ds_kwargs(tmp_path, **EPIC))


def test_npz_without_feats_array(tmp_path):
    (tmp_path / "feats").mkdir()
    write_json(tmp_path / "ann.json", {"p1": video(subset="validation")})
    np.savez(tmp_path / "feats" / "p1.npz", features=np.zeros((40, 8), np.float32))
    ds = make_dataset("epic", False, ["validation"], **ds_kwargs(tmp_path, **EPIC))
    with pytest.raises(ValueError, match=r"p1.npz: expected an array named 'feats' in the "
                                         r"\.npz file, found \['features'\]"):
        ds[0]


@pytest.mark.parametrize("task,num_classes", [("verb", 97), ("noun", 300)])
def test_real_epic_annotations_convert_and_load(real_data_dir, tmp_path, task, num_classes):
    from convert_annotations import convert_epic, write_json as write_converted
    from make_synthetic_dataset import make_synthetic_dataset
    data = convert_epic(str(real_data_dir / "epic100"), task=task)
    db = data["database"]
    assert len(db) == 138 and sum(len(v["annotations"]) for v in db.values()) == 9668
    first = db["P01_11"]["annotations"][0]  # row 1: take plate, 00:00:00.00 - 00:00:01.89
    assert first["segment"] == [0.0, 1.89]
    assert first["label"] == ("take" if task == "verb" else "plate")
    assert first["label_id"] == (0 if task == "verb" else 2)
    path = tmp_path / f"epic_{task}.json"
    write_converted(data, str(path))
    # features for the 3 shortest videos, on the configs' 30 fps grid
    short = sorted(db, key=lambda k: db[k]["duration"])[:3]
    write_converted({"database": {k: db[k] for k in short}}, str(path))
    info = make_synthetic_dataset(str(tmp_path / "syn"), dim=4, from_json=str(path), seed=0,
                                  fps=30, feat_stride=16, fmt="npz")
    ds = make_dataset("epic", True, ["validation"], feat_folder=info["feat_folder"],
                      json_file=info["json_file"], downsample_rate=1, max_seq_len=2304,
                      crop_ratio=[0.9, 1.0], input_dim=4, num_classes=num_classes,
                      file_prefix=None, force_upsampling=False, **EPIC)
    assert len(ds) == 3
    used = {a["label_id"] for k in short for a in db[k]["annotations"]}
    assert ds.get_attributes()["empty_label_ids"] == sorted(set(range(num_classes)) - used)
    item = ds[0]
    assert item["feats"].shape[0] == 4 and item["feats"].shape[1] <= round(
        db[short[0]]["duration"] * 30 / 16)
    assert len(item["segments"]) == len(item["labels"]) > 0
