"""Datasets: items identical to the original's, grid conversion, formats, loader, clear errors.

Oracles: the items and truncate_feats vectors the original produced (shared/conformance), the
worked examples of REFERENCE.md Appendix C, and hand-built files.
"""
from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from libs.core import load_config
from libs.datasets import make_data_loader, make_dataset, truncate_feats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from make_synthetic_dataset import make_synthetic_dataset  # noqa: E402


# ------------------------------------------------------------------------- conformance
@pytest.fixture
def tiny_cfg(conformance_dir, monkeypatch):
    monkeypatch.chdir(conformance_dir)  # the tiny config's paths are relative to it
    return load_config("tiny_thumos.yaml")


def test_thumos_items_equal_the_originals(tiny_cfg, conformance_dir):
    inputs = torch.load(conformance_dir / "tiny_inputs.pt")
    with pytest.warns(UserWarning, match="1 video.*video_validation_0000052.*kept unchanged"):
        ds = make_dataset("thumos", False, ["validation", "test"], **tiny_cfg["dataset"])
    items = {ds[i]["video_id"]: ds[i] for i in range(len(ds))}
    for ref in inputs["videos"] + inputs["extra_eval_videos"]:
        got = items[ref["video_id"]]
        assert set(got) == set(ref)
        for key, value in ref.items():
            if isinstance(value, torch.Tensor):
                assert got[key].dtype == value.dtype, key
                assert torch.equal(got[key], value), key
            else:
                assert got[key] == value and type(got[key]) is type(value), key
    attrs = ds.get_attributes()
    assert attrs["dataset_name"] == "thumos-14" and attrs["empty_label_ids"] == []
    assert attrs["tiou_thresholds"][1] == np.linspace(0.3, 0.7, 5)[1]


def test_truncate_feats_replays_the_reference_vectors(conformance_dir):
    inputs = {v["video_id"]: v for v in torch.load(conformance_dir / "tiny_inputs.pt")["videos"]}
    vectors = torch.load(conformance_dir / "tiny_expected.pt")["truncate_feats"]
    assert len(vectors) == 5
    for vec in vectors:
        random.seed(vec["python_random_seed"])
        out = truncate_feats(dict(inputs[vec["input_video_id"]]), vec["max_seq_len"],
                             vec["trunc_thresh"], vec["offset"], vec["crop_ratio"])
        assert torch.equal(out["feats"], vec["feats"])
        assert torch.equal(out["segments"], vec["segments"])
        assert torch.equal(out["labels"], vec["labels"])


def test_truncate_feats_invariants():
    rng = np.random.default_rng(0)
    for trial in range(30):
        T = int(rng.integers(50, 400))
        starts = rng.uniform(-2, T - 5, size=4)
        segs = torch.tensor(np.stack([starts, starts + rng.uniform(1, 40, size=4)], 1),
                            dtype=torch.float32)
        item = {"feats": torch.randn(3, T), "segments": segs, "labels": torch.arange(4)}
        random.seed(trial)
        out = truncate_feats(item, 100, 0.5, 2.0, [0.9, 1.0])
        assert out["feats"].shape[1] <= max(100, T) and out["feats"].shape[1] <= T
        if T > 100:
            assert out["feats"].shape[1] == 100
        if out is not item:
            n = out["feats"].shape[1]
            assert (out["segments"][:, 0] >= -2.0).all()
            assert (out["segments"][:, 1] <= n + 2.0).all()
        assert torch.equal(item["segments"], segs)  # the input is never modified


# ------------------------------------------------------------------------- hand-built data
def _write_json(path: Path, database: dict) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"database": database}))
    return str(path)


def _kwargs(tmp_path: Path, **over):
    kw = dict(feat_folder=str(tmp_path / "feats"), json_file=str(tmp_path / "ann.json"),
              feat_stride=4, num_frames=16, default_fps=None, downsample_rate=1,
              max_seq_len=64, trunc_thresh=0.5, crop_ratio=None, input_dim=8, num_classes=2,
              file_prefix=None, file_ext=".npy", force_upsampling=False)
    kw.update(over)
    return kw


def _video(subset="Test", duration=20.0, fps=30.0, acts=((1.0, 3.0, "a", 0),)):
    return {"subset": subset, "duration": duration, "fps": fps,
            "annotations": [{"label": l, "label_id": i, "segment": [s, e]}
                            for s, e, l, i in acts]}


@pytest.fixture
def simple(tmp_path):
    (tmp_path / "feats").mkdir()
    db = {"v1": _video(acts=((1.0, 3.0, "a", 0), (10.0, 12.0, "b", 1))),
          "v2": _video(subset="Validation")}
    _write_json(tmp_path / "ann.json", db)
    np.save(tmp_path / "feats" / "v1.npy", np.ones((150, 8), np.float32))
    np.save(tmp_path / "feats" / "v2.npy", np.ones((150, 8), np.float32))
    return tmp_path


def test_seconds_to_grid_matches_appendix_c_thumos(simple):
    # fps 30, stride 4, 16 frames: offset 2; [10 s, 12 s] -> [73, 88]
    ds = make_dataset("thumos", False, ["test"], **_kwargs(simple))
    item = ds[0]
    assert item["segments"][1].tolist() == [73.0, 88.0]
    assert item["feats"].shape == (8, 150) and item["feat_stride"] == 4
    assert item["labels"].tolist() == [0, 1]


def test_downsample_rate_halves_features_and_doubles_stride(simple):
    ds = make_dataset("thumos", False, ["test"], **_kwargs(simple, downsample_rate=2))
    item = ds[0]
    # stride 8, offset 1: 10 s * 30 / 8 - 1 = 36.5
    assert item["feats"].shape[1] == 75 and item["feat_stride"] == 8
    assert item["segments"][1, 0].item() == 36.5


def test_anet_force_upsampling_matches_appendix_c(tmp_path):
    (tmp_path / "feats").mkdir()
    _write_json(tmp_path / "ann.json", {"x": _video(subset="validation", duration=60.0,
                                                    acts=((10.0, 20.0, "a", 0),))})
    feats = np.arange(100 * 8, dtype=np.float32).reshape(100, 8)
    np.save(tmp_path / "feats" / "v_x.npy", feats)
    ds = make_dataset("anet", False, ["validation"], **_kwargs(
        tmp_path, feat_stride=16, num_frames=16, default_fps=15, max_seq_len=192,
        force_upsampling=True, num_classes=1, file_prefix="v_"))
    item = ds[0]
    stride = (99 * 16 + 16) / 192
    assert item["feat_stride"] == pytest.approx(stride) and item["feat_num_frames"] == item[
        "feat_stride"]
    assert item["segments"][0].tolist() == pytest.approx([17.5, 35.5], abs=1e-4)
    assert item["feats"].shape == (8, 192)
    # linear resize, align_corners=False: output 0 and 191 clamp to the ends
    assert item["feats"][0, 0].item() == 0.0 and item["feats"][0, -1].item() == feats[-1, 0]
    assert item["labels"].tolist() == [0]


def test_anet_hdf5_features_equal_npy(tmp_path):
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "syn"
    a = make_synthetic_dataset(str(out / "a"), num_videos=3, num_classes=1, dim=8, min_len=20,
                               max_len=40, fmt="npy", prefix="v_", test_fraction=0.0,
                               train_subset="training", seed=3)
    b = make_synthetic_dataset(str(out / "b"), num_videos=3, num_classes=1, dim=8, min_len=20,
                               max_len=40, fmt="h5", prefix="v_", test_fraction=0.0,
                               train_subset="training", seed=3)
    kw = dict(json_file=a["json_file"], feat_stride=16, num_frames=16, default_fps=15,
              downsample_rate=1, max_seq_len=32, trunc_thresh=0.5, crop_ratio=None,
              input_dim=8, num_classes=1, file_prefix="v_", file_ext=".npy",
              force_upsampling=True)
    ds_npy = make_dataset("anet", False, ["training"], feat_folder=a["feat_folder"], **kw)
    ds_h5 = make_dataset("anet", False, ["training"], feat_folder=b["feat_folder"], **kw)
    assert b["feat_folder"].endswith(".hdf5") and h5py is not None
    for i in range(3):
        assert torch.equal(ds_npy[i]["feats"], ds_h5[i]["feats"])


def test_anet_training_sanitises_segments_and_survives_losing_all(tmp_path):
    (tmp_path / "feats").mkdir()
    # 10 features, stride 16, fps 16 -> 10 s; offset 0.5; vid_len = 10.5 grid steps
    _write_json(tmp_path / "ann.json", {
        "keep": _video(subset="training", duration=10.0, acts=((2.0, 5.0, "a", 0),
                                                               (9.0, 20.0, "a", 0))),
        "lose": _video(subset="training", duration=10.0, acts=((11.0, 12.0, "a", 0),))})
    for vid in ("keep", "lose"):
        np.save(tmp_path / "feats" / f"{vid}.npy", np.zeros((10, 8), np.float32))
    ds = make_dataset("anet", True, ["training"], **_kwargs(
        tmp_path, feat_stride=16, num_frames=16, default_fps=16, max_seq_len=32,
        num_classes=1))
    item = ds[0]  # [9, 20] s -> grid [8.5, 19.5]: ratio (10.5 - 8.5) / 11 < 0.5 -> dropped
    assert item["segments"].tolist() == [[1.5, 4.5]]
    empty = ds[1]
    assert empty["segments"].shape == (0, 2) and empty["labels"].shape == (0,)


def test_epic_npz_and_empty_label_ids(tmp_path):
    (tmp_path / "feats").mkdir()
    _write_json(tmp_path / "ann.json", {"p1": _video(subset="training",
                                                     acts=((1, 2, "a", 0), (3, 4, "c", 3)))})
    np.savez(tmp_path / "feats" / "p1.npz", feats=np.zeros((40, 8), np.float32))
    ds = make_dataset("epic", False, ["training"], **_kwargs(
        tmp_path, file_ext=".npz", num_classes=5, default_fps=30, feat_stride=16,
        num_frames=32))
    assert ds.get_attributes()["empty_label_ids"] == [1, 2, 4]
    assert ds[0]["segments"][0].tolist() == pytest.approx([30 / 16 - 1, 60 / 16 - 1])


def test_ego4d_concatenates_folders_and_skips_incomplete_videos(tmp_path):
    for folder in ("f1", "f2"):
        (tmp_path / folder).mkdir()
    db = {"c1": dict(_video(subset="training"), offset=1.5), "c2": _video(subset="training")}
    _write_json(tmp_path / "ann.json", db)
    folders = [str(tmp_path / "f1"), str(tmp_path / "f2")]
    np.save(tmp_path / "f1" / "c1.npy", np.ones((12, 3), np.float32))
    np.save(tmp_path / "f2" / "c1.npy", np.full((12, 5), 2.0, np.float32))
    np.save(tmp_path / "f1" / "c2.npy", np.ones((12, 3), np.float32))  # no f2/c2 -> skipped
    ds = make_dataset("ego4d", False, ["training"], **_kwargs(
        tmp_path, feat_folder=folders, input_dim=8, num_classes=1))
    assert len(ds) == 1
    item = ds[0]
    assert item["feats"].shape == (8, 12) and item["offset"] == 1.5
    assert item["feats"][:3].eq(1).all() and item["feats"][3:].eq(2).all()
    # the same features stored as torch tensors (.pt)
    torch.save(torch.ones(12, 3), tmp_path / "f1" / "c1.pt")
    torch.save(torch.full((12, 5), 2.0), tmp_path / "f2" / "c1.pt")
    ds_pt = make_dataset("ego4d", False, ["training"], **_kwargs(
        tmp_path, feat_folder=folders, input_dim=8, num_classes=1, file_ext=".pt"))
    assert torch.equal(ds_pt[0]["feats"], item["feats"])


def test_loader_batches_are_lists_and_work_without_workers(simple):
    ds = make_dataset("thumos", True, ["test", "validation"], **_kwargs(simple, max_seq_len=64))
    gen = torch.Generator().manual_seed(0)
    loader = make_data_loader(ds, True, gen, batch_size=2, num_workers=0)
    batches = list(loader)
    assert len(batches) == 1 and isinstance(batches[0], list) and len(batches[0]) == 2
    assert all(b["feats"].shape[1] <= 64 for b in batches[0])
    eval_loader = make_data_loader(ds, False, None, 1, 0)
    assert [b[0]["video_id"] for b in eval_loader] == ["v1", "v2"]


# ------------------------------------------------------------------------- errors
def test_missing_annotation_file(tmp_path):
    (tmp_path / "feats").mkdir()
    with pytest.raises(FileNotFoundError, match="annotation file not found: .*ann.json"):
        make_dataset("thumos", False, ["test"], **_kwargs(tmp_path))


def test_missing_feature_file_names_the_video(simple):
    os.remove(simple / "feats" / "v1.npy")
    with pytest.raises(FileNotFoundError, match="video 'v1' not found: .*v1.npz"):
        make_dataset("epic", False, ["test"], **_kwargs(simple, file_ext=".npz"))


@pytest.mark.parametrize("array,pattern", [
    (np.ones((150, 5), np.float32), r"shape \(150, 5\), expected \(T, 8\)"),
    (np.ones((8, 150), np.float32), r"looks transposed \(C x T\)"),
    (np.ones((0, 8), np.float32), r"zero time steps"),
    (np.where(np.arange(1200).reshape(150, 8) == 17, np.nan, 1).astype(np.float32),
     r"NaN or inf values at 1 time step"),
])
def test_bad_features_get_clear_errors(simple, array, pattern):
    np.save(simple / "feats" / "v1.npy", array)
    ds = make_dataset("thumos", False, ["test"], **_kwargs(simple))
    with pytest.raises(ValueError, match=r"video 'v1' \(.*v1.npy\).*" + pattern):
        ds[0]


def test_malformed_json_names_file_and_position(simple):
    (simple / "ann.json").write_text('{"database": {"v1": {"subset": "Test",, }}}')
    with pytest.raises(ValueError, match=r"ann.json: malformed JSON at line 1, column 39"):
        make_dataset("thumos", False, ["test"], **_kwargs(simple))


def test_label_outside_num_classes(simple):
    _write_json(simple / "ann.json", {"v1": _video(acts=((1, 2, "a", 0), (3, 4, "b", 2)))})
    with pytest.raises(ValueError, match=r"video 'v1' has label 'b' with label_id 2; expected "
                                         r"an integer in \[0, 2\)"):
        make_dataset("thumos", False, ["test"], **_kwargs(simple))


def test_class_count_mismatch(simple):
    with pytest.raises(ValueError, match=r"2 classes in the annotations, but "
                                         r"dataset.num_classes is 3"):
        make_dataset("thumos", False, ["test"], **_kwargs(simple, num_classes=3))


def test_segment_past_duration_warns_once_and_keeps_values(simple):
    _write_json(simple / "ann.json", {
        "v1": _video(duration=5.0, acts=((1, 9, "a", 0), (2, 3, "b", 1))),
        "v2": _video(duration=5.0, acts=((4, 6, "a", 0), (2, 3, "b", 1)))})
    with pytest.warns(UserWarning) as record:
        ds = make_dataset("thumos", False, ["test"], **_kwargs(simple))
    assert len(record) == 1 and "2 video(s)" in str(record[0].message)
    assert ds[0]["segments"][0, 1].item() == 9 * 30 / 4 - 2  # not clipped


def test_empty_split_lists_the_subsets(simple):
    with pytest.raises(ValueError, match=r"no video of split \['training'\].*subsets present: "
                                         r"Test, Validation"):
        make_dataset("thumos", False, ["training"], **_kwargs(simple))


def test_missing_fps_is_reported(simple):
    db = {"v1": _video()}
    del db["v1"]["fps"]
    _write_json(simple / "ann.json", db)
    with pytest.raises(ValueError, match="video 'v1' has no 'fps'"):
        make_dataset("thumos", False, ["test"], **_kwargs(simple, num_classes=1))


def test_unknown_dataset_name_lists_the_valid_ones(simple):
    with pytest.raises(KeyError, match="valid names: anet, ego4d, epic, thumos"):
        make_dataset("thumos14", False, ["test"], **_kwargs(simple))


# ------------------------------------------------------------------------- synthetic tool
def test_synthetic_dataset_is_deterministic_and_loads(tmp_path):
    a = make_synthetic_dataset(str(tmp_path / "a"), num_videos=6, dim=8, min_len=30,
                               max_len=60, seed=7)
    b = make_synthetic_dataset(str(tmp_path / "b"), num_videos=6, dim=8, min_len=30,
                               max_len=60, seed=7)
    assert Path(a["json_file"]).read_text() == Path(b["json_file"]).read_text()
    for name in os.listdir(a["feat_folder"]):
        assert np.array_equal(np.load(Path(a["feat_folder"]) / name),
                              np.load(Path(b["feat_folder"]) / name))
    ds = make_dataset("thumos", False, ["validation", "test"], feat_folder=a["feat_folder"],
                      json_file=a["json_file"], feat_stride=4, num_frames=16, default_fps=None,
                      downsample_rate=1, max_seq_len=64, trunc_thresh=0.5, crop_ratio=None,
                      input_dim=8, num_classes=5,
                      file_prefix=None, file_ext=".npy", force_upsampling=False)
    assert len(ds) == 6
    item = ds[0]
    # segments written in seconds come back on the grid inside the video
    assert (item["segments"][:, 0] >= -1e-3).all()
    assert (item["segments"][:, 1] <= item["feats"].shape[1] + 1e-3).all()


def test_synthetic_features_carry_the_class_signal(tmp_path):
    from make_synthetic_dataset import synthesise_features
    rng = np.random.default_rng(0)
    protos = np.eye(2, 16) * 4.0
    feats = synthesise_features(200, [{"start": 50, "end": 80, "label": 1}], protos, rng,
                                noise=1.0, distractors=0)
    inside, outside = feats[55:75, 1].mean(), feats[120:190, 1].mean()
    assert inside > 2.0 and abs(outside) < 1.0


# ------------------------------------------------------------------------- real annotations
def test_real_thumos14_annotations_with_synthetic_features(real_data_dir, tmp_path):
    src = real_data_dir / "thumos14" / "thumos14.json"
    info = make_synthetic_dataset(str(tmp_path), dim=4, from_json=str(src), seed=0)
    kw = dict(feat_folder=info["feat_folder"], json_file=info["json_file"], feat_stride=4,
              num_frames=16, default_fps=None, downsample_rate=1, max_seq_len=2304,
              trunc_thresh=0.5, crop_ratio=[0.9, 1.0], input_dim=4, num_classes=20,
              file_prefix=None, file_ext=".npy", force_upsampling=False)
    train = make_dataset("thumos", True, ["validation"], **kw)
    with pytest.warns(UserWarning, match="segments ending after"):
        test = make_dataset("thumos", False, ["test"], **kw)
    assert len(train) == 200 and len(test) == 212
    assert len(train.label_dict) == 20
    assert train.label_dict["BaseballPitch"] == 0 and train.label_dict["VolleyballSpiking"] == 19
    video = json.loads(src.read_text())["database"][test.data_list[0]["id"]]
    item = test[0]
    assert item["feats"].shape[1] == round(video["duration"] * video["fps"] / 4)


def test_real_anet_and_epic_annotations_convert_and_load(real_data_dir, tmp_path):
    from convert_annotations import convert_anet, convert_epic, write_json
    anet = convert_anet(str(real_data_dir / "anet1.3"), max_videos=40)
    val = {k: v for k, v in anet["database"].items() if v["subset"] == "validation"}
    train = {k: v for k, v in anet["database"].items() if v["subset"] == "training"}
    assert train and all(a["label_id"] < 200 for v in train.values() for a in v["annotations"])
    path = tmp_path / "anet.json"
    write_json({"database": train}, str(path))
    info = make_synthetic_dataset(str(tmp_path / "anet"), dim=4, from_json=str(path), seed=0,
                                  fps=15, feat_stride=16)
    ds = make_dataset("anet", True, ["training"], feat_folder=info["feat_folder"],
                      json_file=info["json_file"], feat_stride=16, num_frames=16,
                      default_fps=15, downsample_rate=1, max_seq_len=192, trunc_thresh=0.5,
                      crop_ratio=[0.9, 1.0], input_dim=4, num_classes=1, file_prefix="",
                      file_ext=".npy", force_upsampling=True)
    assert len(ds) == len(train) and ds[0]["feats"].shape[0] == 4
    assert val is not None

    epic = convert_epic(str(real_data_dir / "epic100"), task="noun")
    assert sum(len(v["annotations"]) for v in epic["database"].values()) == 9668
    subset = dict(list(epic["database"].items())[:3])
    path = tmp_path / "epic.json"
    write_json({"database": subset}, str(path))
    info = make_synthetic_dataset(str(tmp_path / "epic"), dim=4, from_json=str(path), seed=0,
                                  fps=30, feat_stride=16, fmt="npz")
    ds = make_dataset("epic", False, ["validation"], feat_folder=info["feat_folder"],
                      json_file=info["json_file"], feat_stride=16, num_frames=32,
                      default_fps=30, downsample_rate=1, max_seq_len=2304, trunc_thresh=0.3,
                      crop_ratio=None, input_dim=4, num_classes=300, file_prefix=None,
                      file_ext=".npz", force_upsampling=False)
    assert len(ds) == 3 and len(ds.get_attributes()["empty_label_ids"]) > 200
