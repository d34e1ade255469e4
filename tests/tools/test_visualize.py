"""tools/visualize.py: input formats, per-class top-k selection, lanes, the matplotlib extra.

Oracles: small hand-written results (eval_results.pkl dict of docs/reference.md §7.8, and the infer
JSON list that tools/infer.py writes) whose expected grouping/selection is read off by hand.
The drawing test runs only where matplotlib is installed (an optional extra).
"""
from __future__ import annotations

import builtins
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import visualize as vis  # noqa: E402


def _results() -> dict:
    return {"video-id": ["v1", "v1", "v2", "v1", "v1", "v1", "v1"],
           "t-start": np.array([1.0, 2.0, 0.5, 3.0, 4.0, 5.0, 6.0], np.float32),
           "t-end": np.array([2.0, 3.0, 1.5, 4.0, 5.0, 6.0, 7.0], np.float32),
           "label": np.array([0, 0, 1, 0, 1, 0, 1], np.int64),
           "score": np.array([0.3, 0.9, 0.4, 0.5, 0.8, 0.1, 0.05], np.float32)}


def _pkl(tmp_path: Path) -> Path:
    path = tmp_path / "eval_results.pkl"
    path.write_bytes(pickle.dumps(_results()))
    return path


def _infer_json(tmp_path: Path) -> Path:
    data = [{"video_id": "clip/01", "fps": 30.0, "duration": 20.0, "detections": [
        {"start": 2.0, "end": 6.0, "label_id": 1, "label": "stir", "score": 0.8},
        {"start": 3.0, "end": 5.0, "label_id": 0, "label": "pour", "score": 0.6},
        {"start": 4.0, "end": 9.0, "label_id": 1, "label": "stir", "score": 0.4}]}]
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(data))
    return path


def _gt_json(tmp_path: Path) -> Path:
    db = {"clip/01": {"subset": "validation", "duration": 20.0, "annotations": [
              {"label": "stir", "label_id": 1, "segment": [2.5, 6.5]}]},
          "v1": {"subset": "validation", "duration": 10.0, "annotations": [
              {"label": "pour", "label_id": 0, "segment": [2.0, 3.0]},
              {"label": "stir", "label_id": 1, "segment": [4.0, 5.0]}]},
          "t1": {"subset": "training", "duration": 8.0, "annotations": [
              {"label": "cut", "label_id": 2, "segment": [1.0, 2.0]}]}}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"database": db}))
    return path


def test_load_eval_results_pkl(tmp_path):
    dets, durations = vis.load_detections(str(_pkl(tmp_path)))
    assert durations == {} and sorted(dets) == ["v1", "v2"]
    assert [d["score"] for d in dets["v1"]] == pytest.approx([0.9, 0.8, 0.5, 0.3, 0.1, 0.05])
    best = dets["v1"][0]
    assert (best["start"], best["end"], best["label_id"], best["label"]) == (2.0, 3.0, 0, None)
    assert dets["v2"][0]["label_id"] == 1


def test_load_infer_json(tmp_path):
    dets, durations = vis.load_detections(str(_infer_json(tmp_path)))
    assert durations == {"clip/01": 20.0}
    assert [(d["label"], d["score"]) for d in dets["clip/01"]] == [
        ("stir", 0.8), ("pour", 0.6), ("stir", 0.4)]


def test_bad_result_files(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"video-id": ["a"], "t-start": [1.0]}))
    with pytest.raises(ValueError, match=r"bad.pkl: expected a dict with keys"):
        vis.load_detections(str(bad))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"video_id": "a"}))
    with pytest.raises(ValueError, match=r"bad.json: expected a list"):
        vis.load_detections(str(bad))
    bad.write_text(json.dumps([{"video_id": "a", "detections": [{"start": 1.0}]}]))
    with pytest.raises(ValueError, match=r"video a, detection 0 lacks \['end', 'label_id'"):
        vis.load_detections(str(bad))
    with pytest.raises(FileNotFoundError, match="results file not found"):
        vis.load_detections(str(tmp_path / "none.pkl"))


def test_top_per_class_and_min_score(tmp_path):
    dets, _ = vis.load_detections(str(_pkl(tmp_path)))
    # v1: class 0 scores 0.9, 0.5, 0.3, 0.1; class 1 scores 0.8, 0.05
    kept = vis.top_per_class(dets["v1"], topk=2, min_score=0.2)
    assert [d["label_id"] for d in kept] == [0, 0, 1]
    assert [d["score"] for d in kept] == pytest.approx([0.9, 0.5, 0.8])
    kept = vis.top_per_class(dets["v1"], topk=0, min_score=0.0)
    assert len(kept) == 6
    assert vis.top_per_class(dets["v1"], topk=3, min_score=0.95) == []


def test_group_results_hand_built_dict():
    dets = vis.group_results(_results())
    assert list(dets) == ["v1", "v2"]  # first appearance
    # v1 rows 1, 4, 3, 0, 5, 6 by score; each row's start/end/label kept together
    assert [(d["start"], d["end"], d["label_id"]) for d in dets["v1"]] == [
        (2.0, 3.0, 0), (4.0, 5.0, 1), (3.0, 4.0, 0), (1.0, 2.0, 0), (5.0, 6.0, 0),
        (6.0, 7.0, 1)]
    assert dets["v2"] == [{"start": 0.5, "end": 1.5, "label_id": 1, "label": None,
                           "score": pytest.approx(0.4)}]
    res = _results()
    res["score"] = res["score"][:3]
    with pytest.raises(ValueError, match=r"different lengths \(7 vs \[7, 7, 7, 3\]\)"):
        vis.group_results(res)
    del res["label"]
    with pytest.raises(ValueError, match="expected a dict with keys"):
        vis.group_results(res)


def test_prepare_videos_selection():
    dets = vis.group_results(_results())
    gt = {"g1": {"duration": 30.0, "actions": [(1.0, 2.0, 2)]},
          "v1": {"duration": 10.0, "actions": [(2.0, 3.0, 0), (4.0, 5.0, 1)]}}
    plan = vis.prepare_videos(dets, gt, {"v2": 12.0}, num_videos=0, topk=1, min_score=0.0)
    # ground-truth videos first (g1 has no detection), then the result-only video v2
    assert [p["video_id"] for p in plan] == ["g1", "v1", "v2"]
    g1, v1, v2 = plan
    assert g1 == {"video_id": "g1", "duration": 30.0, "gt": [(1.0, 2.0, 2)],
                  "detections": [], "num_detections": 0}
    # top-1 per class: class 0 -> 0.9 [2, 3], class 1 -> 0.8 [4, 5]
    assert [(d["label_id"], d["start"]) for d in v1["detections"]] == [(0, 2.0), (1, 4.0)]
    assert v1["num_detections"] == 6 and v1["duration"] == 10.0 and len(v1["gt"]) == 2
    assert v2["duration"] == 12.0 and v2["gt"] == []  # duration from the infer JSON
    # the first N videos; explicit ids in the given order; min-score
    assert [p["video_id"] for p in vis.prepare_videos(dets, gt, num_videos=2)] == ["g1", "v1"]
    plan = vis.prepare_videos(dets, gt, videos=["v2", "v1"], num_videos=1, topk=0,
                              min_score=0.45)
    assert [p["video_id"] for p in plan] == ["v2", "v1"]
    assert plan[0]["detections"] == [] and len(plan[1]["detections"]) == 3  # 0.9, 0.8, 0.5
    with pytest.raises(ValueError, match=r"\['nope'\] are neither in the results"):
        vis.prepare_videos(dets, gt, videos=["nope"])


def test_assign_lanes():
    # (5, 9) starts where (0, 5) ends: same lane; (3, 8) overlaps both: second lane
    assert vis.assign_lanes([(0, 5), (3, 8), (5, 9), (10, 12)]) == [0, 1, 0, 0]
    assert vis.assign_lanes([(2, 4), (0, 10), (1, 3)]) == [2, 0, 1]
    assert vis.assign_lanes([]) == []


def test_load_ground_truth(tmp_path):
    gt, names = vis.load_ground_truth(str(_gt_json(tmp_path)), ["Validation"])
    assert sorted(gt) == ["clip/01", "v1"]  # the training video is filtered out
    assert names == {0: "pour", 1: "stir", 2: "cut"}  # names come from every subset
    assert gt["v1"] == {"duration": 10.0, "actions": [(2.0, 3.0, 0), (4.0, 5.0, 1)]}
    gt, names = vis.load_ground_truth(str(_gt_json(tmp_path)), None, class_agnostic=True)
    assert len(gt) == 3 and names == {0: "action"}
    assert {a[2] for v in gt.values() for a in v["actions"]} == {0}


def test_missing_matplotlib_via_sys_modules(tmp_path, monkeypatch):
    # a None entry in sys.modules makes `import matplotlib` raise ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(vis.MissingMatplotlib, match="pip install matplotlib"):
        vis.visualize(str(_pkl(tmp_path)), out_dir=str(tmp_path / "out"))


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named '{name}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    # raised before any input is read (the results path does not even exist)
    with pytest.raises(vis.MissingMatplotlib, match="pip install matplotlib"):
        vis.visualize(str(tmp_path / "none.pkl"), out_dir=str(tmp_path / "out"))
    assert vis.main([str(_pkl(tmp_path)), "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "needs matplotlib" in err and "pip install matplotlib" in err and ".[vis]" in err
    assert not (tmp_path / "out").exists()


def test_png_per_video(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    paths = vis.visualize(str(_infer_json(tmp_path)), gt_json=str(_gt_json(tmp_path)),
                          split=["validation"], topk=1, out_dir=str(out), log=lambda m: None)
    # ground-truth videos of the split, then result-only videos; '/' made file-name safe
    assert [Path(p).name for p in paths] == ["clip_01.png", "v1.png"]
    for p in paths:
        data = Path(p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    # CLI with a pickle and an explicit video list
    assert vis.main([str(_pkl(tmp_path)), "--gt", str(_gt_json(tmp_path)), "--videos", "v2",
                     "--topk", "2", "--min-score", "0.2", "--out-dir", str(out)]) == 0
    assert (out / "v2.png").is_file()
    assert vis.main([str(_pkl(tmp_path)), "--videos", "nope", "--out-dir", str(out)]) == 1
    assert "['nope'] are neither in" in capsys.readouterr().err
    # --results as an option, and --num-videos: only the first of v1, v2
    other = tmp_path / "other"
    assert vis.main(["--results", str(_pkl(tmp_path)), "--num-videos", "1",
                     "--out-dir", str(other)]) == 0
    assert sorted(p.name for p in other.iterdir()) == ["v1.png"]
    with pytest.raises(SystemExit):
        vis.main([str(_pkl(tmp_path)), "--results", str(_pkl(tmp_path))])
