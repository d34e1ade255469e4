"""decode_frames: timestamp resampling to the k / fps grid, resize and crop, streaming, errors.

Expected source indices come from an independent oracle: ``frame_times`` (the times the test
videos were written with) and a brute-force nearest-time search.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from libs.video.decode import DecodeStats, FrameSize, decode_frames, num_output_frames
from libs.video.probe import VideoError

from ._videos import (frame_index_of, frame_times, make_audio_only, make_video,
                      make_zero_frame_video)

NTSC = Fraction(30000, 1001)


def _decoded_indices(path, fps, size=FrameSize(48)):
    stats = DecodeStats()
    indices = [frame_index_of(f) for f in decode_frames(str(path), fps, size, stats)]
    return indices, stats


def _oracle(times, fps):
    """Nearest source frame to each k / fps up to the last source time (tie: earlier)."""
    count = int(math.floor((times[-1] + 1e-6) * fps)) + 1
    out = []
    for k in range(count):
        dist = [abs(t - k / fps) for t in times]
        out.append(int(np.argmin(np.round(dist, 9))))
    return out


@pytest.mark.parametrize("src_fps, vfr", [(30, False), (NTSC, False), (30, True)])
def test_30fps_sources_land_on_the_same_grid(tmp_path, src_fps, vfr):
    # constant 30, 29.97 and variable ~30 fps sources of 60 frames: output frame k is source k
    path = make_video(tmp_path / "v.mp4", seconds=0, num_frames=60, fps=src_fps, vfr=vfr)
    indices, stats = _decoded_indices(path, 30.0)
    assert indices == list(range(60))
    assert (stats.decoded_frames, stats.output_frames) == (60, 60)


@pytest.mark.parametrize("src_fps, vfr, fps", [(25, False, 30), (30, False, 15), (60, False, 30),
                                              (NTSC, False, 25), (30, True, 24), (15, False, 30)])
def test_resampling_takes_the_nearest_frame(tmp_path, src_fps, vfr, fps):
    path = make_video(tmp_path / "v.mp4", seconds=2.0, fps=src_fps, vfr=vfr)
    times = frame_times(int(round(2.0 * src_fps)), src_fps, vfr)
    indices, stats = _decoded_indices(path, fps)
    assert indices == _oracle(times, fps)
    assert stats.output_frames == num_output_frames(times[-1], fps)


def test_hand_worked_25_to_30(tmp_path):
    # source frames every 40 ms; output every 33.3 ms: 0->0, 33->40 (1), 67->80 (2),
    # 100 -> tie between 80 and 120: the earlier (2), 133->120 (3), 167->160 (4), 200->200 (5)
    path = make_video(tmp_path / "v.mp4", seconds=0.4, fps=25)
    indices, _ = _decoded_indices(path, 30.0)
    assert indices[:7] == [0, 1, 2, 2, 3, 4, 5]
    # last source frame at 0.36 s: outputs k / 30 <= 0.36, i.e. k = 0..10
    assert len(indices) == 11


def test_output_count_formula():
    assert num_output_frames(59 / 30, 30) == 60  # float rounding of 59/30 * 30 absorbed
    assert num_output_frames(1.9686333, 30) == 60
    assert num_output_frames(0.0, 30) == 1
    assert num_output_frames(0.36, 30) == 11


def test_a_stream_that_does_not_start_at_zero(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=1.0, fps=30, start_s=0.5)
    indices, _ = _decoded_indices(path, 30.0)
    assert indices == list(range(30))


def test_resize_short_side_then_centre_crop(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=0.2, fps=30, size=(64, 48))
    first = next(decode_frames(str(path), 30, FrameSize(resize_to=24)))
    assert first.shape == (24, 32, 3) and first.dtype == np.uint8
    # the red channel is a left-to-right ramp 0..255; a centre crop of 24 of the 32 columns
    # keeps columns 4..27, so it starts at about 4/31 of the ramp and ends at about 27/31
    cropped = next(decode_frames(str(path), 30, FrameSize(resize_to=24, crop_size=24)))
    assert cropped.shape == (24, 24, 3)
    red = cropped[:, :, 0].astype(float).mean(axis=0)
    assert red[0] == pytest.approx(255 * 4.5 / 32, abs=12)
    assert red[-1] == pytest.approx(255 * 27.5 / 32, abs=12)
    exact = next(decode_frames(str(path), 30, FrameSize(resize_to=(20, 30))))
    assert exact.shape == (20, 30, 3)


def test_portrait_short_side_is_the_width(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=0.1, fps=30, size=(48, 64))
    assert next(decode_frames(str(path), 30, FrameSize(24))).shape == (32, 24, 3)


def test_crop_larger_than_the_resized_frame(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=0.1, fps=30)
    with pytest.raises(VideoError, match=r"v\.mp4: resized frames of 24x32 are smaller than the "
                                         r"28x28 crop"):
        next(decode_frames(str(path), 30, FrameSize(resize_to=24, crop_size=28)))


def test_frames_are_streamed_not_decoded_up_front(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=3.0, fps=30)
    stats = DecodeStats()
    frames = decode_frames(str(path), 30, FrameSize(48), stats)
    next(frames)
    next(frames)
    assert stats.decoded_frames <= 3  # 90 in the file
    frames.close()


def test_deterministic(tmp_path):
    path = make_video(tmp_path / "v.mp4", seconds=1.0, fps=25, pattern="noise")
    a = np.stack(list(decode_frames(str(path), 30, FrameSize(32, 32))))
    b = np.stack(list(decode_frames(str(path), 30, FrameSize(32, 32))))
    assert a.shape == (29, 32, 32, 3) and np.array_equal(a, b)  # last frame 0.96 s: k <= 28


def test_errors_name_the_file(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoError, match=r"junk\.mp4: not a video file or corrupt"):
        next(decode_frames(str(tmp_path / "junk.mp4"), 30, FrameSize(48)))
    make_audio_only(tmp_path / "tone.wav")
    with pytest.raises(VideoError, match=r"tone\.wav: no video stream"):
        next(decode_frames(str(tmp_path / "tone.wav"), 30, FrameSize(48)))
    make_zero_frame_video(tmp_path / "empty.mkv")
    with pytest.raises(VideoError, match=r"empty\.mkv: the video stream has zero frames"):
        list(decode_frames(str(tmp_path / "empty.mkv"), 30, FrameSize(48)))
    with pytest.raises(ValueError, match="fps must be > 0, got 0"):
        next(decode_frames(str(tmp_path / "junk.mp4"), 0, FrameSize(48)))
