"""Bad input gets a clear error (or one summary warning) naming the file / video and the fix."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from libs.datasets import make_dataset

from ._helpers import ds_kwargs, video, write_json


def test_missing_annotation_file(tmp_path):
    (tmp_path / "feats").mkdir()
    with pytest.raises(FileNotFoundError, match="annotation file not found: .*ann.json"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(tmp_path))


def test_missing_feature_folder(simple):
    with pytest.raises(FileNotFoundError, match="feature folder not found: .*nowhere"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(
            simple, feat_folder=str(simple / "nowhere")))


def test_missing_feature_file_at_read_time(simple):
    ds = make_dataset("thumos", False, ["test"], **ds_kwargs(simple))
    (simple / "feats" / "v1.npy").unlink()  # removed after the data set was built
    with pytest.raises(FileNotFoundError, match="feature file of video 'v1' not found: "
                                                ".*v1.npy"):
        ds[0]


@pytest.mark.parametrize("array,pattern", [
    (np.ones((150, 5), np.float32), r"have shape \(150, 5\), expected \(T, 8\) with "
                                    r"dataset.input_dim = 8$"),
    (np.ones((8, 150), np.float32), r"shape \(8, 150\).*looks transposed \(C x T\)"),
    (np.ones((0, 8), np.float32), r"have zero time steps"),
    (np.ones(8, np.float32), r"must be a 2-d \(T, C\) array, got shape \(8,\)"),
    (np.where(np.arange(1200).reshape(150, 8) == 17, np.nan, 1).astype(np.float32),
     r"contain NaN or inf values at 1 time step"),
    (np.where(np.arange(1200).reshape(150, 8) % 500 == 3, np.inf, 1).astype(np.float32),
     r"contain NaN or inf values at 3 time step"),
])
def test_bad_features(simple, array, pattern):
    np.save(simple / "feats" / "v1.npy", array)
    ds = make_dataset("thumos", False, ["test"], **ds_kwargs(simple))
    with pytest.raises(ValueError, match=r"video 'v1' \(.*v1.npy\).*" + pattern):
        ds[0]


def test_float16_features_become_float32(simple):
    np.save(simple / "feats" / "v1.npy", np.full((150, 8), 0.5, np.float16))
    ds = make_dataset("thumos", False, ["test"], **ds_kwargs(simple))
    assert ds[0]["feats"].dtype == torch.float32 and ds[0]["feats"].eq(0.5).all()


def test_malformed_json_names_file_and_position(simple):
    (simple / "ann.json").write_text('{"database": {\n "v1": {"subset": "Test",, }}}')
    with pytest.raises(ValueError, match=r"ann.json: malformed JSON at line 2, column 26"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple))


def test_json_without_database(simple):
    (simple / "ann.json").write_text('{"videos": {}}')
    with pytest.raises(ValueError, match=r"ann.json: expected an object with a 'database'"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple))


def test_label_id_outside_num_classes(simple):
    write_json(simple / "ann.json", {"v1": video(acts=((1, 2, "a", 0), (3, 4, "b", 2)))})
    with pytest.raises(ValueError, match=r"video 'v1' has label 'b' with label_id 2; expected "
                                         r"an integer in \[0, 2\)"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple))


def test_non_integer_label_id(simple):
    write_json(simple / "ann.json", {"v1": video(acts=((1, 2, "a", 0), (3, 4, "b", "1")))})
    with pytest.raises(ValueError, match=r"label 'b' with label_id '1'; expected an integer"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple))


def test_class_count_mismatch(simple):
    with pytest.raises(ValueError, match=r"2 classes in the annotations, but "
                                         r"dataset.num_classes is 3"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple, num_classes=3))


def test_bad_segment(simple):
    write_json(simple / "ann.json", {"v1": dict(video(), annotations=[
        {"label": "a", "label_id": 0, "segment": [1.0, 2.0, 3.0]}])})
    with pytest.raises(ValueError, match=r"1 segment\(s\) that are not \[start, end\] in "
                       r"seconds .*'v1' segment 0 \[1.0, 2.0, 3.0\]"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple, num_classes=1))


def test_segment_past_duration_warns_once_and_keeps_values(simple):
    write_json(simple / "ann.json", {
        "v1": video(duration=5.0, acts=((1, 9, "a", 0), (2, 3, "b", 1))),
        "v2": video(duration=5.0, acts=((4, 6, "a", 0), (2, 3, "b", 1)))})
    with pytest.warns(UserWarning) as record:
        ds = make_dataset("thumos", False, ["test"], **ds_kwargs(simple))
    assert len(record) == 1
    assert ("2 segment(s) end after the video's duration; kept unchanged, as the original "
            "keeps them: 'v1' segment 0 [1, 9] (duration 5), 'v2' segment 0 [4, 6] (duration "
            "5)") in str(record[0].message)
    assert ds[0]["segments"][0].tolist() == [1 * 30 / 4 - 2, 9 * 30 / 4 - 2]  # not clipped


def test_no_warning_for_valid_data(simple, recwarn):
    make_dataset("thumos", False, ["test", "validation"], **ds_kwargs(simple))
    assert len(recwarn) == 0


def test_empty_split_lists_the_subsets(simple):
    with pytest.raises(ValueError, match=r"no video of split \['training'\] \(subsets present: "
                                         r"Test, Validation; the split is compared with the "
                                         r"lower-cased 'subset'\)"):
        make_dataset("thumos", False, ["training"], **ds_kwargs(simple))


def test_split_without_any_feature_file(simple):
    (simple / "feats" / "v1.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"none of the 1 video\(s\) of split \['test'\] "
                                                r"has its feature file \(expected e.g. "
                                                r".*feats/v1.npy\)"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple))


def test_missing_fps(simple):
    db = {"v1": video()}
    del db["v1"]["fps"]
    write_json(simple / "ann.json", db)
    with pytest.raises(ValueError, match="video 'v1' has no 'fps' and dataset.default_fps is "
                                         "not set"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple, num_classes=1))


def test_split_must_be_a_list(simple):
    with pytest.raises(TypeError, match="split must be a list or tuple"):
        make_dataset("thumos", False, "test", **ds_kwargs(simple))


def test_crop_ratio_must_have_two_values(simple):
    with pytest.raises(ValueError, match=r"crop_ratio must be None or \[lo, hi\]"):
        make_dataset("thumos", False, ["test"], **ds_kwargs(simple, crop_ratio=[0.9]))


def test_unknown_dataset_name_lists_the_valid_ones(simple):
    with pytest.raises(KeyError, match="valid names: anet, ego4d, epic, thumos"):
        make_dataset("thumos14", False, ["test"], **ds_kwargs(simple))


def test_unknown_constructor_key(simple):
    with pytest.raises(TypeError, match="unexpected keyword argument 'feat_dim'"):
        make_dataset("thumos", False, ["test"], feat_dim=3, **ds_kwargs(simple))
