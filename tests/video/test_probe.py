"""probe_video on videos written here: duration, fps, frame count, size, and the errors."""
from __future__ import annotations

from fractions import Fraction

import pytest

from libs.video.probe import VideoError, probe_video

from ._videos import make_audio_only, make_video, make_zero_frame_video


@pytest.mark.parametrize("fps, frames, duration", [(30, 60, 2.0), (25, 50, 2.0),
                                                   (Fraction(30000, 1001), 60, 60 * 1.001 / 30)])
def test_constant_rate(tmp_path, fps, frames, duration):
    path = make_video(tmp_path / "v.mp4", seconds=2.0, fps=fps, size=(64, 48))
    info = probe_video(str(path))
    assert (info.width, info.height, info.has_video) == (64, 48, True)
    assert info.num_frames == frames and info.frames_source == "container"
    assert info.fps == pytest.approx(float(fps), rel=1e-6)
    assert info.duration_s == pytest.approx(duration, abs=1e-6)


def test_counting_agrees_with_the_container(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=1.0, fps=30, vfr=True)
    counted = probe_video(str(path), count_frames=True)
    assert (counted.num_frames, counted.frames_source) == (30, "decoded")
    assert probe_video(str(path)).num_frames == 30


def test_variable_rate_average_fps(tmp_path):
    # 60 frames, the last presented at (59 + 0.25) / 30 s and lasting one period of the
    # 1.5-period gap pattern: the average rate is frames / duration, a little under 30
    path = make_video(tmp_path / "v.mp4", seconds=2.0, fps=30, vfr=True)
    info = probe_video(str(path))
    assert info.num_frames == 60
    assert info.fps == pytest.approx(60 / info.duration_s, rel=1e-3)
    assert 29.5 < info.fps < 30.0


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4: video file not found"):
        probe_video(str(tmp_path / "nope.mp4"))


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not frames")
    with pytest.raises(VideoError, match=r"notes\.mp4: not a video file or corrupt \("):
        probe_video(str(path))


def test_audio_only(tmp_path):
    path = make_audio_only(tmp_path / "speech.wav")
    with pytest.raises(VideoError, match=r"speech\.wav: no video stream \(the file holds: audio\)"):
        probe_video(str(path))


def test_zero_frames(tmp_path):
    path = make_zero_frame_video(tmp_path / "empty.mkv")
    with pytest.raises(VideoError, match=r"empty\.mkv: the video stream has zero frames"):
        probe_video(str(path))
