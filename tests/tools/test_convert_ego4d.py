"""tools/convert_ego4d_trainval.py on a hand-made Ego4D Moment-Queries input
(docs/reference.md §8.1).

Every expected number below is worked out by hand from the input written here:

* clip_a1: frames 36..246 over 1.2..8.2 s -> fps 210 / 7 = 30; prepend 36 mod 16 = 4 frames
  (0.1333 s); (214 - 32) mod 16 = 6 -> append 10 frames (0.3333 s); duration 7.4667 -> 7.47;
  rows [(36 - 4) // 16, (246 + 10 - 32) // 16) = [2, 14). Actions: [2.0, 4.0] s ->
  [2.0 - 1.2 + 0.1333, 4.0 - 1.2 + 0.1333] = [0.93, 2.93], frames [60 - 36 + 4, 120 - 36 + 4]
  = [28, 88]; a 0.2 s action is dropped; a non-primary label is ignored; the second
  annotator's [6.0, 7.5] -> [4.93, 6.43], frames [148, 193].
* clip_a2: starts before the video (-0.1 s, frame -3) -> 0 s / frame 0; 60 frames over 2 s =
  30 fps; no prepend; (60 - 32) mod 16 = 12 -> append 4; rows [0, 2); no action -> features
  but no JSON entry.
* clip_a3: 50 frames over 10 s = 5 fps < 10 -> skipped entirely.
* clip_b1 (val): 100 frames over 3 s = 33.33 fps; append 16 - 4 = 12 frames = 0.36 s ->
  duration 3.36; rows [0, 5); action [1.0, 2.5] s, frames [33, 83].
* vid_c has no Omnivore file, vid_d no SlowFast file: both skipped with a message.

The sample uses three real class names of the shipped label map (tools/ego4d_label_map.txt, the
original's file): two of the seven quoted ones that contain commas, and a plain one. Their ids
there (1, 4, 16) are read off the file by eye; a 3-line map given with ``--label-map`` renumbers
them 0, 1, 2.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import convert_ego4d_trainval as conv  # noqa: E402
from tests._assets import shared_data_path  # noqa: E402

SWEEP = "clean_/_sweep_floor_with_broom"  # line 017 of the shipped map: id 16
CUT = "cut_/_chop_/_slice_a_vegetable,_fruit,_or_meat"  # quoted there, id 1
SAFETY = "put_on_safety_equipment_(e.g._gloves,_helmet,_safety_goggles)"  # quoted there, id 4
SHIPPED_IDS = {SWEEP: 16, CUT: 1, SAFETY: 4}
OVERRIDE_MAP = f'000\t{SWEEP}\n001\t"{CUT}"\n002\t{SAFETY}\n'
OVERRIDE_IDS = {SWEEP: 0, CUT: 1, SAFETY: 2}
# the seven quoted labels of the shipped map (ids 0-6), as the annotations spell them
QUOTED = ["clean_/_repair_small_equipment_(mower,_trimmer_etc.)",
          CUT,
          "level_ground_/_soil_(eg._using_rake,_shovel,_etc)",
          "make_the_bed_/_arrange_pillows,_sheets_etc._on_bed",
          SAFETY,
          "try-out_/_wear_accessories_(e.g._tie,_belt,_scarf)",
          "try-out_/_wear_clothing_items_(e.g._shirt,_jeans,_sweater)"]
# sha256 of the original's tools/ego4d_label_map.txt (110 lines, 4,203 bytes)
SHIPPED_SHA256 = "c25f4f4036398f0786bc0bd40de3070ba03dbd7891420998673ff6827d5a55f4"


def _label(label, t0, t1, f0, f1, primary=True):
    return {"label": label, "video_start_time": t0, "video_end_time": t1,
            "video_start_frame": f0, "video_end_frame": f1, "primary": primary}


def _clip(uid, s0, s1, f0, f1, annotations):
    return {"clip_uid": uid, "video_start_sec": s0, "video_end_sec": s1,
            "video_start_frame": f0, "video_end_frame": f1, "annotations": annotations}


def _feats(rows: int, dim: int, base: float) -> torch.Tensor:
    # row r holds base + r in every column: the saved slice shows which rows were taken
    return torch.arange(rows, dtype=torch.float64)[:, None].repeat(1, dim) + base


@pytest.fixture
def ego4d_root(tmp_path) -> Path:
    root = tmp_path / "ego4d"
    (root / "annotations").mkdir(parents=True)
    train = {"videos": [
        {"video_uid": "vid_a", "split": "train", "clips": [
            _clip("clip_a1", 1.2, 8.2, 36, 246, [
                {"labels": [_label(SWEEP, 2.0, 4.0, 60, 120),
                            _label(SAFETY, 5.0, 5.2, 150, 156),
                            _label(SAFETY, 3.0, 6.0, 90, 180, primary=False)]},
                {"labels": [_label(CUT, 6.0, 7.5, 180, 225)]}]),
            _clip("clip_a2", -0.1, 2.0, -3, 60, []),
            _clip("clip_a3", 10.0, 20.0, 300, 350, [
                {"labels": [_label(SWEEP, 11.0, 12.0, 310, 320)]}]),
        ]},
        {"video_uid": "vid_c", "split": "train", "clips": [
            _clip("clip_c1", 0.0, 2.0, 0, 60, [])]},
    ]}
    val = {"videos": [
        {"video_uid": "vid_b", "split": "val", "clips": [
            _clip("clip_b1", 0.0, 3.0, 0, 100, [
                {"labels": [_label(SAFETY, 1.0, 2.5, 33, 83)]}])]},
        {"video_uid": "vid_d", "split": "val", "clips": [
            _clip("clip_d1", 0.0, 2.0, 0, 60, [])]},
    ]}
    (root / "annotations" / "moments_train.json").write_text(json.dumps(train))
    (root / "annotations" / "moments_val.json").write_text(json.dumps(val))
    sf_dir = root / "features" / "slowfast8x8_r101_k400"
    om_dir = root / "features" / "omnivore_video_swinl"
    sf_dir.mkdir(parents=True)
    om_dir.mkdir(parents=True)
    torch.save(_feats(20, 4, 0.0), sf_dir / "vid_a.pt")
    torch.save(_feats(20, 3, 100.0), om_dir / "vid_a.pt")
    torch.save(_feats(8, 4, 0.0), sf_dir / "vid_b.pt")
    torch.save(_feats(8, 3, 100.0), om_dir / "vid_b.pt")
    torch.save(_feats(8, 4, 0.0), sf_dir / "vid_c.pt")  # no omnivore file
    torch.save(_feats(8, 3, 100.0), om_dir / "vid_d.pt")  # no slowfast file
    return root


def _run(root: Path, messages=None, label_map: str = conv.DEFAULT_LABEL_MAP):
    log = messages.append if messages is not None else (lambda msg: None)
    return conv.convert_ego4d(label_map, str(root / "annotations"),
                              str(root / "features"), str(root / "features"),
                              str(root / "annotations" / "ego4d.json"), log=log)


def _expected_database(ids):
    return {
        "clip_a1": {"subset": "training", "duration": 7.47, "fps": 30.0, "annotations": [
            {"label": SWEEP, "segment": [0.93, 2.93], "segment(frames)": [28, 88],
             "label_id": ids[SWEEP]},
            {"label": CUT, "segment": [4.93, 6.43], "segment(frames)": [148, 193],
             "label_id": ids[CUT]}]},
        "clip_b1": {"subset": "validation", "duration": 3.36, "fps": 33.33, "annotations": [
            {"label": SAFETY, "segment": [1.0, 2.5], "segment(frames)": [33, 83],
             "label_id": ids[SAFETY]}]},
    }


EXPECTED_DATABASE = _expected_database(SHIPPED_IDS)


def test_align_clip_hand_values():
    grid = conv.align_clip(_clip("a1", 1.2, 8.2, 36, 246, []))
    assert grid["fps"] == pytest.approx(30.0)
    assert (grid["prepend_frames"], grid["append_frames"]) == (4, 10)
    assert grid["prepend_sec"] == pytest.approx(4 / 30) and grid["append_sec"] == \
        pytest.approx(10 / 30)
    assert grid["frames"] == 224 and grid["duration"] == pytest.approx(7.0 + 14 / 30)
    assert (grid["first_row"], grid["end_row"]) == (2, 14)
    # a clip already on the grid gets nothing added: frame 32, 32 + 16 * 4 frames
    grid = conv.align_clip(_clip("x", 32 / 30, 128 / 30, 32, 128, []))
    assert (grid["prepend_frames"], grid["append_frames"]) == (0, 0)
    assert (grid["first_row"], grid["end_row"]) == (2, 6)
    # fps outside [10, 100]
    assert conv.align_clip(_clip("slow", 0.0, 10.0, 0, 50, [])) is None
    assert conv.align_clip(_clip("fast", 0.0, 1.0, 0, 101, [])) is None
    assert conv.align_clip(_clip("ok", 0.0, 1.0, 0, 100, [])) is not None


def test_conversion_outputs(ego4d_root):
    messages = []
    result = _run(ego4d_root, messages)
    written = json.loads((ego4d_root / "annotations" / "ego4d.json").read_text())
    assert written == {"version": "v1", "database": EXPECTED_DATABASE}
    assert list(written["database"]) == ["clip_a1", "clip_b1"]  # video, then clip order
    assert result["database"] == EXPECTED_DATABASE
    stats = result["stats"]
    assert stats["clips_written"] == 3 and stats["clips_bad_fps"] == 1
    assert stats["actions"] == 3 and stats["actions_too_short"] == 1
    assert stats["videos_missing_features"] == 2 and stats["clips_without_actions"] == 1

    sf = ego4d_root / "features" / "slowfast_features"
    om = ego4d_root / "features" / "omnivore_features"
    # written clips, by name; the fps-skipped clip and the skipped videos have no files
    assert sorted(p.name for p in sf.iterdir()) == ["clip_a1.npy", "clip_a2.npy",
                                                    "clip_b1.npy"]
    assert sorted(p.name for p in om.iterdir()) == sorted(p.name for p in sf.iterdir())
    # feature rows: row r of the full video holds r (slowfast) / 100 + r (omnivore)
    for name, rows in (("clip_a1", range(2, 14)), ("clip_a2", range(0, 2)),
                       ("clip_b1", range(0, 5))):
        a_sf, a_om = np.load(sf / f"{name}.npy"), np.load(om / f"{name}.npy")
        assert a_sf.dtype == np.float32 and a_om.dtype == np.float32
        assert a_sf.shape == (len(rows), 4) and a_om.shape == (len(rows), 3)
        np.testing.assert_array_equal(a_sf[:, 0], np.array(rows, dtype=np.float32))
        np.testing.assert_array_equal(a_om[:, 2], 100 + np.array(rows, dtype=np.float32))

    text = "\n".join(messages)
    assert "vid_c" in text and "omnivore_video_swinl" in text and "vid_c.pt" in text
    assert "vid_d" in text and "slowfast8x8_r101_k400" in text and "vid_d.pt" in text


def test_cli_defaults_use_the_shipped_label_map(ego4d_root):
    script = str(ROOT / "tools" / "convert_ego4d_trainval.py")
    # run from the data folder with no arguments and no label map there, as a user would
    proc = subprocess.run([sys.executable, script], cwd=ego4d_root, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    written = json.loads((ego4d_root / "annotations" / "ego4d.json").read_text())
    assert written["database"] == EXPECTED_DATABASE
    assert "skipping video vid_c" in proc.stdout
    assert f"label map: {ROOT / 'tools' / 'ego4d_label_map.txt'} (110 classes)" in proc.stdout


def test_label_map_option_overrides(ego4d_root, capsys):
    other = ego4d_root.parent / "maps" / "labels.txt"
    other.parent.mkdir()
    other.write_text(OVERRIDE_MAP)
    out_json = ego4d_root.parent / "out" / "ego4d.json"
    assert conv.main(["--root", str(ego4d_root), "--label-map", str(other),
                      "--out-json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["database"] == _expected_database(OVERRIDE_IDS)
    # a different map in the input folder (the original's place) is named and not used
    (ego4d_root / "ego4d_label_map.txt").write_text(OVERRIDE_MAP)
    capsys.readouterr()
    assert conv.main(["--root", str(ego4d_root), "--out-json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["database"] == EXPECTED_DATABASE
    local = ego4d_root / "ego4d_label_map.txt"
    assert (f"note: {local} differs from the shipped label map and is ignored (pass "
            f"--label-map {local} to use it)") in capsys.readouterr().out
    # a byte-identical copy there (the original's layout) passes silently
    local.write_bytes((ROOT / "tools" / "ego4d_label_map.txt").read_bytes())
    assert conv.main(["--root", str(ego4d_root), "--out-json", str(out_json)]) == 0
    assert "note:" not in capsys.readouterr().out


def test_cli_input_and_output_folders(ego4d_root, tmp_path):
    out = tmp_path / "converted"
    assert conv.main(["--input-dir", str(ego4d_root), "--output-dir", str(out)]) == 0
    assert json.loads((out / "annotations" / "ego4d.json").read_text()) == \
        {"version": "v1", "database": EXPECTED_DATABASE}
    a1 = np.load(out / "features" / "omnivore_features" / "clip_a1.npy")
    np.testing.assert_array_equal(a1[:, 0], 100 + np.arange(2, 14, dtype=np.float32))
    # nothing is written into the input folder
    assert not (ego4d_root / "annotations" / "ego4d.json").exists()
    assert not (ego4d_root / "features" / "slowfast_features").exists()


def test_label_map_parsing(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text('000\tpour\n\n001\t"cut, slice"\r\n002\tstir\n')
    assert conv.read_label_map(str(path)) == {"pour": 0, "cut, slice": 1, "stir": 2}
    path.write_text("000\tpour\n001 cut\n")
    with pytest.raises(ValueError, match=r"map.txt:2: expected '<index><TAB><label>'"):
        conv.read_label_map(str(path))
    path.write_text("000\tpour\nabc\tstir\n")
    with pytest.raises(ValueError, match=r"map.txt:2"):
        conv.read_label_map(str(path))
    path.write_text("000\tpour\n001\tpour\n")
    with pytest.raises(ValueError, match="listed twice"):
        conv.read_label_map(str(path))
    with pytest.raises(FileNotFoundError, match="ego4d_label_map.md"):
        conv.read_label_map(str(tmp_path / "none.txt"))


def test_errors_name_the_problem(ego4d_root, capsys):
    partial = ego4d_root / "partial_map.txt"
    partial.write_text(f"000\t{SWEEP}\n002\t{SAFETY}\n")
    with pytest.raises(ValueError, match=rf"clip clip_a1: label {re.escape(repr(CUT))} is not "):
        _run(ego4d_root, label_map=str(partial))
    assert not (ego4d_root / "annotations" / "ego4d.json").exists()  # nothing half-written
    torch.save(_feats(4, 4, 0.0), ego4d_root / "features" / "slowfast8x8_r101_k400" /
               "vid_b.pt")
    with pytest.raises(ValueError, match=r"vid_b, clip clip_b1: needs feature rows \[0, 5\)"):
        _run(ego4d_root)
    partial.write_text(f"000\t{SWEEP}\n1\n")
    assert conv.main(["--root", str(ego4d_root), "--label-map", str(partial)]) == 1
    assert "partial_map.txt:2" in capsys.readouterr().err


def test_shipped_label_map_is_the_originals_file():
    data = (ROOT / "tools" / "ego4d_label_map.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHIPPED_SHA256
    assert len(data) == 4203 and data.count(b"\n") == 110 and b"\r" not in data


def test_shipped_label_map_equals_the_shared_copy():
    original = shared_data_path("ego4d/ego4d_label_map.txt")  # skipped without ../shared
    assert original.read_bytes() == (ROOT / "tools" / "ego4d_label_map.txt").read_bytes()


def test_shipped_label_map_read_by_the_converter():
    label_map = conv.read_label_map(conv.DEFAULT_LABEL_MAP)
    assert len(label_map) == 110 and sorted(label_map.values()) == list(range(110))
    # the seven labels with commas, quoted in the file, come back exactly, without quotes
    assert {label: i for label, i in label_map.items() if "," in label} == \
        {label: i for i, label in enumerate(QUOTED)}
    assert not any('"' in label for label in label_map)
    assert label_map[SWEEP] == 16 and label_map["write_notes_in_a_paper_/_book"] == 109
    assert label_map["arrange_/_organize_clothes_in_closet/dresser"] == 7
