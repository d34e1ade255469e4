"""tools/check_dataset.py: a good data set passes, each kind of breakage is reported.

Oracles: a synthetic data set written by tools/make_synthetic_dataset.py (known layout, fps 30,
feat_stride 4, num_frames 16), broken on purpose in one way per test; expected counts and
lengths are computed here from the JSON and the arrays (seconds * fps / stride, docs/reference.md
§2.5), not by the tool. configs/custom_template.yaml must load with load_config.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import yaml

from libs.core import load_config, max_div_factor

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import check_dataset as cd  # noqa: E402
from make_synthetic_dataset import make_synthetic_dataset  # noqa: E402

FPS, STRIDE, DIM = 30.0, 4, 16


@pytest.fixture(scope="module")
def base_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(str(out), num_videos=12, dim=DIM, min_len=60, max_len=300, seed=3)
    return out


@pytest.fixture
def ds(base_dataset, tmp_path) -> Path:
    """A private copy to break."""
    dst = tmp_path / "ds"
    shutil.copytree(base_dataset, dst)
    return dst


def _write_config(ds: Path, path: Path, dataset: Dict[str, Any] = None,
                  model: Dict[str, Any] = None, name: str = "thumos", **top: Any) -> str:
    cfg = {
        "dataset_name": name, "train_split": ["validation"], "val_split": ["test"],
        "dataset": {"json_file": str(ds / "annotations" / "synthetic.json"),
                    "feat_folder": str(ds / "features"), "file_prefix": None,
                    "file_ext": ".npy", "num_classes": 5, "input_dim": DIM,
                    "feat_stride": STRIDE, "num_frames": 16, "max_seq_len": 256,
                    "crop_ratio": [0.9, 1.0], **(dataset or {})},
        "model": {"n_mha_win_size": 9, "embd_dim": 32, "fpn_dim": 32, "head_dim": 32,
                  **(model or {})},
        "output_folder": str(path.parent / "ckpt"), **top,
    }
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _json(ds: Path) -> Dict[str, Any]:
    return json.loads((ds / "annotations" / "synthetic.json").read_text())


def _save_json(ds: Path, data: Dict[str, Any]) -> None:
    (ds / "annotations" / "synthetic.json").write_text(json.dumps(data))


def _ids(ds: Path, subset: str):
    return [k for k, v in _json(ds)["database"].items() if v["subset"] == subset]


def _one(messages, needle: str) -> str:
    hits = [m for m in messages if needle in m]
    assert len(hits) == 1, (needle, messages)
    return hits[0]


def test_good_dataset_is_clean(ds, tmp_path, capsys):
    cfg = _write_config(ds, tmp_path / "good.yaml")
    # the window divisibility the test config relies on: 256 % (32 * 8) == 0
    assert max_div_factor(load_config(cfg)["model"]) == 256
    rep = cd.check_dataset(cfg)
    assert rep.errors == [] and rep.warnings == []
    assert cd.main([cfg]) == 0
    out = capsys.readouterr().out
    assert "0 error(s), 0 warning(s)" in out
    assert "NaN/inf: none in all 12 videos" in out
    # per-level counts add up to every action of the checked splits
    n_actions = sum(len(v["annotations"]) for v in _json(ds)["database"].values())
    levels = [int(line.split("]): ")[1].split()[0]) for line in out.splitlines()
              if line.strip().startswith("level ")]
    assert len(levels) == 6 and sum(levels) == n_actions


def test_cli_exit_codes(ds, tmp_path):
    good = _write_config(ds, tmp_path / "good.yaml")
    bad = _write_config(ds, tmp_path / "bad.yaml", dataset={"input_dim": 32})
    script = str(ROOT / "tools" / "check_dataset.py")
    ok = subprocess.run([sys.executable, script, good], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    fail = subprocess.run([sys.executable, script, bad], capture_output=True, text=True)
    assert fail.returncode == 1
    assert "ERROR:" in fail.stdout and "input_dim 32" in fail.stdout


def test_transposed_features(ds, tmp_path):
    vid = _ids(ds, "Validation")[1]
    path = ds / "features" / f"{vid}.npy"
    np.save(path, np.load(path).T)
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml"))
    msg = _one(rep.errors, "transposed")
    assert vid in msg and "1 video(s)" in msg and "(T, C)" in msg


def test_wrong_input_dim(ds, tmp_path):
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml", dataset={"input_dim": 24}))
    msg = _one(rep.errors, "feature width")
    assert "12 video(s)" in msg and "input_dim 24" in msg and f", {DIM})" in msg
    assert not any("transposed" in m for m in rep.errors)


def test_missing_feature_file(ds, tmp_path):
    test_vid = _ids(ds, "Test")[0]
    train_vid = _ids(ds, "Validation")[0]
    (ds / "features" / f"{train_vid}.npy").unlink()
    cfg = _write_config(ds, tmp_path / "c.yaml")
    rep = cd.check_dataset(cfg)
    # thumos skips a training video without features: a warning
    assert rep.errors == []
    assert train_vid in _one(rep.warnings, "no feature file")
    # an evaluation video without features still counts in the mAP: an error
    (ds / "features" / f"{test_vid}.npy").unlink()
    rep = cd.check_dataset(cfg)
    msg = _one(rep.errors, "no feature file")
    assert "2 video(s)" in msg and test_vid in msg and train_vid in msg
    assert cd.main([cfg]) == 1


def test_extra_feature_file(ds, tmp_path):
    np.save(ds / "features" / "not_in_json.npy", np.zeros((10, DIM), np.float32))
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml"))
    assert rep.errors == []
    assert "not_in_json" in _one(rep.warnings, "belong to no video")


def test_label_id_outside_num_classes(ds, tmp_path):
    data = _json(ds)
    for video in data["database"].values():
        for act in video["annotations"]:
            if act["label_id"] == 4:
                act["label_id"] = 5
    _save_json(ds, data)
    cfg = _write_config(ds, tmp_path / "c.yaml")
    rep = cd.check_dataset(cfg)
    msg = _one(rep.errors, "outside [0, 5)")
    assert "label_id(s) 5" in msg
    assert cd.main([cfg]) == 1


def test_class_count_and_label_consistency(ds, tmp_path):
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml", dataset={"num_classes": 6}))
    assert "5 classes in the annotations, but dataset.num_classes is 6" in " ".join(rep.errors)
    # epic accepts fewer classes than num_classes and names the empty ids
    rep = cd.check_dataset(_write_config(ds, tmp_path / "e.yaml", name="epic",
                                         dataset={"num_classes": 6}))
    assert "outside" not in " ".join(rep.errors)
    assert "(5)" in _one(rep.warnings, "have no annotation")
    data = _json(ds)
    first = next(iter(data["database"].values()))["annotations"][0]
    first["label_id"] = (first["label_id"] + 1) % 5  # same label, second id
    _save_json(ds, data)
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml"))
    assert f"'{first['label']}'" in _one(rep.errors, "more than one label_id")
    assert _one(rep.errors, "shared by several labels")


def test_segment_past_duration_is_a_warning(ds, tmp_path):
    data = _json(ds)
    vid = _ids(ds, "Test")[0]
    video = data["database"][vid]
    video["annotations"][0]["segment"][1] = video["duration"] + 5.0
    _save_json(ds, data)
    cfg = _write_config(ds, tmp_path / "c.yaml")
    rep = cd.check_dataset(cfg)
    assert rep.errors == []
    assert vid in _one(rep.warnings, "after the video's duration")
    assert cd.main([cfg]) == 0


def test_empty_segment_and_missing_fps_are_errors(ds, tmp_path):
    data = _json(ds)
    vid_a, vid_b = _ids(ds, "Validation")[:2]
    seg = data["database"][vid_a]["annotations"][0]["segment"]
    seg[1] = seg[0]
    del data["database"][vid_b]["fps"]
    _save_json(ds, data)
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml"))
    assert vid_a in _one(rep.errors, "end <= start")
    assert vid_b in _one(rep.errors, "no 'fps'")
    rep = cd.check_dataset(_write_config(ds, tmp_path / "d.yaml",
                                         dataset={"default_fps": FPS}))
    assert not any("no 'fps'" in m for m in rep.errors)


def test_action_longer_than_last_regression_range(ds, tmp_path):
    ranges = [[0, 2], [2, 4], [4, 8], [8, 16], [16, 24], [24, 25]]
    lengths = [(a["segment"][1] - a["segment"][0]) * FPS / STRIDE
               for v in _json(ds)["database"].values() for a in v["annotations"]]
    too_long = sum(1 for n in lengths if n > 25)
    no_level = sum(1 for n in lengths if n / 2 > 25)  # even the centre point is out of range
    assert too_long > no_level > 0  # the synthetic actions reach ~60 grid steps
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml",
                                         model={"regression_range": ranges}))
    msg = _one(rep.warnings, "longer than the largest regression range")
    assert msg.startswith(f"{too_long} action(s)") and "upper bound 25" in msg
    assert _one(rep.warnings, "fall in no regression range").startswith(f"{no_level} action(s)")
    text = "\n".join(rep.sections["actions vs regression ranges"])
    # the first level whose range holds half the length: (24, 25] is left for the last one
    last = sum(1 for n in lengths if 24 < n / 2 <= 25)
    assert f"level 5 (stride 32, range [24, 25]): {last} actions" in text
    assert rep.errors == []


def test_wrong_feat_stride_shows_as_length_mismatch(ds, tmp_path):
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml", dataset={"feat_stride": 8}))
    msg = _one(rep.warnings, "feature length far from duration")
    data = _json(ds)["database"]
    first = next(iter(data))  # listed in JSON order
    found = np.load(ds / "features" / f"{first}.npy").shape[0]
    expected = data[first]["duration"] * FPS / 8
    assert f"{first}: expected T ~{expected:.0f}, found T {found} " in msg
    assert "12 video(s)" in msg and "feat_stride is probably 4 (" in msg


def test_nan_values(ds, tmp_path):
    vid = _ids(ds, "Test")[1]
    path = ds / "features" / f"{vid}.npy"
    feats = np.load(path)
    feats[3, 2] = np.nan
    np.save(path, feats)
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml"), full_scan=True)
    msg = _one(rep.errors, "NaN/inf")
    assert vid in msg and "all 12 videos" in msg


def test_long_training_videos_and_point_buffer(ds, tmp_path):
    lengths = {p.stem: np.load(p, mmap_mode="r").shape[0] for p in (ds / "features").iterdir()}
    train = _ids(ds, "Validation")
    n_long = sum(1 for v in train if lengths[v] > 128)
    cfg = _write_config(ds, tmp_path / "c.yaml",
                        dataset={"max_seq_len": 128, "crop_ratio": None},
                        model={"n_mha_win_size": 3, "max_buffer_len_factor": 1.0})
    rep = cd.check_dataset(cfg)
    text = "\n".join(line for lines in rep.sections.values() for line in lines)
    assert f"training: {n_long} of {len(train)} videos" in text
    # max_div_factor 64 here: a test video longer than 128 is padded past the 128-step buffer
    over = [v for v in _ids(ds, "Test") if lengths[v] > 128]
    assert over
    msg = _one(rep.errors, "point buffer")
    assert msg.startswith(f"{len(over)} evaluation video(s)") and all(v in msg for v in over)


def test_window_divisibility_is_a_config_error(ds, tmp_path):
    cfg = _write_config(ds, tmp_path / "c.yaml", dataset={"max_seq_len": 200})
    rep = cd.check_dataset(cfg)
    assert "divisible" in _one(rep.errors, "max_seq_len")
    assert cd.main([cfg]) == 1


def test_split_not_in_json(ds, tmp_path):
    rep = cd.check_dataset(_write_config(ds, tmp_path / "c.yaml", val_split=["Test"]))
    assert "lower-case" in _one(rep.errors, "val_split 'Test'")


@pytest.mark.parametrize("fmt,name,extra", [
    ("npz", "epic", {"file_ext": ".npz"}),
    ("ego4d", "ego4d", {}),
    ("h5", "anet", {"force_upsampling": True, "max_seq_len": 192}),
])
def test_other_formats(tmp_path, fmt, name, extra):
    out = tmp_path / fmt
    info = make_synthetic_dataset(str(out), num_videos=6, dim=DIM, min_len=60, max_len=150,
                                  fmt=fmt, seed=1)
    dataset = {"feat_folder": info["feat_folder"], **extra}
    model = {}
    if fmt == "ego4d":
        dataset["input_dim"] = info["input_dim"]  # e.g. [8, 8]: two folders concatenated
        model = {"embd_dim": [16, 16]}
    if fmt == "h5":
        model = {"n_mha_win_size": [7, 7, 7, 7, 7, -1]}
    cfg = _write_config(out, tmp_path / f"{fmt}.yaml", dataset=dataset, model=model, name=name)
    rep = cd.check_dataset(cfg, full_scan=True)
    assert rep.errors == [], rep.format()
    if fmt == "ego4d":  # a width error must count the channels of every folder
        first = sorted((out / "features_1").iterdir())[0]
        np.save(first, np.zeros((np.load(first).shape[0], 3), np.float32))
        rep = cd.check_dataset(cfg)
        assert first.stem in _one(rep.errors, "feature width")


def test_template_config_loads(repo_root):
    path = repo_root / "configs" / "custom_template.yaml"
    cfg = load_config(str(path))
    ds = cfg["dataset"]
    assert cfg["dataset_name"] == "thumos"
    assert ds["json_file"] == "./data/my_dataset/annotations/my_dataset.json"
    assert ds["feat_folder"] == "./data/my_dataset/features"
    # 2304 = 4 * 576, 576 = 32 (coarsest stride) * 18 (window 19 rounded down to even)
    assert max_div_factor(cfg["model"]) == 576
    assert ds["max_seq_len"] % 576 == 0
    # pointing at a data set that does not exist is an error in the report, not a crash
    rep = cd.check_dataset(str(path))
    assert any("annotation file not found" in m for m in rep.errors)
