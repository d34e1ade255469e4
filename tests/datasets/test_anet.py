"""ActivityNet dataset: the three grid cases, HDF5 features, segment sanitising, real annotations.

Oracles: docs/reference.md §2.5 and Appendix C worked by hand, the npy twin of an HDF5 file, the
real ActivityNet 1.3 annotation files (converted with tools/convert_annotations.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from libs.datasets import make_dataset

from ._helpers import ds_kwargs, video, write_json

ANET = dict(feat_stride=16, num_frames=16, default_fps=15, max_seq_len=192,
            force_upsampling=True, num_classes=1, file_prefix="v_")


@pytest.fixture
def one_video(tmp_path):
    """Video 'x': 60 s, action [10 s, 20 s]; 100 features (v_x.npy) whose value = 8 * t + c."""
    (tmp_path / "feats").mkdir()
    write_json(tmp_path / "ann.json", {"x": video(subset="validation", duration=60.0,
                                                  acts=((10.0, 20.0, "a", 0),))})
    feats = np.arange(100 * 8, dtype=np.float32).reshape(100, 8)
    np.save(tmp_path / "feats" / "v_x.npy", feats)
    return tmp_path, feats


def test_force_upsampling_matches_appendix_c(one_video):
    path, feats = one_video
    ds = make_dataset("anet", False, ["validation"], **ds_kwargs(path, **ANET))
    item = ds[0]
    stride = (99 * 16 + 16) / 192  # 8.333 frames per resized step
    assert item["feat_stride"] == stride and item["feat_num_frames"] == stride
    assert item["segments"][0].tolist() == pytest.approx([17.5, 35.5], abs=1e-4)
    assert item["feats"].shape == (8, 192) and item["labels"].tolist() == [0]
    # linear resize, align_corners=False: output j samples input (j + 0.5) * 100 / 192 - 0.5
    pos = (np.arange(192) + 0.5) * 100 / 192 - 0.5
    expected = np.interp(pos, np.arange(100), feats[:, 0])  # clamps at both ends
    assert np.allclose(item["feats"][0].numpy(), expected, atol=1e-3)


def test_native_stride_with_downsampling(one_video):
    path, _ = one_video
    ds = make_dataset("anet", False, ["validation"], **ds_kwargs(
        path, **dict(ANET, force_upsampling=False, downsample_rate=2)))
    item = ds[0]
    # stride 32, offset 0.5 * 16 / 32 = 0.25: 10 s -> 10 * 15 / 32 - 0.25
    assert item["feat_stride"] == 32 and item["feat_num_frames"] == 16
    assert item["feats"].shape == (8, 50)
    assert item["segments"][0].tolist() == [4.4375, 9.125]


@pytest.mark.parametrize("upsample,length,stride", [(False, 100, 9.0), (True, 192, 4.6875)])
def test_fixed_length_features(one_video, upsample, length, stride):
    path, _ = one_video
    ds = make_dataset("anet", False, ["validation"], **ds_kwargs(
        path, **dict(ANET, feat_stride=-1, force_upsampling=upsample)))
    item = ds[0]
    # stride = duration * fps / seq_len frames, offset 0.5
    assert item["feat_stride"] == stride and item["feats"].shape == (8, length)
    assert item["segments"][0].tolist() == pytest.approx(
        [10 * 15 / stride - 0.5, 20 * 15 / stride - 0.5], abs=1e-5)


def test_fixed_length_features_longer_than_max_seq_len(one_video):
    path, _ = one_video
    ds = make_dataset("anet", False, ["validation"], **ds_kwargs(
        path, **dict(ANET, feat_stride=0, max_seq_len=64)))
    with pytest.raises(ValueError, match="video 'x' has 100 fixed-length features, more than "
                                         "max_seq_len 64"):
        ds[0]


def test_hdf5_features_equal_npy(tmp_path):
    pytest.importorskip("h5py")
    from make_synthetic_dataset import make_synthetic_dataset
    common = dict(num_videos=3, num_classes=1, dim=8, min_len=20, max_len=40, prefix="v_",
                  test_fraction=0.0, train_subset="training", seed=3)
    a = make_synthetic_dataset(str(tmp_path / "a"), fmt="npy", **common)
    b = make_synthetic_dataset(str(tmp_path / "b"), fmt="h5", **common)
    assert b["feat_folder"].endswith(".hdf5")
    kw = ds_kwargs(tmp_path, **dict(ANET, json_file=a["json_file"], max_seq_len=32))
    ds_npy = make_dataset("anet", False, ["training"], **dict(kw, feat_folder=a["feat_folder"]))
    ds_h5 = make_dataset("anet", False, ["training"], **dict(kw, feat_folder=b["feat_folder"]))
    assert len(ds_h5) == 3
    for i in range(3):
        assert torch.equal(ds_npy[i]["feats"], ds_h5[i]["feats"])
        assert torch.equal(ds_npy[i]["segments"], ds_h5[i]["segments"])


def test_hdf5_without_a_video_fails_at_construction(tmp_path):
    h5py = pytest.importorskip("h5py")
    write_json(tmp_path / "ann.json", {"a": video(subset="training"),
                                       "b": video(subset="training")})
    with h5py.File(tmp_path / "f.hdf5", "w") as h5:
        h5.create_dataset("v_a", data=np.zeros((10, 8), np.float32))
    with pytest.raises(FileNotFoundError, match=r"1 video\(s\) of split \['training'\] have no "
                                                r"feature file \(b; expected e.g. "
                                                r".*f.hdf5\[v_b\]\)"):
        make_dataset("anet", False, ["training"], **ds_kwargs(
            tmp_path, **dict(ANET, feat_folder=str(tmp_path / "f.hdf5"))))


def test_missing_npy_fails_at_construction(one_video):
    path, _ = one_video
    (path / "feats" / "v_x.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"have no feature file \(x; expected e.g. "
                                                r".*feats/v_x.npy\)"):
        make_dataset("anet", False, ["validation"], **ds_kwargs(path, **ANET))


def test_annotations_are_deduplicated_and_labels_kept_with_classes(tmp_path):
    (tmp_path / "feats").mkdir()
    acts = ((1.0, 2.0, "a", 0), (1.0005, 2.0005, "a", 0),  # repeat within 1e-3 s: dropped
            (1.0, 2.0, "b", 1),                              # same times, other label: kept
            (5.0, 5.0005, "b", 1))                           # shorter than 1e-3 s: dropped
    write_json(tmp_path / "ann.json", {"x": video(subset="validation", duration=10.0,
                                                  acts=acts)})
    np.save(tmp_path / "feats" / "v_x.npy", np.zeros((10, 8), np.float32))
    ds = make_dataset("anet", False, ["validation"], **ds_kwargs(
        tmp_path, **dict(ANET, num_classes=2, force_upsampling=False)))
    assert ds.data_list[0]["segments"].tolist() == [[1.0, 2.0], [1.0, 2.0]]
    assert ds[0]["labels"].tolist() == [0, 1]
    ds1 = make_dataset("anet", False, ["validation"], **ds_kwargs(
        tmp_path, **dict(ANET, num_classes=1, force_upsampling=False)))
    assert ds1[0]["labels"].tolist() == [0, 0]  # class-agnostic
    with pytest.raises(ValueError, match="2 classes in the annotations, but "
                                         "dataset.num_classes is 3"):
        make_dataset("anet", False, ["validation"], **ds_kwargs(
            tmp_path, **dict(ANET, num_classes=3)))


def test_duration_is_required(one_video):
    path, _ = one_video
    db = {"x": video(subset="validation")}
    del db["x"]["duration"]
    write_json(path / "ann.json", db)
    with pytest.raises(ValueError, match="video 'x' has no 'duration'"):
        make_dataset("anet", False, ["validation"], **ds_kwargs(path, **ANET))


def test_training_sanitises_segments_and_survives_losing_all(tmp_path):
    (tmp_path / "feats").mkdir()
    # 10 features, stride 16, fps 16 -> 1 step per second, offset 0.5; vid_len = 10.5 steps
    write_json(tmp_path / "ann.json", {
        "keep": video(subset="training", duration=10.0,
                      acts=((2.0, 5.0, "a", 0), (9.0, 20.0, "a", 0), (9.0, 12.0, "a", 0))),
        "lose": video(subset="training", duration=10.0, acts=((11.0, 12.0, "a", 0),))})
    for vid in ("keep", "lose"):
        np.save(tmp_path / "feats" / f"{vid}.npy", np.zeros((10, 8), np.float32))
    with pytest.warns(UserWarning, match=r"2 segment\(s\) end after the video.s duration"):
        ds = make_dataset("anet", True, ["training"], **ds_kwargs(
            tmp_path, feat_stride=16, num_frames=16, default_fps=16, max_seq_len=32,
            num_classes=1))
    item = ds[0]
    # [2, 5] s -> [1.5, 4.5]; [9, 20] s -> [8.5, 19.5]: (10.5 - 8.5) / 11 < 0.5, dropped;
    # [9, 12] s -> [8.5, 11.5]: (10.5 - 8.5) / 3 >= 0.5, kept and clamped at 10.5
    assert item["segments"].tolist() == [[1.5, 4.5], [8.5, 10.5]]
    assert item["labels"].tolist() == [0, 0]
    empty = ds[1]  # [11, 12] s starts after the end: no segment left, no crash
    assert empty["segments"].shape == (0, 2) and empty["labels"].shape == (0,)
    assert empty["segments"].dtype == torch.float32 and empty["labels"].dtype == torch.int64
    # evaluation items are not sanitised
    with pytest.warns(UserWarning, match=r"2 segment\(s\) end after the video.s duration"):
        ds_eval = make_dataset("anet", False, ["training"], **ds_kwargs(
            tmp_path, feat_stride=16, num_frames=16, default_fps=16, max_seq_len=32,
            num_classes=1))
    assert ds_eval[0]["segments"].tolist() == [[1.5, 4.5], [8.5, 19.5], [8.5, 11.5]]


@pytest.fixture(scope="module")
def anet_converted(real_data_dir, tmp_path_factory):
    """The real ActivityNet 1.3 annotations converted once: (database, path of the JSON)."""
    from convert_annotations import convert_anet, write_json as write_converted
    data = convert_anet(str(real_data_dir / "anet1.3"))
    path = tmp_path_factory.mktemp("anet") / "anet1.3.json"
    write_converted(data, str(path))
    return data["database"], path


def test_real_anet_annotations_convert(anet_converted):
    db, _ = anet_converted
    assert len(db) == 19228 and "QOlSCBRmfWY" in db  # "v_QOlSCBRmfWY" without its prefix
    counts = {s: sum(v["subset"] == s for v in db.values())
              for s in ("training", "validation", "testing")}
    assert counts == {"training": 9649, "validation": 4728, "testing": 4851}
    assert {a["label_id"] for v in db.values() for a in v["annotations"]} == set(range(200))
    assert all(v["annotations"] == [] for v in db.values() if v["subset"] == "testing")
    first = db["QOlSCBRmfWY"]  # first entry of anet_anno_action.json
    assert first["duration"] == 82.73 and first["annotations"][0]["label"] == "Ballet"


@pytest.mark.filterwarnings("ignore:.*segments ending after:UserWarning")
@pytest.mark.parametrize("fmt", ["npy", "h5"])
def test_real_anet_annotations_load(anet_converted, tmp_path, fmt):
    if fmt == "h5":
        pytest.importorskip("h5py")
    from make_synthetic_dataset import make_synthetic_dataset
    db, path = anet_converted
    # features for 50 videos of each split, sized like TSP features at 15 fps (configs)
    info = {}
    for split in ("training", "validation"):
        info[split] = make_synthetic_dataset(
            str(tmp_path / split), dim=4, from_json=str(path), subsets=[split], max_videos=50,
            fps=15, feat_stride=16, fmt=fmt, prefix="v_", seed=0)
    kw = dict(feat_stride=16, num_frames=16, default_fps=15, downsample_rate=1,
              max_seq_len=192, trunc_thresh=0.5, crop_ratio=[0.9, 1.0], input_dim=4,
              num_classes=1, file_prefix="v_", file_ext=".npy", force_upsampling=True)
    train = make_dataset("anet", True, ["training"], feat_folder=info["training"]["feat_folder"],
                         json_file=info["training"]["json_file"], **kw)
    val = make_dataset("anet", False, ["validation"],
                       feat_folder=info["validation"]["feat_folder"],
                       json_file=info["validation"]["json_file"], **kw)
    assert len(train) == len(val) == 50
    assert train.get_attributes()["tiou_thresholds"].tolist() == np.linspace(
        0.5, 0.95, 10).tolist()
    for idx in range(0, 50, 7):
        item = val[idx]
        T = round(db[item["video_id"]]["duration"] * 15 / 16)
        assert item["feats"].shape == (4, 192)
        assert item["feat_stride"] == ((T - 1) * 16 + 16) / 192
        assert item["labels"].eq(0).all()
        train_item = train[idx]
        assert train_item["feats"].shape[1] <= 192 and train_item["segments"].shape[1] == 2
