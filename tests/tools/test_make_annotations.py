"""tools/make_annotations.py: label table + video folder -> the loaders' annotation JSON.

Videos are empty files with video extensions and a fake probe gives their duration and fps
(the real probe, libs.video.probe_video, is exercised by the last test when it is present).
Expected values are worked by hand from the tables written in each test.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from libs.datasets import read_annotation_json
from libs.datasets.annotations_builder import (AnnotationTableError, assign_subsets,
                                               build_annotations, parse_split)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import make_annotations  # noqa: E402

INFO = {"a.mp4": (60.0, 30.0), "b.mkv": (30.0, 25.0), "c.mp4": (10.0, 29.97)}


def fake_probe(path):
    duration, fps = INFO[Path(path).name]
    return SimpleNamespace(duration_s=duration, fps=fps)


@pytest.fixture
def videos(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in INFO:
        (folder / name).write_bytes(b"")
    (folder / "notes.txt").write_text("not a video")
    return folder


def _table(tmp_path, text):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return str(path)


def test_table_to_json(tmp_path, videos):
    table = _table(tmp_path, "video,start,end,label\n"
                   "a,1.5,4,jump\n"
                   "a.mp4,10,20.25,run\n"
                   "b,0,30,jump\n")
    data, notes = build_annotations(table, str(videos), fake_probe)
    db = data["database"]
    assert list(db) == ["a", "b", "c"]
    assert db["a"] == {"subset": "training", "duration": 60.0, "fps": 30.0, "annotations": [
        {"label": "jump", "label_id": 0, "segment": [1.5, 4.0]},
        {"label": "run", "label_id": 1, "segment": [10.0, 20.25]}]}
    assert db["b"]["annotations"] == [{"label": "jump", "label_id": 0, "segment": [0.0, 30.0]}]
    # c has no row: in the JSON with its probe values, in subset 'unlabeled', no actions
    assert db["c"] == {"subset": "unlabeled", "duration": 10.0, "fps": 29.97,
                       "annotations": []}
    assert notes[0].startswith("3 videos (training 2, unlabeled 1), 3 actions, 2 classes")


def test_cli_writes_a_file_the_loaders_read(tmp_path, videos, capsys):
    table = _table(tmp_path, "Label,Video,End,Start\njump,a,4,1\nrun,b,9,3\n")
    out = tmp_path / "ann" / "my.json"
    rc = make_annotations.main([table, "--videos", str(videos), "--out", str(out)],
                               probe=fake_probe)
    assert rc == 0 and f"wrote {out}" in capsys.readouterr().out
    db = read_annotation_json(str(out))
    assert db["a"]["annotations"][0]["segment"] == [1.0, 4.0]
    assert db["b"]["annotations"][0]["label_id"] == 1


def test_every_bad_row_is_reported_with_its_line(tmp_path, videos, capsys):
    table = _table(tmp_path, "video,start,end,label\n"
                   "a,5,5,jump\n"          # 2: end <= start
                   "zz,1,2,jump\n"         # 3: unknown video
                   "b,1,31,jump\n"         # 4: past the end (30 s; one frame is 0.04 s)
                   "a,x,3,jump\n"          # 5: malformed start
                   "a,1,nan,jump\n"        # 6: not finite
                   "a,1,2\n"               # 7: too few columns
                   "\n"                    # 8: blank, ignored
                   "a,-1,2,jump\n"         # 9: negative start
                   "a,1,2,\n"              # 10: empty label
                   "b,30.5,31,jump\n"      # 11: starts after the end
                   "a,1,2,jump\n")         # 12: fine
    with pytest.raises(AnnotationTableError) as info:
        build_annotations(table, str(videos), fake_probe)
    assert info.value.problems == [f"{table} line {n}: {msg}" for n, msg in [
        (2, "end 5 s <= start 5 s"),
        (3, "video 'zz' is not in the video folder"),
        (4, "end 31 s is past the end of 'b' (30 s)"),
        (5, "start 'x' is not a number (seconds)"),
        (6, "end 'nan' is not a finite number"),
        (7, "3 columns, the header has 4"),
        (9, "start -1 s is negative"),
        (10, "empty label"),
        (11, "start 30.5 s is at or past the end of 'b' (30 s)")]]
    rc = make_annotations.main([table, "--videos", str(videos), "--out",
                                str(tmp_path / "x.json")], probe=fake_probe)
    err = capsys.readouterr().err
    assert rc == 1 and not (tmp_path / "x.json").exists()
    assert err.startswith("error: 9 problem(s):\n") and f"{table} line 11: start" in err


def test_end_within_one_frame_is_clipped_and_said(tmp_path, videos):
    table = _table(tmp_path, "video,start,end,label\nb,1,30.03,jump\n")  # 1/25 s = 0.04
    data, notes = build_annotations(table, str(videos), fake_probe)
    assert data["database"]["b"]["annotations"][0]["segment"] == [1.0, 30.0]
    assert any("1 action end(s) less than one frame past" in n for n in notes)


def test_class_list_sets_ids_and_rejects_unknown_labels(tmp_path, videos):
    classes = tmp_path / "classes.txt"
    classes.write_text("run\njump\n\nsit\n")
    table = _table(tmp_path, "video,start,end,label\na,1,2,jump\na,3,4,run\nb,1,2,fly\n")
    with pytest.raises(AnnotationTableError, match="line 4: label 'fly' is not in the class"):
        build_annotations(table, str(videos), fake_probe, ["run", "jump", "sit"])
    table = _table(tmp_path, "video,start,end,label\na,1,2,jump\na,3,4,run\n")
    rc = make_annotations.main([table, "--videos", str(videos), "--out",
                                str(tmp_path / "o.json"), "--classes", str(classes)],
                               probe=fake_probe)
    assert rc == 0
    acts = read_annotation_json(str(tmp_path / "o.json"))["a"]["annotations"]
    assert [(a["label"], a["label_id"]) for a in acts] == [("jump", 1), ("run", 0)]


def test_subsets_from_the_table(tmp_path, videos):
    table = _table(tmp_path, "video,start,end,label,subset\na,1,2,x,Training\n"
                   "b,1,2,x,validation\nb,3,4,x,test\n")
    with pytest.raises(AnnotationTableError, match="line 4: video 'b' has subset 'test', but "
                       "'validation' on line 3"):
        build_annotations(table, str(videos), fake_probe)
    table = _table(tmp_path, "video,start,end,label,subset\na,1,2,x,Training\n"
                   "b,1,2,x,validation\n")
    db = build_annotations(table, str(videos), fake_probe, unlabeled_subset="test")[0]["database"]
    assert {k: v["subset"] for k, v in db.items()} == {"a": "training", "b": "validation",
                                                       "c": "test"}
    with pytest.raises(ValueError, match="has a subset column; drop --split"):
        build_annotations(table, str(videos), fake_probe, split=parse_split("train=0.5"))
    with pytest.raises(ValueError, match="cannot be training videos"):
        build_annotations(table, str(videos), fake_probe, unlabeled_subset="training")


def test_seeded_split():
    assert parse_split("train=0.8") == [("training", 0.8), ("validation", pytest.approx(0.2))]
    assert parse_split("train=0.5,val=0.25,test=0.25") == [
        ("training", 0.5), ("validation", 0.25), ("test", 0.25)]
    for bad, msg in (("train", "NAME=FRACTION"), ("train=1.5", "NAME=FRACTION"),
                     ("train=0.7,test=0.7", "sum to 1.4 > 1"),
                     ("train=0.5,val=0.2", "sum to 0.7, not 1")):
        with pytest.raises(ValueError, match=msg):
            parse_split(bad)
    ids = [f"v{i:02d}" for i in range(10)]
    split = parse_split("train=0.7,val=0.2,test=0.1")
    first = assign_subsets(ids, split, seed=3)
    assert sorted(first) == ids                                   # every video once
    assert [list(first.values()).count(s) for s in ("training", "validation", "test")] == \
        [7, 2, 1]                                                 # round(f * n) each
    assert assign_subsets(list(reversed(ids)), split, seed=3) == first  # input order ignored
    assert any(assign_subsets(ids, split, seed=s) != first for s in range(4, 8))


def test_unreadable_video_is_reported(tmp_path, videos):
    (videos / "broken.mp4").write_bytes(b"garbage")

    def probe(path):
        if path.endswith("broken.mp4"):
            raise ValueError(f"{path}: not a video file")
        return fake_probe(path)

    table = _table(tmp_path, "video,start,end,label\na,1,2,x\n")
    with pytest.raises(AnnotationTableError, match=r"broken\.mp4: cannot read the video"):
        build_annotations(table, str(videos), probe)


def test_header_and_folder_errors(tmp_path, videos):
    table = _table(tmp_path, "name,start,stop,label\na,1,2,x\n")
    with pytest.raises(AnnotationTableError, match="line 1: the header must name .* missing "
                       "video, end"):
        build_annotations(table, str(videos), fake_probe)
    (videos / "a.mov").write_bytes(b"")
    table = _table(tmp_path, "video,start,end,label\na,1,2,x\n")
    with pytest.raises(AnnotationTableError, match="two videos with the id 'a'"):
        build_annotations(table, str(videos), fake_probe)
    with pytest.raises(FileNotFoundError, match="video folder not found"):
        build_annotations(table, str(tmp_path / "nope"), fake_probe)


def test_real_probe_on_a_generated_video(tmp_path):
    pytest.importorskip("libs.video.probe", reason="libs.video not present")
    av = pytest.importorskip("av")
    import numpy as np

    folder = tmp_path / "v"
    folder.mkdir()
    with av.open(str(folder / "clip.mp4"), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(50):  # 2 s at 25 fps
            img = np.full((48, 64, 3), i * 5, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    table = _table(tmp_path, "video,start,end,label\nclip,0.5,1.5,x\n")
    out = tmp_path / "a.json"
    assert make_annotations.main([table, "--videos", str(folder), "--out", str(out)]) == 0
    video = read_annotation_json(str(out))["clip"]
    assert video["fps"] == pytest.approx(25.0) and video["duration"] == pytest.approx(2.0,
                                                                                      abs=0.05)
