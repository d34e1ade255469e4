"""tools/make_config.py: configs derived from annotation statistics and the feature grid.

The THUMOS14 test pins the values derived from the real annotations (../shared/data) with the
published I3D grid (30 fps, stride 4, 16-frame clips, 2048 channels), each checkable by hand
(the numbers are re-computed here with plain numpy from the JSON). The small cases are worked
by hand in their comments.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from libs.core import load_config
from libs.datasets.config_builder import derive_config
from libs.datasets.config_stats import FeatureGrid, collect_stats, estimate_num_features
from libs.datasets.config_writer import entries_to_dict

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import make_config  # noqa: E402

THUMOS_GRID = ["--feat-stride", "4", "--num-frames", "16", "--fps", "30", "--input-dim", "2048"]


def _video(subset, duration, acts):
    return {"subset": subset, "duration": duration, "fps": 25.0, "annotations": [
        {"label": label, "label_id": lid, "segment": seg} for label, lid, seg in acts]}


def test_thumos14_derived_values(real_data_dir, tmp_path, capsys):
    ann = real_data_dir / "thumos14" / "thumos14.json"
    out = tmp_path / "thumos.yaml"
    rc = make_config.main(["--annotations", str(ann), "--features", str(tmp_path / "feats"),
                           "--out", str(out), *THUMOS_GRID, "--compare",
                           str(ROOT / "configs" / "thumos_i3d.yaml")])
    assert rc == 0
    cfg = load_config(str(out))  # validates
    # hand check: T = (floor(30 d) - 16) // 4 + 1 per training ('Validation') video
    db = json.loads(ann.read_text())["database"]
    lengths = [(int(v["duration"] * 30) - 16) // 4 + 1 for v in db.values()
               if v["subset"] == "Validation"]
    assert len(lengths) == 200 and 1728 < np.percentile(lengths, 80) <= 2304  # -> 4 x 576
    ds, model, test = cfg["dataset"], cfg["model"], cfg["test_cfg"]
    assert cfg["dataset_name"] == "thumos" and cfg["train_split"] == ["validation"]
    assert cfg["val_split"] == ["test"] and ds["num_classes"] == 20
    assert ds["max_seq_len"] == 2304          # 80th percentile 2,067 steps -> 4 x 576
    assert model["n_mha_win_size"] == 19      # median action 21.75 steps -> 23, capped at 19
    assert list(model["backbone_arch"]) == [2, 2, 5]  # p99 half length 61 <= 64: 6 levels
    assert [list(r) for r in model["regression_range"]] == \
        [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]]
    assert model["max_buffer_len_factor"] == 6.0  # longest test video 12,547 -> 12,672 / 2304
    assert ds["trunc_thresh"] == 0.5 and ds["crop_ratio"] == [0.9, 1.0]
    assert cfg["train_cfg"]["init_loss_norm"] == 100  # 12.6 actions/crop x 3 x 2 = 76 -> 100
    assert test["max_seg_num"] == 300         # densest test video: 218 actions
    assert test["pre_nms_topk"] == 2000 and test["voting_thresh"] == 0.7
    assert ds["default_fps"] == 30.0
    assert max(len(v["annotations"]) for v in db.values() if v["subset"] == "Test") == 218
    text = capsys.readouterr().out
    assert "* dataset.default_fps" in text and "* test_cfg.max_seg_num" in text
    assert "  dataset.max_seq_len" in text and "(2 of 30 values differ, marked *)" in text
    yaml_text = out.read_text()
    assert "# covers 80 % of the training videos (2067 steps)" in yaml_text


def test_small_case_by_hand():
    grid = FeatureGrid(4, 16, 30.0, 64)  # 7.5 steps per second
    db = {f"t{i}": _video("training", 60.0, []) for i in range(1, 6)}
    db["t1"] = _video("training", 60.0, [("a", 0, [1, 3]), ("b", 1, [10, 12])])  # 15, 15 steps
    db["t2"] = _video("training", 60.0, [("a", 0, [5, 9])])                      # 30 steps
    db["e1"] = _video("validation", 60.0, [("a", 0, [1, 2])] * 3)
    lengths = {"t1": 100, "t2": 200, "t3": 300, "t4": 400, "t5": 500, "e1": 1000}
    stats = collect_stats(db, grid, lengths)
    cfg = entries_to_dict(derive_config(stats, grid, "a.json", "feats"))
    assert cfg["model"]["n_mha_win_size"] == 15       # median action 15 steps: odd >= 15
    # p99 half length 14.85 asks for 6 levels, but their max_div_factor 32 x 14 = 448 is
    # longer than the 80th percentile of 100..500 (420): 5 levels, 16 x 14 = 224; 420 -> 448
    assert cfg["model"]["backbone_arch"] == [2, 2, 4]
    assert cfg["dataset"]["max_seq_len"] == 448
    assert cfg["model"]["max_buffer_len_factor"] == 3.0  # 1000 -> 1120 = 2.5 x 448 -> 3
    assert cfg["train_cfg"]["init_loss_norm"] == 50    # 0.6 actions x 3 x 2 = 3.6 -> min 50
    assert cfg["test_cfg"]["max_seg_num"] == 100       # 3 actions -> at least 100
    assert cfg["dataset"]["num_classes"] == 2 and cfg["dataset_name"] == "thumos"


def test_short_actions_and_more_levels():
    grid = FeatureGrid(16, 32, 30.0, 64)  # 1.875 steps per second
    acts = [("a", 0, [0, 2])] * 9 + [("b", 1, [0, 300])]  # 3.75 steps; one of 562.5 steps
    # 1000 s = 1,874 steps: long enough for 8 levels (max_div_factor 128 x 8 = 1024)
    db = {"t": _video("training", 1000.0, acts), "v": _video("validation", 1000.0, acts)}
    cfg = entries_to_dict(derive_config(collect_stats(db, grid), grid, "a.json", "f"))
    # median 3.75 < 8 steps: EPIC-like; window 9; p99 half length ~258 -> 8 levels (cap)
    assert cfg["model"]["n_mha_win_size"] == 9 and cfg["dataset"]["trunc_thresh"] == 0.3
    assert cfg["model"]["backbone_arch"] == [2, 2, 7]
    assert cfg["model"]["regression_range"] == [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64],
                                                [32, 128], [64, 256], [128, 10000]]


def test_short_videos_get_a_smaller_pyramid():
    grid = FeatureGrid(4, 16, 30.0, 64)
    db = {f"t{i}": _video("training", 20.0, [("a", 0, [1, 2.2])]) for i in range(5)}
    db["v"] = _video("validation", 20.0, [("a", 0, [1, 2.2])])
    stats = collect_stats(db, grid)  # every video (600 - 16) // 4 + 1 = 147 steps
    cfg = entries_to_dict(derive_config(stats, grid, "a.json", "f"))
    # action 1.2 s = 9 steps: window 9; 6 levels need multiples of 32 x 8 = 256 > 147, 5 levels
    # of 128 <= 147: 5 levels, max_seq_len 256 (147 rounded up to 2 x 128)
    assert cfg["model"]["n_mha_win_size"] == 9 and cfg["model"]["backbone_arch"] == [2, 2, 4]
    assert cfg["dataset"]["max_seq_len"] == 256
    assert cfg["model"]["regression_range"] == [[0, 4], [4, 8], [8, 16], [16, 32], [32, 10000]]


def test_long_actions_select_resizing():
    grid = FeatureGrid(16, 16, 15.0, 512)
    db = {"t": _video("training", 100.0, [("a", 0, [0, 30]), ("b", 1, [40, 90]),
                                          ("a", 0, [90, 100])]),
          "v": _video("validation", 100.0, [("a", 0, [0, 30]), ("b", 1, [40, 60])])}
    cfg = entries_to_dict(derive_config(collect_stats(db, grid), grid, "a.json", "f"))
    # median action / video 0.3 >= 0.1; 5th percentile 0.12 -> 3 / 0.12 = 25 -> 96
    assert cfg["dataset_name"] == "anet" and cfg["dataset"]["force_upsampling"] is True
    assert cfg["dataset"]["max_seq_len"] == 96
    assert cfg["model"]["n_mha_win_size"] == [7, 7, 7, 7, 7, -1]


def test_estimated_feature_count():
    grid = FeatureGrid(4, 16, 30.0, 8)
    assert estimate_num_features(10.0, grid) == (300 - 16) // 4 + 1 == 72
    assert estimate_num_features(0.3, grid) == 1  # 9 frames < one clip: padded, one feature


def test_manifest_grid_and_errors(tmp_path, capsys):
    manifest = pytest.importorskip("libs.video.manifest")
    feats = tmp_path / "feats"
    feats.mkdir()
    settings = {"backbone": "toy", "weights": {"name": "random"}, "fps": 30, "clip_len": 16,
                "stride": 4, "frames": {"size": 224}, "pixel_normalisation": {},
                "feature_dim": 32, "short_video_policy": manifest.SHORT_VIDEO_POLICY}
    m = manifest.Manifest(settings)
    entry = {"source": "x.mp4", "decoded_frames": 900, "sampled_frames": 900,
             "duration_s": 30.0, "padded": False, "settings_hash": m.hash}
    m.videos = {"a": dict(entry, num_features=500), "b": dict(entry, num_features=221)}
    m.save(str(feats / "manifest.json"))
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps({"database": {
        "a": _video("training", 30.0, [("x", 0, [1, 3])]),
        "b": _video("validation", 30.0, [("x", 0, [2, 4])])}}))
    out = tmp_path / "c.yaml"
    assert make_config.main(["--annotations", str(ann), "--features", str(feats), "--out",
                             str(out)]) == 0
    cfg = load_config(str(out))
    assert cfg["dataset"]["input_dim"] == 32 and cfg["dataset"]["default_fps"] == 30
    # the manifest's count (500), not the duration's (222); the 2 s action is 15 steps:
    # window 15, max_div_factor 448, so 500 -> 896 (222 would give 448)
    assert cfg["dataset"]["max_seq_len"] == 896
    assert make_config.main(["--annotations", str(ann), "--features", str(feats), "--out",
                             str(out), "--fps", "25"]) == 1
    assert "--fps 25.0 (manifest: 30.0)" in capsys.readouterr().err
    assert make_config.main(["--annotations", str(ann), "--features", str(tmp_path), "--out",
                             str(out), "--fps", "25"]) == 1
    assert "give --feat-stride, --num-frames, --input-dim" in capsys.readouterr().err


def test_unused_class_ids_need_npz(tmp_path, capsys):
    ann = tmp_path / "a.json"
    ann.write_text(json.dumps({"database": {
        "a": _video("training", 300.0, [("x", 0, [1, 3]), ("z", 2, [5, 9])])}}))
    args = ["--annotations", str(ann), "--features", str(tmp_path), "--out",
            str(tmp_path / "c.yaml"), *THUMOS_GRID]
    assert make_config.main(args) == 1
    assert ("only 2 of the 3 class ids have an action; the loader of .npy features needs every "
            "class to occur") in capsys.readouterr().err
    assert make_config.main(args + ["--file-ext", ".npz"]) == 0
    cfg = load_config(str(tmp_path / "c.yaml"))
    assert cfg["dataset_name"] == "epic" and cfg["dataset"]["num_classes"] == 3


def test_videos_to_a_config_the_loaders_accept(tmp_path):
    """make_annotations -> feature extraction (toy backbone) -> make_config -> loaders."""
    pytest.importorskip("av")
    from libs.datasets import make_dataset
    from libs.video.extract import extract_features
    from tests.video._toy_backbone import ToyFrames
    from tests.video._videos import make_video

    import check_dataset
    import make_annotations

    videos = tmp_path / "videos"
    videos.mkdir()
    for i, (seconds, fps) in enumerate([(6, 30), (8, 25), (10, 30000 / 1001), (7, 30)]):
        make_video(videos / f"v{i}.mp4", seconds, fps=fps)
    table = tmp_path / "labels.csv"
    table.write_text("video,start,end,label\nv0,1,2.5,a\nv0,3,5,b\nv1,0.5,3,a\nv2,2,4,b\n"
                     "v3,1,2,a\nv3,4,6.5,b\n")
    ann = tmp_path / "ann.json"
    assert make_annotations.main([str(table), "--videos", str(videos), "--out", str(ann),
                                  "--split", "train=0.5"]) == 0
    feats = tmp_path / "feats"
    result = extract_features([str(videos)], str(feats), ToyFrames(16), fps=30.0, clip_len=16,
                              stride=4, log=open(tmp_path / "log.txt", "w"))
    assert not result.failed
    out = tmp_path / "my.yaml"
    assert make_config.main(["--annotations", str(ann), "--features", str(feats), "--out",
                             str(out)]) == 0
    # actions cover a quarter of these short videos: the resize layout; both layouts load
    for mode, name, length in (("auto", "anet", 96), ("per-video", "thumos", None)):
        assert make_config.main(["--annotations", str(ann), "--features", str(feats),
                                 "--out", str(out), "--mode", mode]) == 0
        cfg = load_config(str(out))
        assert cfg["dataset_name"] == name and cfg["dataset"]["input_dim"] == 32
        assert cfg["dataset"]["default_fps"] == 30
        val = make_dataset(name, False, cfg["val_split"], **cfg["dataset"])
        item = val[0]  # (evaluation items are not cropped)
        assert item["feats"].shape[0] == 32 and item["segments"].shape[1] == 2
        if length is not None:
            assert item["feats"].shape[1] == length
        assert check_dataset.main([str(out)]) == 0


def test_epic_and_activitynet_regimes(real_data_dir):
    """The real EPIC-100 (validation CSV) and ActivityNet 1.3 annotations land in the shipped
    configs' regimes (docs/own_videos.md explains the values that differ)."""
    from convert_annotations import convert_anet, convert_epic

    grid = FeatureGrid(16, 32, 30.0, 2304, ".npz")  # SlowFast, as epic_slowfast_*.yaml
    db = convert_epic(str(real_data_dir / "epic100"), "verb")["database"]
    cfg = entries_to_dict(derive_config(collect_stats(db, grid), grid, "a.json", "f"))
    assert cfg["dataset_name"] == "epic" and cfg["dataset"]["trunc_thresh"] == 0.3
    assert cfg["model"]["n_mha_win_size"] == 9 and cfg["model"]["max_buffer_len_factor"] == 4.0
    assert cfg["model"]["regression_range"] == [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64],
                                                [32, 10000]]
    assert cfg["dataset"]["max_seq_len"] == 1024  # 80th percentile 967 steps, 4 x 256
    grid = FeatureGrid(16, 16, 15.0, 512)  # TSP, as anet_tsp.yaml
    db = convert_anet(str(real_data_dir / "anet1.3"))["database"]
    cfg = entries_to_dict(derive_config(collect_stats(db, grid), grid, "a.json", "f"))
    assert cfg["dataset_name"] == "anet" and cfg["dataset"]["force_upsampling"] is True
    assert cfg["dataset"]["max_seq_len"] == 192  # 5th-percentile action 0.0185 -> 162 -> 192
