"""extract_features with a tiny frame-reporting backbone: counts, frames per feature, times,
short videos, determinism, batch-size invariance, resume, broken files, bad settings, and the
loaders reading the result with the manifest's config keys."""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from libs.datasets import make_dataset
from libs.video.extract import extract_features, list_videos
from libs.video.manifest import MANIFEST_NAME, load_manifest

from ._toy_backbone import ToyFrames, indices_of
from ._videos import (frame_times, make_audio_only, make_video, make_zero_frame_video)

ROOT = Path(__file__).resolve().parents[2]


def _run(videos, out, clip_len=16, stride=4, batch_size=3, **kw):
    kw.setdefault("log", io.StringIO())
    return extract_features([str(v) for v in videos], str(out), ToyFrames(clip_len),
                            clip_len=clip_len, stride=stride, batch_size=batch_size, **kw)


@pytest.mark.parametrize("frames, expected", [(10, 1), (16, 1), (19, 1), (20, 2), (47, 8),
                                              (64, 13)])
def test_feature_count_is_the_formula(tmp_path, frames, expected):
    # (n - 16) // 4 + 1, and 1 (padded) below 16 frames
    make_video(tmp_path / "v.mp4", seconds=0, num_frames=frames, fps=30)
    result = _run([tmp_path / "v.mp4"], tmp_path / "out")
    feats = np.load(tmp_path / "out" / "v.npy")
    assert feats.shape == (expected, 32) and feats.dtype == np.float32
    entry = result.manifest.videos["v"]
    assert (entry["sampled_frames"], entry["decoded_frames"]) == (frames, frames)
    assert entry["num_features"] == expected
    assert entry["padded"] is (frames < 16)


def test_each_feature_sees_its_clips_frames(tmp_path):
    make_video(tmp_path / "v.mp4", seconds=0, num_frames=40, fps=30)
    _run([tmp_path / "v.mp4"], tmp_path / "out", clip_len=8, stride=6, batch_size=2)
    feats = np.load(tmp_path / "out" / "v.npy")
    assert feats.shape[0] == (40 - 8) // 6 + 1
    for i, feat in enumerate(feats):
        assert indices_of(feat) == list(range(6 * i, 6 * i + 8))


def test_a_short_video_repeats_its_last_frame(tmp_path):
    make_video(tmp_path / "short.mp4", seconds=0, num_frames=5, fps=30)
    _run([tmp_path / "short.mp4"], tmp_path / "out", clip_len=8)
    assert indices_of(np.load(tmp_path / "out" / "short.npy")[0]) == [0, 1, 2, 3, 4, 4, 4, 4]


def test_feature_times_match_the_frames_they_saw(tmp_path):
    # a 25 fps source sampled at 30 fps: feature i's frames are the source frames nearest to
    # (i * stride + j) / 30, and its centre time is the middle of that span
    make_video(tmp_path / "v.mp4", seconds=2.0, fps=25)
    src = frame_times(50, 25)
    result = _run([tmp_path / "v.mp4"], tmp_path / "out", clip_len=8, stride=4)
    feats = np.load(tmp_path / "out" / "v.npy")
    for i, feat in enumerate(feats):
        for j, source_index in enumerate(indices_of(feat)):
            assert abs(src[source_index] - (4 * i + j) / 30) <= 0.5 / 25 + 1e-6
        assert result.manifest.feature_center_time(i) == pytest.approx((4 * i + 4) / 30)


def test_deterministic_and_batch_size_invariant(tmp_path):
    make_video(tmp_path / "v.mp4", seconds=1.5, fps=30, vfr=True)
    outs = []
    for n, batch in enumerate((1, 3, 8, 3)):
        _run([tmp_path / "v.mp4"], tmp_path / f"out{n}", batch_size=batch)
        outs.append(np.load(tmp_path / f"out{n}" / "v.npy"))
    assert outs[0].shape == ((45 - 16) // 4 + 1, 32)
    for other in outs[1:]:
        assert np.array_equal(outs[0], other)


def test_resume_skips_finished_videos_and_redoes_changed_ones(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a", "b"):
        make_video(tmp_path / "in" / f"{name}.mp4", seconds=1.0, fps=30)
    out = tmp_path / "out"
    first = _run([tmp_path / "in"], out)
    assert sorted(first.extracted) == ["a", "b"]
    stamp = os.stat(out / "a.npy").st_mtime_ns
    again = _run([tmp_path / "in"], out)
    assert (again.extracted, sorted(again.skipped)) == ([], ["a", "b"])
    assert os.stat(out / "a.npy").st_mtime_ns == stamp
    make_video(tmp_path / "in" / "b.mp4", seconds=2.0, fps=30)  # the source changed
    (out / "a.npy").unlink()  # a lost feature file
    redo = _run([tmp_path / "in"], out)
    assert sorted(redo.extracted) == ["a", "b"] and redo.skipped == []
    assert load_manifest(str(out / MANIFEST_NAME)).videos["b"]["num_features"] == 12
    log = io.StringIO()
    changed = _run([tmp_path / "in"], out, stride=8, log=log)  # other settings: all redone
    assert sorted(changed.extracted) == ["a", "b"]
    assert "settings changed since the last run" in log.getvalue()
    manifest = load_manifest(str(out / MANIFEST_NAME))
    assert manifest.settings["stride"] == 8 and manifest.stale() == []
    assert np.load(out / "b.npy").shape[0] == (60 - 16) // 8 + 1


def _broken_folder(folder: Path) -> Path:
    folder.mkdir()
    make_video(folder / "good1.mp4", seconds=1.0, fps=30)
    make_video(folder / "good2.mkv", seconds=1.0, fps=25)
    (folder / "notes.mp4").write_text("not a video")
    make_audio_only(folder / "speech.mkv")
    make_zero_frame_video(folder / "empty.mkv")
    whole = (folder / "good1.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    (folder / "readme.txt").write_text("ignored: not a video extension")
    return folder


def test_broken_files_are_listed_and_the_others_finish(tmp_path):
    folder = _broken_folder(tmp_path / "in")
    result = _run([folder], tmp_path / "out")
    assert sorted(result.extracted) == ["good1", "good2"] and not result.ok
    reasons = {Path(p).name: r for p, r in result.failed.items()}
    assert sorted(reasons) == ["cut.mp4", "empty.mkv", "notes.mp4", "speech.mkv"]
    assert "cut.mp4: not a video file or corrupt" in reasons["cut.mp4"]
    assert "notes.mp4: not a video file or corrupt" in reasons["notes.mp4"]
    assert reasons["speech.mkv"].endswith("speech.mkv: no video stream (the file holds: audio)")
    assert reasons["empty.mkv"].endswith("empty.mkv: the video stream has zero frames")
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert sorted(manifest["failed"]) == ["cut", "empty", "notes", "speech"]
    assert sorted(manifest["videos"]) == ["good1", "good2"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "good1.npy", "good2.npy", MANIFEST_NAME]


def test_bad_settings(tmp_path):
    make_video(tmp_path / "v.mp4", seconds=0.5, fps=30)
    with pytest.raises(ValueError, match=r"--size 4: backbone 'toy_frames' needs frames of at "
                                         r"least 8x8 pixels for its pooling, got 4x4"):
        _run([tmp_path / "v.mp4"], tmp_path / "out", size=4)
    with pytest.raises(FileNotFoundError, match=r"nothere\.mp4: no such video file or folder"):
        _run([tmp_path / "nothere.mp4"], tmp_path / "out")
    with pytest.raises(ValueError, match="clip_len and stride must be >= 1, got clip_len 16, "
                                         "stride 0"):
        _run([tmp_path / "v.mp4"], tmp_path / "out", stride=0)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no videos here")
    with pytest.raises(FileNotFoundError, match=r"empty: no video files in this folder "
                                                r"\(extensions: \.mp4 \.m4v"):
        _run([tmp_path / "empty"], tmp_path / "out")
    (tmp_path / "b").mkdir()
    make_video(tmp_path / "b" / "v.mkv", seconds=0.5, fps=30)
    with pytest.raises(ValueError, match=r"two videos would write the same feature file v\.npy"):
        list_videos([str(tmp_path / "v.mp4"), str(tmp_path / "b")])


def _dataset_for(tmp_path: Path, manifest, acts):
    ann = {stem: {"subset": "Test", "duration": e["duration_s"], "fps": 25.0,
                  "annotations": [{"label": "a", "label_id": 0, "segment": list(a)}
                                  for a in acts]}
           for stem, e in manifest.videos.items()}
    (tmp_path / "ann.json").write_text(json.dumps({"database": ann}))
    return ann


def test_the_loader_reads_the_features_on_the_manifest_grid(tmp_path):
    make_video(tmp_path / "v.mp4", seconds=3.0, fps=25)
    manifest = _run([tmp_path / "v.mp4"], tmp_path / "out", clip_len=16, stride=4).manifest
    start, end = manifest.feature_center_time(3), manifest.feature_center_time(11)
    _dataset_for(tmp_path, manifest, [(start, end)])
    kw = dict(feat_folder=str(tmp_path / "out"), json_file=str(tmp_path / "ann.json"),
              downsample_rate=1, max_seq_len=64, trunc_thresh=0.5, crop_ratio=None,
              num_classes=1, file_prefix=None, file_ext=".npy", force_upsampling=False,
              **manifest.config_keys())
    item = make_dataset("thumos", False, ["test"], **kw)[0]
    # the annotated fps (25) is ignored: default_fps from the manifest (30) wins, as it must
    assert item["fps"] == 30
    assert tuple(item["feats"].shape) == (32, manifest.videos["v"]["num_features"])
    assert item["segments"].tolist() == [pytest.approx([3.0, 11.0], abs=1e-5)]


def test_check_dataset_reads_the_manifest(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import check_dataset as cd

    make_video(tmp_path / "v1.mp4", seconds=3.0, fps=30)
    make_video(tmp_path / "v2.mp4", seconds=2.0, fps=30)
    manifest = _run([tmp_path / "v1.mp4", tmp_path / "v2.mp4"], tmp_path / "out").manifest
    _dataset_for(tmp_path, manifest, [(0.5, 1.5)])

    def config(**over):
        ds = {"json_file": str(tmp_path / "ann.json"), "feat_folder": str(tmp_path / "out"),
              "file_ext": ".npy", "num_classes": 1, "max_seq_len": 256,
              **manifest.config_keys(), **over}
        path = tmp_path / "cfg.yaml"
        path.write_text(yaml.safe_dump({"dataset_name": "thumos", "train_split": ["test"],
                                        "val_split": ["test"], "dataset": ds,
                                        "model": {"n_mha_win_size": 9}}))
        return str(path)

    good = cd.check_dataset(config())
    assert good.errors == [], good.format()
    bad = cd.check_dataset(config(feat_stride=8))
    assert f"{tmp_path / 'out' / MANIFEST_NAME}: dataset.feat_stride is 8 but the features " \
           f"were made with feat_stride 4 (manifest)" in bad.errors


def test_frames_ending_before_the_stated_duration_are_reported(tmp_path):
    make_video(tmp_path / "long.mkv", seconds=3.0, fps=30)
    whole = (tmp_path / "long.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) // 2])  # header says 3 s
    log = io.StringIO()
    result = _run([tmp_path / "cut.mkv"], tmp_path / "out", log=log)
    entry = result.manifest.videos["cut"]
    assert entry["duration_s"] == 3.0 and entry["last_frame_time_s"] < 2.0
    assert entry["num_features"] == (entry["sampled_frames"] - 16) // 4 + 1
    assert len(result.warnings) == 1 and "(truncated or damaged?)" in result.warnings[0]
    assert "WARNING: " + result.warnings[0] in log.getvalue()
