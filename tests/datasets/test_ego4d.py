"""Ego4D dataset: several feature folders concatenated, .npy and .pt, skipped clips, offset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from libs.datasets import make_dataset

from ._helpers import ds_kwargs, video, write_json


@pytest.fixture
def two_folders(tmp_path):
    for folder in ("f1", "f2"):
        (tmp_path / folder).mkdir()
    db = {"c1": dict(video(subset="training", acts=((1.0, 2.0, "a", 0),)), offset=1.5),
          "c2": video(subset="training"),
          "c3": {"subset": "training", "duration": 5.0, "fps": 30.0}}  # no annotations key
    write_json(tmp_path / "ann.json", db)
    np.save(tmp_path / "f1" / "c1.npy", np.ones((12, 3), np.float32))
    np.save(tmp_path / "f2" / "c1.npy", np.full((12, 5), 2.0, np.float32))
    np.save(tmp_path / "f1" / "c2.npy", np.ones((12, 3), np.float32))  # no f2/c2 -> skipped
    return tmp_path, [str(tmp_path / "f1"), str(tmp_path / "f2")]


def test_folders_are_concatenated_and_incomplete_clips_skipped(two_folders):
    path, folders = two_folders
    with pytest.warns(UserWarning, match=r"2 video\(s\) .* skipped: no feature file \(c2, c3"):
        ds = make_dataset("ego4d", False, ["training"], **ds_kwargs(
            path, feat_folder=folders, input_dim=8, num_classes=1, default_fps=30,
            feat_stride=16, num_frames=32))
    assert len(ds) == 1
    item = ds[0]
    assert item["feats"].shape == (8, 12) and item["offset"] == 1.5
    assert item["feats"][:3].eq(1).all() and item["feats"][3:].eq(2).all()
    # offset 1 (Appendix C): 1 s * 30 / 16 - 1 = 0.875
    assert item["segments"].tolist() == [[0.875, 2.75]]
    attrs = ds.get_attributes()
    assert attrs["dataset_name"] == "ego4d" and attrs["empty_label_ids"] == []


def test_pt_features_equal_npy(two_folders):
    path, folders = two_folders
    torch.save(torch.ones(12, 3), path / "f1" / "c1.pt")
    torch.save(torch.full((12, 5), 2.0), path / "f2" / "c1.pt")
    kw = ds_kwargs(path, feat_folder=folders, input_dim=[3, 5], num_classes=1)
    with pytest.warns(UserWarning, match="skipped"):
        npy = make_dataset("ego4d", False, ["training"], **kw)
        pt = make_dataset("ego4d", False, ["training"], **dict(kw, file_ext=".pt"))
    assert torch.equal(pt[0]["feats"], npy[0]["feats"])


def test_single_folder_string(two_folders):
    path, folders = two_folders
    with pytest.warns(UserWarning, match="skipped"):
        ds = make_dataset("ego4d", False, ["training"], **ds_kwargs(
            path, feat_folder=folders[0], input_dim=3, num_classes=1))
    assert [v["id"] for v in ds.data_list] == ["c1", "c2"] and ds[1]["offset"] is None


def test_folders_with_different_lengths(two_folders):
    path, folders = two_folders
    np.save(path / "f2" / "c1.npy", np.full((11, 5), 2.0, np.float32))
    with pytest.warns(UserWarning, match="skipped"):
        ds = make_dataset("ego4d", False, ["training"], **ds_kwargs(
            path, feat_folder=folders, input_dim=8, num_classes=1))
    with pytest.raises(ValueError, match=r"video 'c1' \(.*f1/c1.npy \+ .*f2/c1.npy\) have "
                                         r"shapes \[\(12, 3\), \(11, 5\)\]"):
        ds[0]


def test_missing_folder(two_folders):
    path, folders = two_folders
    with pytest.raises(FileNotFoundError, match="feature folder not found: .*nope"):
        make_dataset("ego4d", False, ["training"], **ds_kwargs(
            path, feat_folder=[folders[0], str(path / "nope")], input_dim=8, num_classes=1))
