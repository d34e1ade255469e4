"""The extraction's plumbing: atomic writes, the progress line, a malformed manifest in the
output folder."""
from __future__ import annotations

import io

import numpy as np
import pytest

from libs.utils.atomic import atomic_open
from libs.video.extract import extract_features
from libs.video.npy_writer import NpyRowWriter
from libs.video.progress import Progress, format_eta

from ._toy_backbone import ToyFrames
from ._videos import make_video


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path):
    path = tmp_path / "a.npy"
    with atomic_open(str(path), "wb") as fh:
        np.save(fh, np.arange(3, dtype=np.float32))
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_open(str(path), "wb") as fh:
            fh.write(b"half a file")
            raise RuntimeError("crash")
    assert np.load(path).tolist() == [0.0, 1.0, 2.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]
    with pytest.raises(ValueError, match="atomic_open: mode must be 'w' or 'wb', got 'a'"):
        with atomic_open(str(path), "a"):
            pass


def test_format_eta():
    assert format_eta(None) == "?"
    assert format_eta(float("inf")) == "?"
    assert format_eta(0.4) == "0:00"
    assert format_eta(75) == "1:15"
    assert format_eta(3 * 3600 + 62) == "3:01:02"


def test_progress_lines():
    out = io.StringIO()
    progress = Progress(total_clips=40, num_videos=2, stream=out, interval_s=0.0)
    progress.start_video(1, "a.mp4", est_clips=10)
    progress.advance(4)
    progress.end_video("done")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[1/2] a.mp4: 4/10 clips | ")
    assert " clips/s | video ETA " in lines[0] and " | overall 10% ETA " in lines[0]
    # at the end of a video its count is what was done (the estimate came from its header)
    assert lines[1].startswith("[1/2] a.mp4: 4/4 clips | ") and lines[1].endswith(" | done")


def test_a_malformed_manifest_in_the_output_folder(tmp_path):
    make_video(tmp_path / "v.mp4", seconds=0.5, fps=30)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"manifest\.json: malformed feature manifest: not JSON"):
        extract_features([str(tmp_path / "v.mp4")], str(tmp_path / "out"), ToyFrames(),
                         log=io.StringIO())


def test_npy_rows_written_block_by_block(tmp_path):
    path = str(tmp_path / "f.npy")
    writer = NpyRowWriter(path, 3)
    writer.append(np.arange(6, dtype=np.float64).reshape(2, 3))
    writer.append(np.full((1, 3), 7, np.float32))
    assert writer.close() == 3
    back = np.load(path, allow_pickle=False)
    assert back.dtype == np.float32 and back.tolist() == [[0, 1, 2], [3, 4, 5], [7, 7, 7]]
    again = NpyRowWriter(path, 3)
    with pytest.raises(ValueError, match=r"f\.npy: expected blocks of shape \(n, 3\), got "
                                         r"\(2, 4\)"):
        again.append(np.zeros((2, 4)))
    again.abort()
    assert np.load(path).shape == (3, 3)  # the finished file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npy"]
