"""tools/infer.py: detections from feature files equal the original's for the same checkpoint.

Oracle: the detections the original produced for the conformance videos (tiny_expected.pt),
matched with the conformance README's tolerances (same count; same label, segment within
1e-3 s, score within 1e-4).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import infer  # noqa: E402


def _match(got, ref):
    assert len(got) == len(ref["scores"])
    used = set()
    for seg, score, label in zip(ref["segments"].tolist(), ref["scores"].tolist(),
                                 ref["labels"].tolist()):
        hit = next((i for i, d in enumerate(got) if i not in used and d["label_id"] == label
                    and abs(d["start"] - seg[0]) <= 1e-3 and abs(d["end"] - seg[1]) <= 1e-3
                    and abs(d["score"] - score) <= 1e-4), None)
        assert hit is not None, (seg, score, label)
        used.add(hit)


@pytest.fixture
def tiny(conformance_dir, monkeypatch):
    monkeypatch.chdir(conformance_dir)  # the tiny config's paths are relative to it
    return conformance_dir


def test_infer_reproduces_reference_detections(tiny):
    expected = torch.load(tiny / "tiny_expected.pt")["perturbed"]["eval"]
    feats = ["tiny_data/i3d_features/video_test_0000007.npy",
             "tiny_data/i3d_features/video_validation_0000051.npy"]
    results = infer.detect("tiny_thumos.yaml", "tiny_thumos_perturbed", feats)
    assert [r["video_id"] for r in results] == ["video_test_0000007", "video_validation_0000051"]
    for res in results:
        ref = expected[res["video_id"]]["detections"]
        assert res["fps"] == 30.0  # from the annotation JSON
        scores = [d["score"] for d in res["detections"]]
        assert scores == sorted(scores, reverse=True)
        _match(res["detections"], ref)
        names = json.loads(Path("tiny_data/annotations/tiny_thumos14.json").read_text())
        label_names = {a["label_id"]: a["label"] for v in names["database"].values()
                       for a in v["annotations"]}
        assert all(d["label"] == label_names[d["label_id"]] for d in res["detections"])


def test_infer_cli_writes_json_and_needs_fps_for_unknown_videos(tiny, tmp_path):
    src = tiny / "tiny_data/i3d_features/video_test_0000007.npy"
    shutil.copy(src, tmp_path / "my_clip.npy")
    with pytest.raises(ValueError, match="video 'my_clip': fps unknown; pass --fps"):
        infer.detect("tiny_thumos.yaml", "tiny_thumos_perturbed", [str(tmp_path)])
    out = tmp_path / "dets.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools/infer.py"), "tiny_thumos.yaml",
                           "tiny_thumos_perturbed/epoch_000.pth.tar", str(tmp_path),
                           "--fps", "30", "--out", str(out), "-t", "5"],
                          capture_output=True, text=True, cwd=tiny)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert len(res) == 1 and res[0]["video_id"] == "my_clip"
    assert len(res[0]["detections"]) == 5
    # the duration covers the features: ((T - 1) * 4 + 16) / 30
    T = np.load(src).shape[0]
    assert res[0]["duration"] == pytest.approx(((T - 1) * 4 + 16) / 30)


def test_infer_rejects_transposed_features(tiny, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((32, 100), np.float32))
    with pytest.raises(ValueError, match=r"bad.npy: features of shape \(32, 100\), expected "
                                         r"\(T, 32\) \(it looks transposed"):
        infer.detect("tiny_thumos.yaml", "tiny_thumos_perturbed", [str(tmp_path / "bad.npy")],
                     fps=30)
