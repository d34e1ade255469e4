"""The clip grid: counts, frame ranges, centre times, and clip batches against a brute-force
oracle (every clip listed frame by frame, the short-video padding included)."""
from __future__ import annotations

import numpy as np
import pytest

from libs.video.clips import clip_batches, clip_center_time_s, clip_frame_range, num_clips


def test_counts_hand_worked():
    assert num_clips(0, 16, 4) == 0
    assert num_clips(1, 16, 4) == 1  # shorter than a clip: one padded clip
    assert num_clips(16, 16, 4) == 1
    assert num_clips(19, 16, 4) == 1
    assert num_clips(20, 16, 4) == 2
    assert num_clips(5400, 16, 4) == 1347  # a 3-minute video at 30 fps
    assert num_clips(10, 4, 8) == 1  # frames 8, 9 do not fill a clip
    assert num_clips(12, 4, 8) == 2


def test_ranges_and_centres():
    assert clip_frame_range(3, 16, 4) == (12, 28)
    assert clip_center_time_s(3, 16, 4, 30.0) == pytest.approx(20 / 30)
    assert clip_center_time_s(0, 8, 8, 25.0) == pytest.approx(4 / 25)


def test_bad_grid():
    with pytest.raises(ValueError, match="clip_len and stride must be >= 1, got clip_len 0, "
                                         "stride 4"):
        num_clips(10, 0, 4)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        next(clip_batches(iter([]), 4, 4, 0))


def _oracle(n, clip_len, stride):
    """Every clip as its list of frame indices, the last frame repeated for a short video."""
    if n == 0:
        return []
    starts = range(0, max(1, n - clip_len + 1), stride) if n >= clip_len else [0]
    return [[min(k, n - 1) for k in range(s, s + clip_len)] for s in starts]


@pytest.mark.parametrize("clip_len, stride", [(16, 4), (4, 8), (3, 3), (1, 1), (8, 6)])
@pytest.mark.parametrize("batch_size", [1, 2, 7])
def test_batches_hold_the_right_frames(clip_len, stride, batch_size):
    for n in (0, 1, 5, 16, 17, 20, 35, 61):
        frames = [np.full((2, 2, 3), i, np.uint8) for i in range(n)]
        got, padded = [], []
        for first, clips, pad in clip_batches(iter(frames), clip_len, stride, batch_size):
            assert first == len(got) and 1 <= len(clips) <= batch_size
            assert clips.shape[1:] == (clip_len, 2, 2, 3) and clips.dtype == np.uint8
            got += [clip[:, 0, 0, 0].tolist() for clip in clips]
            padded.append(pad)
        assert got == _oracle(n, clip_len, stride), (n, clip_len, stride, batch_size)
        assert len(got) == num_clips(n, clip_len, stride)
        assert padded == ([True] if 0 < n < clip_len else [False] * len(padded))


def test_batches_are_streamed():
    # when a full batch is yielded, exactly the frames it needs have been drawn from the stream
    drawn = []

    def frames():
        for i in range(1000):
            drawn.append(i)
            yield np.full((1, 1, 3), i % 256, np.uint8)

    batches = clip_batches(frames(), 16, 4, 8)
    for expected_first in (0, 8):
        first, clips, _ = next(batches)
        assert first == expected_first
        assert len(drawn) == first * 4 + 7 * 4 + 16
        assert len(clips) == 8
    batches.close()
