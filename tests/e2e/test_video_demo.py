"""tools/demo.py --video (tools/video_demo.py): the offline video demo, small checks and a dry run.

Oracles: the generated tables against their definition (the control shuffles only training
labels, keeping each label's count), the event videos decoded back (colour inside an event,
grey noise outside), and the dry run's files and printed report inspected on disk.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from libs.video.decode import FrameSize, decode_frames
from libs.video.synthetic import CLASS_COLOURS, event_video, random_events

from .conftest import run_script

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import video_demo  # noqa: E402


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_shuffled_table_permutes_training_labels_only(tmp_path):
    rows = [{"video": f"training_{i}", "start": 1.0, "end": 2.0, "label": c,
             "subset": "training"} for i, c in enumerate("rrrgggbbb")]
    rows += [{"video": "validation_0", "start": 1.0, "end": 3.0, "label": "g",
              "subset": "validation"},
             {"video": "heldout_000", "start": 2.0, "end": 4.0, "label": "b",
              "subset": "heldout"}]
    labels, shuffled, classes = video_demo.write_tables(str(tmp_path), rows, seed=0)
    true, shuf = _read(labels), _read(shuffled)
    assert [r["video"] for r in true] == [r["video"] for r in rows[:-1]]  # held out: no row
    assert [(r["video"], r["start"], r["end"]) for r in shuf] == \
        [(r["video"], r["start"], r["end"]) for r in true]
    train = [i for i, r in enumerate(true) if r["subset"] == "training"]
    assert Counter(shuf[i]["label"] for i in train) == Counter("rrrgggbbb")
    # independence by hand: 3 actions of each of 3 classes -> every (true, new) pair once
    assert Counter((true[i]["label"], shuf[i]["label"]) for i in train) == \
        Counter({(a, b): 1 for a in "rgb" for b in "rgb"})
    assert shuf[-1] == true[-1]  # evaluation labels stay true
    assert Path(classes).read_text() == "red\ngreen\nblue\n"


def test_independent_permutation_is_a_permutation_near_independence():
    labels = list("rrrrrrggggggggbbbbbbbbbb")  # 6 / 8 / 10
    perm = video_demo.independent_permutation(labels, seed=5)
    assert sorted(perm.tolist()) == list(range(24))
    pairs = Counter((labels[i], labels[j]) for i, j in enumerate(perm))
    for a, na in (("r", 6), ("g", 8), ("b", 10)):
        for b, nb in (("r", 6), ("g", 8), ("b", 10)):
            assert abs(pairs[(a, b)] - na * nb / 24) <= 1.5, (a, b, pairs)


def test_balanced_events_have_equal_class_counts():
    lists = video_demo.balanced_events(np.random.default_rng(0), 30, video_demo.FULL)
    counts = Counter(c for events in lists for _, _, c in events)
    assert sorted(counts) == [0, 1, 2] and max(counts.values()) - min(counts.values()) <= 1


def test_random_events_are_apart_and_inside():
    rng = np.random.default_rng(0)
    for _ in range(50):
        events = random_events(rng, 24.0, 3, 2.0, 6.0, 3)
        assert 1 <= len(events) <= 3
        for (s, e, c), nxt in zip(events, events[1:] + [None]):
            assert 1.0 <= s and e <= 23.0 and e - s >= 2.0 and c in (0, 1, 2)
            if nxt is not None:
                assert nxt[0] >= e + 1.0


def test_event_video_shows_the_class_colour(tmp_path):
    path = event_video(tmp_path / "e.mp4", 3.0, [(1.0, 2.0, 2)], fps=10, size=(64, 48))
    frames = list(decode_frames(str(path), 10.0, FrameSize(resize_to=(48, 64))))
    assert len(frames) == 30
    centre = [f[18:30, 26:38].reshape(-1, 3).mean(0) for f in frames]
    for k in range(30):
        if 10 <= k < 20:  # 1.0 <= k / 10 < 2.0: blue square
            assert np.abs(centre[k] - CLASS_COLOURS[2]).max() < 20, (k, centre[k])
        else:  # grey noise around 110
            assert np.abs(centre[k] - 110).max() < 20, (k, centre[k])


def test_help_lists_the_options(repo_root):
    proc = run_script(repo_root, "tools/demo.py", "--video", "--help", timeout=60)
    assert "--dry-run" in proc.stdout and "--work-dir" in proc.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_video_dry_run_end_to_end(repo_root):
    proc = run_script(repo_root, "tools/demo.py", "--video", "--dry-run", "--keep", timeout=300)
    out = proc.stdout
    kept = re.search(r"\[demo\] kept (\S+)", out)
    assert kept, out[-2000:]
    work = Path(kept.group(1))
    try:
        for step in ("tools/make_annotations.py", "tools/extract_features.py",
                     "tools/make_config.py", "tools/check_dataset.py", "train.py", "eval.py",
                     "tools/infer.py"):
            assert f"[demo] $ {step}" in out, step
        assert "RANDOM weights" in out
        assert len(list((work / "videos").glob("*.mp4"))) == 6
        assert len(list((work / "features").glob("*.npy"))) == 6
        for name in ("labels", "shuffled"):
            assert (work / f"annotations_{name}.json").is_file()
            assert (work / "ckpt" / f"video_demo_{name}_demo" / "epoch_002.pth.tar").is_file()
        dets = json.loads((work / "heldout_detections.json").read_text())
        assert [r["video_id"] for r in dets] == ["heldout_000"]
        assert dets[0]["fps"] == 10.0 and dets[0]["duration"] == pytest.approx(12.0)
        report = json.loads((work / "report.json").read_text())
        got = re.search(r"\[demo\] Average mAP: ([0-9.]+) \(%\) with the true training labels "
                        r"\(tIoU 0\.5: [0-9.]+ %\)", out)
        ctl = re.search(r"\[demo\] Average mAP: ([0-9.]+) \(%\) with shuffled training labels "
                        r"\(tIoU 0\.5: [0-9.]+ %; the control: the shuffle left \d+ of \d+ "
                        r"training labels unchanged, chance 1/3\)", out)
        assert got and ctl, out[-2000:]
        assert float(got.group(1)) == pytest.approx(report["average_map"], abs=0.005)
        assert float(ctl.group(1)) == pytest.approx(report["average_map_shuffled_labels"],
                                                    abs=0.005)
        assert report["features"]["backbone"] == "r3d_18" and report["heldout_truth"]
        assert 0.0 <= report["map_at_0.5"] <= 100.0
        assert 0.0 <= report["map_at_0.5_shuffled_labels"] <= 100.0
        assert "[demo] total time" in out
    finally:
        shutil.rmtree(work, ignore_errors=True)
