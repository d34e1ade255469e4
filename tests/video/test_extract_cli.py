"""tools/extract_features.py with the real backbones (random weights, small frames): the command
end to end, exit codes, the printed config keys, weights recorded by sha256, and the errors of
bad backbones, weights and sizes."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from libs.video import make_backbone
from libs.video.extract import extract_features
from libs.video.manifest import MANIFEST_NAME

from ._videos import make_video

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import extract_features as cli  # noqa: E402

# the random-weights warning is asserted once (end to end); elsewhere it is expected noise
pytestmark = pytest.mark.filterwarnings("ignore:video backbone .* RANDOM weights")


def _random(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_backbone(name, weights="none")


@pytest.fixture(scope="module")
def clip_video(tmp_path_factory):
    """36 frames at 30 fps, 64x48: with clip 16 / stride 8, (36 - 16) // 8 + 1 = 3 clips."""
    return make_video(tmp_path_factory.mktemp("v") / "walk.mp4", seconds=1.2, fps=30,
                      pattern="noise")


@pytest.mark.slow
def test_r3d_end_to_end_through_the_command(tmp_path, clip_video):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "tools/extract_features.py", str(clip_video), "--out-dir",
         str(tmp_path / "out"), "--backbone", "r3d_18", "--weights", "none", "--clip-len", "16",
         "--stride", "8", "--batch-size", "2"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RANDOM weights" in proc.stderr
    assert "[1/1] walk.mp4: 3/3 clips" in proc.stderr
    for line in ("  feat_stride: 8", "  num_frames: 16", "  default_fps: 30",
                 "  input_dim: 512", "  file_ext: .npy"):
        assert line + "\n" in proc.stdout
    assert "feature i is centred at (i * 8 + 16 / 2) / 30 seconds" in proc.stdout
    feats = np.load(tmp_path / "out" / "walk.npy")
    assert feats.shape == (3, 512) and feats.dtype == np.float32 and np.isfinite(feats).all()
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    s = manifest["settings"]
    assert (s["backbone"], s["weights"], s["feature_dim"]) == ("r3d_18", {"kind": "random", "seed": 0}, 512)
    assert s["frames"]["crop_size"] == 112 and s["frames"]["resize_to"] == [128, 171]
    assert s["pixel_normalisation"]["mean"] == pytest.approx([0.43216, 0.394666, 0.37645])


def test_real_backbone_batch_size_invariance_and_determinism(tmp_path, clip_video):
    backbone = _random("r2plus1d_18")
    outs = []
    for n, batch in enumerate((1, 3, 3)):
        extract_features([str(clip_video)], str(tmp_path / f"o{n}"), backbone, clip_len=8,
                         stride=8, size=32, batch_size=batch, log=io.StringIO())
        outs.append(np.load(tmp_path / f"o{n}" / "walk.npy"))
    assert outs[0].shape == ((36 - 8) // 8 + 1, 512)
    assert np.array_equal(outs[1], outs[2])
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-5)


def test_weights_file_is_recorded_by_name_and_sha256(tmp_path, clip_video):
    weights = tmp_path / "r3d_weights.pt"
    torch.save(_random("r3d_18").state_dict(), weights)
    code = cli.main([str(clip_video), "--out-dir", str(tmp_path / "out"), "--backbone",
                     "r3d_18", "--weights", str(weights), "--size", "32", "--clip-len", "8",
                     "--stride", "16"])
    assert code == 0
    recorded = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())["settings"]["weights"]
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert recorded == {"kind": "file", "files": [{"name": "r3d_weights.pt", "sha256": digest}]}


def test_unknown_backbone_lists_the_known_ones(tmp_path, clip_video, capsys):
    code = cli.main([str(clip_video), "--out-dir", str(tmp_path), "--backbone", "c3d"])
    assert code == 2
    assert capsys.readouterr().err.startswith(
        "error: unknown video backbone 'c3d'; known backbones: i3d, i3d_flow, i3d_rgb, "
        "r2plus1d_18, r3d_18")


def test_weights_of_another_architecture(tmp_path, clip_video, capsys):
    weights = tmp_path / "r2plus1d.pt"
    torch.save(_random("r2plus1d_18").state_dict(), weights)
    code = cli.main([str(clip_video), "--out-dir", str(tmp_path / "out"), "--backbone",
                     "r3d_18", "--weights", str(weights)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: {weights}: the weights do not fit backbone 'r3d_18' (strict load;" in err
    assert "missing keys" in err and "unexpected keys" in err
    assert not (tmp_path / "out").exists()


def test_frame_size_the_pooling_cannot_take(tmp_path, clip_video, capsys):
    code = cli.main([str(clip_video), "--out-dir", str(tmp_path / "out"), "--backbone",
                     "i3d_rgb", "--size", "160"])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: --size 160: backbone 'i3d_rgb' needs frames of at least 193x193 pixels for its "
        "pooling, got 160x160 (H x W)")


def test_broken_file_gives_exit_code_1_and_is_listed(tmp_path, clip_video, capsys):
    (tmp_path / "junk.mp4").write_text("no frames here")
    code = cli.main([str(clip_video), str(tmp_path / "junk.mp4"), "--out-dir",
                     str(tmp_path / "out"), "--backbone", "r3d_18", "--size", "32",
                     "--clip-len", "8", "--stride", "16"])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 video(s) extracted, 0 already done, 1 failed" in out
    assert f"videos that could not be extracted:\n  {tmp_path / 'junk.mp4'}: not a video file " \
           f"or corrupt" in out
    assert (tmp_path / "out" / "walk.npy").exists()
