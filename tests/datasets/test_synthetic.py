"""tools/make_synthetic_dataset.py: deterministic, loadable by every dataset class, learnable.

Oracles: the datasets' own readers (layout), file equality across runs (determinism), and
properties of the signal model (class prototype inside actions, noise as the difficulty knob).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from libs.datasets import make_dataset

from . import _helpers  # noqa: F401  (puts tools/ on sys.path)
from make_synthetic_dataset import main, make_synthetic_dataset, synthesise_features  # noqa

THUMOS_LIKE = dict(feat_stride=4, num_frames=16, default_fps=None, downsample_rate=1,
                   max_seq_len=64, trunc_thresh=0.5, crop_ratio=None, num_classes=5,
                   file_prefix=None, file_ext=".npy", force_upsampling=False)


def test_deterministic_for_a_seed(tmp_path):
    runs = [make_synthetic_dataset(str(tmp_path / name), num_videos=6, dim=8, min_len=30,
                                   max_len=60, seed=seed)
            for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    a, b, c = (Path(r["feat_folder"]) for r in runs)
    assert Path(runs[0]["json_file"]).read_text() == Path(runs[1]["json_file"]).read_text()
    assert Path(runs[0]["json_file"]).read_text() != Path(runs[2]["json_file"]).read_text()
    names = sorted(os.listdir(a))
    assert len(names) == 6 and names == sorted(os.listdir(b))
    for name in names:
        x = np.load(a / name)
        assert x.dtype == np.float32 and np.array_equal(x, np.load(b / name))


def test_thumos_layout_loads_with_every_class_in_training(tmp_path):
    info = make_synthetic_dataset(str(tmp_path), num_videos=10, dim=8, min_len=40,
                                  max_len=80, seed=1)
    assert info["json_file"].endswith(os.path.join("annotations", "synthetic.json"))
    kw = dict(feat_folder=info["feat_folder"], json_file=info["json_file"], input_dim=8,
              **THUMOS_LIKE)
    train = make_dataset("thumos", False, ["validation"], **kw)
    test = make_dataset("thumos", False, ["test"], **kw)
    assert len(train) == 7 and len(test) == 3  # test_fraction 0.3
    assert {int(l) for v in train.data_list for l in v["labels"]} == set(range(5))
    for ds in (train, test):
        for i in range(len(ds)):
            item = ds[i]
            # actions were placed inside the video (seconds rounded to 1 ms = 0.0075 steps)
            assert (item["segments"][:, 0] >= -0.01).all()
            assert (item["segments"][:, 1] <= item["feats"].shape[1] + 0.01).all()
            assert (item["segments"][:, 1] > item["segments"][:, 0]).all()


def test_features_carry_the_class_signal_with_soft_boundaries():
    rng = np.random.default_rng(0)
    protos = np.eye(2, 16) * 4.0
    feats = synthesise_features(200, [{"start": 50, "end": 80, "label": 1}], protos, rng,
                                noise=0.5, distractors=0, ramp=2.0)
    inside, outside = feats[55:75, 1].mean(), feats[120:190, 1].mean()
    assert inside > 2.0 and abs(outside) < 1.0
    assert abs(feats[55:75, 0].mean()) < 1.0  # other classes' channels stay at background
    # soft boundary: the action adds strength * envelope * prototype; the envelope is 1/2 at
    # the annotated start and end and ~1 in the middle (same seed with / without the action)
    act = [{"start": 50, "end": 80, "label": 1}]
    with_act = synthesise_features(200, act, protos, np.random.default_rng(0), noise=0.0,
                                   distractors=0, ramp=2.0)
    without = synthesise_features(200, [], protos, np.random.default_rng(0), noise=0.0,
                                  distractors=0, ramp=2.0)
    added = (with_act - without).astype(np.float64)
    assert np.allclose(added[:, 0], 0.0, atol=1e-5)
    middle = added[65, 1]
    assert 0.7 * 4 <= middle <= 1.3 * 4  # strength in [0.7, 1.3] x prototype 4
    assert added[50, 1] / middle == pytest.approx(0.5, abs=1e-3)
    assert added[80, 1] / middle == pytest.approx(0.5, abs=1e-3)
    assert 0 < added[46, 1] < added[50, 1] < added[54, 1]


def test_noise_is_the_difficulty_knob():
    protos = np.random.default_rng(1).normal(size=(3, 32))
    acts = [{"start": 20 + 60 * k, "end": 50 + 60 * k, "label": k} for k in range(3)]

    def step_accuracy(noise):
        feats = synthesise_features(200, acts, protos, np.random.default_rng(2), noise=noise,
                                    distractors=0)
        pred = (feats @ protos.T).argmax(1)
        return np.mean([np.mean(pred[a["start"] + 3:a["end"] - 3] == a["label"])
                        for a in acts])

    easy, hard = step_accuracy(0.5), step_accuracy(8.0)
    assert easy > 0.95 and 1 / 3 - 0.2 < hard < easy


@pytest.mark.parametrize("fmt,name,extra", [
    ("npz", "epic", dict(file_ext=".npz")),
    ("h5", "anet", dict(force_upsampling=True, default_fps=30, num_classes=1)),
    ("ego4d", "ego4d", dict()),
])
def test_other_formats_load_with_their_dataset(tmp_path, fmt, name, extra):
    if fmt == "h5":
        pytest.importorskip("h5py")
    info = make_synthetic_dataset(str(tmp_path), num_videos=4, dim=9, min_len=30, max_len=50,
                                  fmt=fmt, test_fraction=0.0, seed=2)
    kw = dict(THUMOS_LIKE, feat_folder=info["feat_folder"], json_file=info["json_file"],
              input_dim=info["input_dim"], num_classes=4)
    kw.update(extra)
    ds = make_dataset(name, False, ["validation"], **kw)
    assert len(ds) == 4 and ds[0]["feats"].shape[0] == 9
    if fmt == "ego4d":
        assert info["input_dim"] == [4, 5] and len(info["feat_folder"]) == 2


def test_from_json_sizes_features_like_real_ones(tmp_path):
    db = {"a": {"subset": "Validation", "duration": 10.0, "fps": 25.0,
                "annotations": [{"label": "x", "label_id": 1, "segment": [1.0, 4.0]}]},
          "b": {"subset": "Test", "duration": 7.0, "fps": 30.0, "annotations": []},
          "c": {"subset": "Test", "duration": 3.0, "fps": 30.0, "annotations": []}}
    src = tmp_path / "src.json"
    src.write_text(json.dumps({"version": "v", "database": db}))
    info = make_synthetic_dataset(str(tmp_path / "own"), dim=3, from_json=str(src))
    folder = Path(info["feat_folder"])
    # T = round(duration * fps / feat_stride): 10 * 25 / 4 = 62.5 -> 62 (half to even)
    assert np.load(folder / "a.npy").shape == (62, 3)
    assert np.load(folder / "b.npy").shape == (52, 3)  # 7 * 30 / 4 = 52.5 -> 52
    assert json.loads(Path(info["json_file"]).read_text())["database"] == db
    assert info["class_names"] == ["class_0", "x"]
    # fps given: like a config's default_fps; subsets / max_videos restrict the copy
    info = make_synthetic_dataset(str(tmp_path / "fps"), dim=3, from_json=str(src), fps=16,
                                  feat_stride=16, subsets=["test"], max_videos=1)
    assert sorted(os.listdir(info["feat_folder"])) == ["b.npy"]
    assert np.load(Path(info["feat_folder"]) / "b.npy").shape == (7, 3)
    assert list(json.loads(Path(info["json_file"]).read_text())["database"]) == ["b"]


def test_from_json_needs_a_duration(tmp_path):
    src = tmp_path / "src.json"
    src.write_text(json.dumps({"database": {"a": {"subset": "Test", "fps": 30.0}}}))
    with pytest.raises(ValueError, match="video 'a' needs 'duration' and 'fps'"):
        make_synthetic_dataset(str(tmp_path / "out"), dim=3, from_json=str(src))


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match="need 4 <= min_len <= max_len"):
        make_synthetic_dataset(str(tmp_path), min_len=50, max_len=40)
    with pytest.raises(ValueError, match="unknown format 'pt'"):
        make_synthetic_dataset(str(tmp_path), num_videos=2, dim=2, min_len=10, max_len=20,
                               fmt="pt")


def test_cli(tmp_path, capsys):
    assert main([str(tmp_path), "--videos", "3", "--classes", "2", "--dim", "4",
                 "--min-len", "20", "--max-len", "30", "--difficulty", "2.0",
                 "--format", "npz", "--seed", "3"]) == 0
    assert "wrote 3 videos" in capsys.readouterr().out
    assert len(os.listdir(tmp_path / "features")) == 3
    assert (tmp_path / "annotations" / "synthetic.json").is_file()
