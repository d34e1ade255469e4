"""tools/infer.py on video files: features made as the training manifest says, refused otherwise.

Oracles: the features ``tools/extract_features.py`` writes for the same video (must be equal,
bitwise), the detections ``detect()`` gives for those feature files (must be equal), the
sha256 of the weights files, and the exact error messages.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from libs.modeling import make_meta_arch
from libs.video import make_backbone
from libs.video.manifest import MANIFEST_NAME
from libs.video.synthetic import event_video

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import infer  # noqa: E402

GRID = ["--fps", "10", "--clip-len", "8", "--stride", "4", "--size", "32"]
CONFIG = {
    "dataset_name": "thumos", "train_split": ["training"], "val_split": ["validation"],
    "dataset": {"json_file": "missing.json", "feat_folder": "features", "file_prefix": None,
                "file_ext": ".npy", "num_classes": 3, "input_dim": 512, "feat_stride": 4,
                "num_frames": 8, "default_fps": 10, "trunc_thresh": 0.5,
                "crop_ratio": [0.9, 1.0], "max_seq_len": 64},
    "model": {"fpn_type": "identity", "max_buffer_len_factor": 4.0, "backbone_arch": [2, 2, 3],
              "n_mha_win_size": 5, "n_head": 4, "embd_dim": 32, "fpn_dim": 32, "head_dim": 32,
              "regression_range": [[0, 4], [4, 8], [8, 16], [16, 10000]]},
    "test_cfg": {"pre_nms_topk": 500, "max_seg_num": 20, "min_score": 0.001},
    "output_folder": "./ckpt/",
}
NO_MPL = importlib.util.find_spec("matplotlib") is None


def _extract(videos, out_dir, *extra):
    proc = subprocess.run([sys.executable, str(ROOT / "tools/extract_features.py"), *videos,
                           "--out-dir", str(out_dir), "--backbone", "r3d_18", *GRID, *extra],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def _write_config(folder: Path, **dataset) -> Path:
    cfg = json.loads(json.dumps(CONFIG))
    cfg["dataset"]["feat_folder"] = str(folder / "features")
    cfg["dataset"].update(dataset)
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two event videos, their CLI features (random r3d_18, seed 0), a config, a checkpoint."""
    root = tmp_path_factory.mktemp("infer_video")
    (root / "videos").mkdir()
    videos = [str(event_video(root / "videos" / f"v{i}.mp4", 6.0, [(1.0, 3.5, i)], fps=10,
                              seed=i)) for i in range(2)]
    _extract(videos, root / "features")
    config = _write_config(root)
    torch.manual_seed(0)
    cfg = infer.load_config(str(config))
    model = make_meta_arch(cfg["model_name"], **cfg["model"])
    torch.save({"state_dict_ema": model.state_dict()}, root / "model.pth.tar")
    return root, config, videos


def test_video_features_equal_the_cli_features_and_detections_match(trained, tmp_path):
    root, config, videos = trained
    keep = tmp_path / "kept"
    from_video = infer.detect(str(config), str(root / "model.pth.tar"), videos,
                              keep_features=str(keep))
    for video in videos:
        stem = Path(video).stem
        cli = np.load(root / "features" / f"{stem}.npy")
        assert cli.shape == (14, 512)  # 60 frames at 10 fps: (60 - 8) // 4 + 1
        assert np.array_equal(np.load(keep / f"{stem}.npy"), cli)
    entries = json.loads((root / "features" / MANIFEST_NAME).read_text())["videos"]
    from_npy = [infer.detect(str(config), str(root / "model.pth.tar"),
                             [str(root / "features" / f"{Path(v).stem}.npy")],
                             duration=entries[Path(v).stem]["duration_s"])[0] for v in videos]
    assert from_video == from_npy
    assert [r["video_id"] for r in from_video] == ["v0", "v1"]
    assert all(r["fps"] == 10.0 and r["duration"] == pytest.approx(6.0) for r in from_video)
    assert all(len(r["detections"]) > 0 for r in from_video)


def test_no_temporary_features_are_left(trained, tmp_path, monkeypatch):
    root, config, videos = trained
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    infer.detect(str(config), str(root / "model.pth.tar"), [videos[0]])
    assert list(tmp_path.iterdir()) == []


def test_random_weights_are_seeded_and_recorded():
    with pytest.warns(UserWarning):
        a, b, c = (make_backbone("r3d_18", "none", seed=s) for s in (3, 3, 4))
    assert a.weights_info == {"kind": "random", "seed": 3}
    for (name, x), y, z in zip(a.state_dict().items(), b.state_dict().values(),
                               c.state_dict().values()):
        assert torch.equal(x, y), name
    assert any(not torch.equal(x, z) for x, z in zip(a.state_dict().values(),
                                                     c.state_dict().values()))
    state = torch.get_rng_state()
    with pytest.warns(UserWarning):
        make_backbone("r3d_18", "none", seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched


def test_recorded_seed_is_used_to_rebuild_the_random_weights(trained, tmp_path):
    root, _, videos = trained
    (tmp_path / "features").mkdir()
    _extract(videos[:1], tmp_path / "features", "--seed", "7")
    manifest = json.loads((tmp_path / "features" / MANIFEST_NAME).read_text())
    assert manifest["settings"]["weights"] == {"kind": "random", "seed": 7}
    config = _write_config(tmp_path)
    keep = tmp_path / "kept"
    infer.detect(str(config), str(root / "model.pth.tar"), videos[:1], keep_features=str(keep))
    seven = np.load(tmp_path / "features" / "v0.npy")
    assert np.array_equal(np.load(keep / "v0.npy"), seven)
    assert not np.allclose(seven, np.load(root / "features" / "v0.npy"))  # seed 0 differs


def test_manifest_that_disagrees_with_the_config_is_refused(trained, tmp_path):
    root, _, videos = trained
    config = _write_config(tmp_path, feat_folder=str(root / "features"), num_frames=16)
    with pytest.raises(ValueError, match=r"manifest.json: the feature manifest disagrees with the "
                                         r"config: dataset.num_frames is 16 but the features "
                                         r"were made with num_frames 8 \(manifest\)"):
        infer.detect(str(config), str(root / "model.pth.tar"), videos)


def test_missing_manifest_names_the_folder_and_the_option(trained, tmp_path):
    root, _, videos = trained
    config = _write_config(tmp_path, feat_folder=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"video input needs the manifest of the features "
                                                r"the model was trained on: there is no .*nowhere"
                                                r"/manifest.json .*; pass --manifest FILE"):
        infer.detect(str(config), str(root / "model.pth.tar"), videos)
    # --manifest points at it explicitly
    (res,) = infer.detect(str(config), str(root / "model.pth.tar"), videos[:1],
                          manifest=str(root / "features" / MANIFEST_NAME))
    assert res["video_id"] == "v0"


def test_random_manifest_without_seed_is_refused(trained, tmp_path):
    root, config, videos = trained
    data = json.loads((root / "features" / MANIFEST_NAME).read_text())
    data["settings"]["weights"] = {"kind": "random"}  # as written before seeds were recorded
    data["videos"] = {}  # (its entries would be stale under the changed settings)
    old = tmp_path / MANIFEST_NAME
    old.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="records no seed, so they cannot be rebuilt; "
                                         "re-extract the training features"):
        infer.detect(str(config), str(root / "model.pth.tar"), videos, manifest=str(old))


def test_weights_file_is_required_and_checked_by_sha256(trained, tmp_path):
    root, _, videos = trained
    with pytest.warns(UserWarning):
        good, other = make_backbone("r3d_18", seed=1), make_backbone("r3d_18", seed=2)
    torch.save(good.state_dict(), tmp_path / "r3d.pt")
    torch.save(other.state_dict(), tmp_path / "other.pt")
    (tmp_path / "features").mkdir()
    _extract(videos[:1], tmp_path / "features", "--weights", str(tmp_path / "r3d.pt"))
    config = _write_config(tmp_path)
    ckpt = str(root / "model.pth.tar")
    with pytest.raises(ValueError, match=r"made with backbone 'r3d_18' and the weights file\(s\) "
                                         r"r3d.pt; pass them with --backbone-weights FILE"):
        infer.detect(str(config), ckpt, videos[:1])
    with pytest.raises(ValueError, match=r"other.pt: sha256 [0-9a-f]{16}\.\.\. is not that of "
                                         r"the weights the features were made with \(r3d.pt"):
        infer.detect(str(config), ckpt, videos[:1], backbone_weights=str(tmp_path / "other.pt"))
    keep = tmp_path / "kept"
    infer.detect(str(config), ckpt, videos[:1], backbone_weights=str(tmp_path / "r3d.pt"),
                 keep_features=str(keep))
    assert np.array_equal(np.load(keep / "v0.npy"), np.load(tmp_path / "features" / "v0.npy"))


def test_cli_writes_seconds_and_errors_in_one_line(trained, tmp_path):
    root, config, videos = trained
    out = tmp_path / "dets.json"
    cmd = [sys.executable, str(ROOT / "tools/infer.py"), str(config), str(root / "model.pth.tar"),
           str(root / "videos"), "--out", str(out), "-t", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    assert [r["video_id"] for r in res] == ["v0", "v1"]
    assert all(len(r["detections"]) == 3 and r["duration"] == pytest.approx(6.0) for r in res)
    for d in res[0]["detections"]:
        assert 0.0 <= d["start"] <= d["end"] and d["label"].startswith("class_")
    bad = subprocess.run(cmd[:4] + [str(tmp_path / "nothing.mp4")], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode != 0 and "nothing.mp4" in bad.stderr


@pytest.mark.skipif(NO_MPL, reason="matplotlib (optional extra) is not installed")
def test_plot_writes_one_png_per_video(trained, tmp_path):
    root, config, videos = trained
    proc = subprocess.run([sys.executable, str(ROOT / "tools/infer.py"), str(config),
                           str(root / "model.pth.tar"), *videos, "--out", str(tmp_path / "d.json"),
                           "--plot", str(tmp_path / "plots")], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["v0.png", "v1.png"]
    assert (tmp_path / "plots" / "v0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not NO_MPL, reason="checks the message shown without matplotlib")
def test_plot_without_matplotlib_names_the_extra(trained, tmp_path):
    root, config, videos = trained
    proc = subprocess.run([sys.executable, str(ROOT / "tools/infer.py"), str(config),
                           str(root / "model.pth.tar"), videos[0], "--plot", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1  # an expected user error (docs/reliability.md)
    assert "needs matplotlib, an optional extra" in proc.stderr
    assert "pip install matplotlib" in proc.stderr
