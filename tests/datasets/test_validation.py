"""The shared annotation rules (libs/datasets/validation.py): the loaders refuse what breaks
training or evaluation (naming the video and segment), warn about what the original kept, and
tools/check_dataset.py reports the same findings; hostile feature files are never unpickled.
"""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from libs.datasets import make_dataset
from libs.datasets.validation import DatasetError, validate_database

from ._helpers import ds_kwargs, video, write_json

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import check_dataset as cd  # noqa: E402


def _build(tmp_path, database, split=("test",), name="thumos", **over):
    write_json(tmp_path / "ann.json", database)
    return make_dataset(name, False, list(split), **ds_kwargs(tmp_path, **over))


def test_label_with_two_ids_is_refused(simple):
    db = {"v1": video(acts=((1.0, 3.0, "a", 0), (10.0, 12.0, "b", 1))),
          "v2": video(subset="Validation", acts=((2.0, 4.0, "a", 1),))}
    with pytest.raises(DatasetError) as err:
        _build(simple, db)
    msg = str(err.value)
    assert msg.startswith(str(simple / "ann.json") + ": ")
    assert ("1 label(s) with more than one label_id (training maps a label by its name, "
            "evaluation reads the label_id): 'a' -> [0, 1] (label_id 1 first in 'v2' segment "
            "0)") in msg
    assert "1 label_id(s) shared by several labels: 1 -> ['a', 'b'] ('a' first in 'v2' " \
           "segment 0)" in msg


def test_end_before_start_is_refused_with_video_and_segment(simple):
    db = {"v1": video(acts=((1.0, 3.0, "a", 0), (12.0, 10.0, "b", 1)))}
    with pytest.raises(DatasetError, match=r"1 segment\(s\) with end <= start .*: 'v1' "
                                           r"segment 1 \[12, 10\]$"):
        _build(simple, db)
    # the same rule for a zero-length segment
    db = {"v1": video(acts=((1.0, 3.0, "a", 0), (5.0, 5.0, "b", 1)))}
    with pytest.raises(DatasetError, match=r"'v1' segment 1 \[5, 5\]"):
        _build(simple, db)


def test_start_after_the_end_warns_and_keeps_the_segment(simple):
    db = {"v1": video(duration=20.0, acts=((1.0, 3.0, "a", 0), (21.0, 24.0, "b", 1)))}
    with pytest.warns(UserWarning) as rec:
        ds = _build(simple, db)
    assert len(rec) == 1
    assert str(rec[0].message) == (
        f"{simple / 'ann.json'}: 1 segment(s) start at or after the video's end (duration); "
        "kept unchanged, as the original keeps them: 'v1' segment 1 [21, 24] (duration 20)")
    # seconds -> grid: 21 * 30 / 4 - 2 (half of 16 frames / stride 4), unchanged
    assert ds[0]["segments"][1].tolist() == [21 * 30 / 4 - 2, 24 * 30 / 4 - 2]


def test_start_before_zero_warns(simple):
    db = {"v1": video(acts=((-1.0, 3.0, "a", 0), (10.0, 12.0, "b", 1)))}
    with pytest.warns(UserWarning, match=r"1 segment\(s\) start before 0 s: 'v1' segment 0 "
                                         r"\[-1, 3\]"):
        _build(simple, db)


@pytest.mark.parametrize("act, what", [
    ({"label": "a", "segment": [1.0, 2.0]}, "annotation(s) that are not an object"),
    ({"label": "a", "label_id": 0, "segment": ["1", 2.0]}, "segment(s) that are not [start"),
    ({"label": "a", "label_id": 0, "segment": [1.0, float("nan")]}, "two finite numbers"),
])
def test_malformed_annotations_are_refused(simple, act, what):
    db = {"v1": dict(video(), annotations=[act])}
    with pytest.raises(DatasetError) as err:
        _build(simple, db, num_classes=1)
    assert what in str(err.value) and "'v1'" in str(err.value)


def test_rules_only_check_segments_of_the_split(simple):
    # a broken segment in another subset does not stop this split (labels still span all)
    db = {"v1": video(acts=((1.0, 3.0, "a", 0), (10.0, 12.0, "b", 1))),
          "v2": video(subset="Validation", acts=((9.0, 2.0, "a", 0),))}
    assert len(_build(simple, db)) == 1
    findings = validate_database(db, ["validation"])
    assert [(f.rule, f.items) for f in findings] == [
        ("end_before_start", ["'v2' segment 0 [9, 2]"])]


def test_anet_rules_see_the_deduplicated_annotations(simple):
    # ActivityNet drops segments shorter than 1 ms first (as the original): no error
    db = {"v1": video(subset="Training", acts=((1.0, 3.0, "a", 0), (4.0, 4.0, "a", 0)))}
    ds = _build(simple, db, split=("training",), name="anet", num_classes=1)
    assert ds.data_list[0]["segments"].tolist() == [[1.0, 3.0]]


def _save_object_npy(path: Path, marker: Path) -> None:
    class CreatesFile:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    np.save(path, np.array([CreatesFile()], dtype=object), allow_pickle=True)


def test_npy_with_pickled_objects_names_the_file_and_runs_nothing(simple):
    marker = simple / "marker"
    _save_object_npy(simple / "feats" / "v1.npy", marker)
    ds = make_dataset("thumos", False, ["test"], **ds_kwargs(simple))
    with pytest.raises(DatasetError) as err:
        ds[0]
    assert str(err.value).startswith(
        f"feature file of video 'v1' ({simple / 'feats' / 'v1.npy'}) cannot be read as a "
        "numeric array: ValueError: Object arrays cannot be loaded when allow_pickle=False")
    assert not marker.exists()


def test_ego4d_pt_with_code_names_the_file_and_runs_nothing(tmp_path):
    (tmp_path / "f1").mkdir()
    write_json(tmp_path / "ann.json", {"c1": video(subset="training",
                                                   acts=((1.0, 2.0, "a", 0),))})
    marker = tmp_path / "marker"

    class RunsSystem:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    torch.save({"feats": RunsSystem()}, tmp_path / "f1" / "c1.pt")
    ds = make_dataset("ego4d", False, ["training"], **ds_kwargs(
        tmp_path, feat_folder=[str(tmp_path / "f1")], file_ext=".pt", input_dim=3,
        num_classes=1, default_fps=30))
    with pytest.raises(DatasetError, match=r"feature file of video 'c1' \(.*c1.pt\) cannot be "
                                           r"read as a numeric array: .*posix.system"):
        ds[0]
    assert not marker.exists()


def _check_config(tmp_path: Path) -> str:
    cfg = {"dataset_name": "thumos", "train_split": ["validation"], "val_split": ["test"],
           "dataset": {"json_file": str(tmp_path / "ann.json"),
                       "feat_folder": str(tmp_path / "feats"), "file_prefix": None,
                       "file_ext": ".npy", "num_classes": 2, "input_dim": 8, "feat_stride": 4,
                       "num_frames": 16, "max_seq_len": 256, "default_fps": None},
           "model": {"n_mha_win_size": 9}, "output_folder": str(tmp_path / "ckpt")}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_check_dataset_reports_object_npy_without_crashing(simple):
    marker = simple / "marker"
    _save_object_npy(simple / "feats" / "v2.npy", marker)
    rep = cd.check_dataset(_check_config(simple))
    hits = [m for m in rep.errors if "cannot be read as numeric arrays" in m]
    assert len(hits) == 1 and "v2 (" in hits[0] and "v2.npy" in hits[0]
    assert not marker.exists()


def test_check_dataset_and_loader_share_the_rules(simple):
    db = {"v1": video(acts=((1.0, 3.0, "a", 0), (12.0, 10.0, "b", 1))),
          "v2": video(subset="Validation", duration=20.0, acts=((21.0, 22.0, "a", 0),))}
    write_json(simple / "ann.json", db)
    rep = cd.check_dataset(_check_config(simple))
    findings = validate_database(db, ["validation", "test"])
    assert [f.message(cd.SHOW) for f in findings if f.severity == "error"] == \
        [m for m in rep.errors if "segment" in m]
    assert [f.message(cd.SHOW) for f in findings if f.severity == "warning"] == \
        [m for m in rep.warnings if "segment" in m]
    assert any("'v1' segment 1 [12, 10]" in m for m in rep.errors)
    assert any("'v2' segment 0 [21, 22]" in m for m in rep.warnings)


def test_binary_annotation_file_names_the_file(simple):
    # annotation files are JSON only: a pickle given as json_file is a clear error
    (simple / "ann.json").write_bytes(pickle.dumps({"database": {}}))
    with pytest.raises(DatasetError, match=f"^{simple / 'ann.json'}: not a UTF-8 text"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple))
