"""tools/demo.py and configs/synthetic_thumos.yaml (the README's Quick start), fast checks only.

Oracles: the config against the original schema (load_config), the divisibility rule of
docs/reference.md §3.10 (every level's stride x 2 x (window // 2) divides max_seq_len) and the
generator options; ``--dry-run`` runs the real train.py / eval.py end to end in a temporary
folder and its files are inspected on disk. Its mAP is pinned two ways: recomputed from the
saved detections by the row-by-row oracle of tests/evaluation/_reference.py (to the printed
0.01), and above a shuffled-label baseline computed here on the same detections. The full demo
(minutes; 63.2 % documented in docs/demo.md) is not run here.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from libs.core import ConfigError, load_config

from tests.evaluation._reference import reference_ap

from .conftest import run_script

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import demo  # noqa: E402

CONFIG = ROOT / "configs" / "synthetic_thumos.yaml"

pytestmark = pytest.mark.e2e


def test_config_loads_with_thumos_semantics():
    cfg = load_config(str(CONFIG))
    assert cfg["dataset_name"] == "thumos"
    assert cfg["train_split"] == ["validation"] and cfg["val_split"] == ["test"]
    ds = cfg["dataset"]
    # the config reads what the demo generates, where it generates it
    data = Path(demo.DEFAULT_DATA_DIR)
    assert Path(ds["json_file"]) == data / "annotations" / "synthetic.json"
    assert Path(ds["feat_folder"]) == data / "features"
    # the generated data must fit the config: classes, channels, splits, grid (THUMOS14's
    # 30 fps, a feature every 4 frames over 16-frame clips)
    gen = demo.GENERATOR
    assert ds["num_classes"] == gen["classes"] and ds["input_dim"] == gen["dim"]
    assert gen["train-subset"].lower() in cfg["train_split"]
    assert gen["test-subset"].lower() in cfg["val_split"]
    assert (ds["feat_stride"], ds["num_frames"]) == (gen["feat-stride"], gen["num-frames"])
    assert (gen["fps"], gen["feat-stride"], gen["num-frames"]) == (30.0, 4, 16)


def test_config_divisibility_by_hand():
    cfg = load_config(str(CONFIG))
    model = cfg["model"]
    levels = model["backbone_arch"][-1] + 1
    window = model["n_mha_win_size"]
    for level in range(levels):
        stride = model["scale_factor"] ** level
        assert cfg["dataset"]["max_seq_len"] % (stride * 2 * (window // 2)) == 0, level


def test_iterations_enough_for_ema():
    """EMA decay 0.999: the weights need a few thousand iterations to forget the init."""
    cfg = load_config(str(CONFIG))
    gen = demo.GENERATOR
    num_train = gen["videos"] - round(gen["videos"] * gen["test-fraction"])
    per_epoch = num_train // cfg["loader"]["batch_size"]  # drop_last loader
    total = per_epoch * (cfg["opt"]["epochs"] + cfg["opt"]["warmup_epochs"])
    assert total >= 2000
    assert 0.999 ** total < 0.15


def test_config_mismatch_is_reported(tmp_path):
    with open(CONFIG) as f:
        raw = yaml.load(f, Loader=yaml.FullLoader)
    raw["dataset"]["num_classes"] = demo.GENERATOR["classes"] + 1
    bad = tmp_path / "synthetic_thumos.yaml"
    bad.write_text(yaml.safe_dump(raw))
    args = demo.parse_args(["--config", str(bad)])
    with pytest.raises(ValueError, match=r"synthetic_thumos\.yaml.*num_classes"):
        demo.prepare_config(args, "data/synthetic", demo.generator_options(args), None)


def test_dataset_is_reused_then_regenerated(tmp_path, capsys):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    opts = dict(demo.GENERATOR, videos=4)
    data = str(tmp_path / "data")
    assert demo.ensure_dataset(data, opts, env) == 0
    assert len(os.listdir(os.path.join(data, "features"))) == 4
    with open(os.path.join(data, demo.OPTIONS_FILE)) as f:
        assert json.load(f) == opts
    capsys.readouterr()
    assert demo.ensure_dataset(data, opts, env) == 0
    assert "already generated" in capsys.readouterr().out
    assert demo.ensure_dataset(data, dict(opts, videos=3), env) == 0
    assert "other options" in capsys.readouterr().out
    assert len(os.listdir(os.path.join(data, "features"))) == 3  # no stale files left


def test_help(repo_root):
    proc = run_script(repo_root, "tools/demo.py", "--help", timeout=60)
    assert "--dry-run" in proc.stdout and "--seed" in proc.stdout


# a dry run that learns a little (measured: 2.60 % average mAP; shuffled labels 0.57 % on
# average): easier data, more videos and epochs than the default dry run, ~35 s on 2 cores
LEARNING_RUN = ["--videos", "30", "--noise", "0.8", "--epochs", "20"]


def _report(out: str) -> dict:
    """tIoU -> mAP (%) of eval.py's report, and its average."""
    per_tiou = {float(t): float(m) for t, m in
                re.findall(r"^\|tIoU = ([0-9.]+): mAP = ([0-9.]+) \(%\)", out, re.M)}
    average = re.search(r"^Average mAP: ([0-9.]+) \(%\)", out, re.M)
    assert per_tiou and average, out[-2000:]
    return {"per_tiou": per_tiou, "average": float(average.group(1))}


def _detections(work: Path, exp: Path, ckpt: Path, repo_root: Path):
    """Test-split ground truth rows and the checkpoint's detections (``eval.py --saveonly``)."""
    run_script(repo_root, "eval.py", str(work / "synthetic_thumos.yaml"), str(ckpt),
               "--device", "cpu", "--saveonly")
    with open(exp / "eval_results.pkl", "rb") as f:  # written by eval.py just now
        res = pickle.load(f)
    db = json.loads((work / "data" / "annotations" / "synthetic.json").read_text())["database"]
    gt = [(vid, a["segment"][0], a["segment"][1], a["label_id"]) for vid, item in db.items()
          if item["subset"] == demo.GENERATOR["test-subset"] for a in item["annotations"]]
    return gt, res


def _oracle_map(gt, res, shuffle_seed=None) -> float:
    """Average mAP (%) over tIoU 0.3:0.1:0.7 by the row-by-row oracle; with ``shuffle_seed``
    the predicted labels are permuted first (a chance baseline for the same detections)."""
    labels = np.asarray(res["label"])
    if shuffle_seed is not None:
        labels = np.random.default_rng(shuffle_seed).permutation(labels)
    preds = [(v, float(s), float(e), int(c), float(p)) for v, s, e, c, p in
             zip(res["video-id"], res["t-start"], res["t-end"], labels, res["score"])]
    thresholds = [0.3, 0.4, 0.5, 0.6, 0.7]
    return 100 * float(reference_ap(gt, preds, demo.GENERATOR["classes"], thresholds).mean())


@pytest.mark.slow
def test_dry_run_end_to_end(repo_root):
    proc = run_script(repo_root, "tools/demo.py", "--dry-run", "--keep", *LEARNING_RUN,
                      timeout=600)
    out = proc.stdout
    kept = re.search(r"\[demo\] kept (\S+)", out)
    assert kept, out[-2000:]
    work = Path(kept.group(1))
    try:
        # the real entry points ran, on the derived config, with the demo's output name
        assert "Start training model LocPointTransformer ..." in out and "All done!" in out
        assert "Loading from EMA model ..." in out
        exp = work / "ckpt" / "synthetic_thumos_demo"
        ckpt = exp / "epoch_021.pth.tar"  # 1 warm-up + 20 epochs
        assert ckpt.is_file() and (exp / "logs").is_dir()
        assert len(list((work / "data" / "features").glob("*.npy"))) == 30
        derived = load_config(str(work / "synthetic_thumos.yaml"))
        assert derived["opt"]["epochs"] == 20 and derived["opt"]["warmup_epochs"] == 1
        summary = re.search(r"\[demo\] Average mAP: ([0-9.]+) \(%\) - checkpoint: (\S+), "
                            r"TensorBoard: tensorboard --logdir (\S+)", out)
        assert summary, out[-2000:]
        assert Path(summary.group(2)) == ckpt and Path(summary.group(3)) == exp / "logs"
        assert "[demo] total time" in out
        # the summary is eval.py's average over tIoU 0.3 ... 0.7, and the right number for
        # the checkpoint's detections
        report = _report(out)
        assert float(summary.group(1)) == report["average"]
        assert sorted(report["per_tiou"]) == [0.3, 0.4, 0.5, 0.6, 0.7]
        assert abs(sum(report["per_tiou"].values()) / 5 - report["average"]) <= 0.01
        gt, res = _detections(work, exp, ckpt, repo_root)
        assert abs(_oracle_map(gt, res) - report["average"]) <= 0.005
        # and it learned: above what the same detections score with shuffled labels
        shuffled = [_oracle_map(gt, res, seed) for seed in range(10)]
        assert report["average"] > sum(shuffled) / len(shuffled), shuffled
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_failing_training_exits_nonzero(repo_root, tmp_path):
    with open(CONFIG) as f:
        raw = yaml.load(f, Loader=yaml.FullLoader)
    raw["model"]["embd_dimm"] = 64  # a typo: load_config in train.py rejects it
    bad = tmp_path / "synthetic_thumos.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError):
        load_config(str(bad))
    proc = run_script(repo_root, "tools/demo.py", "--dry-run", "--config", str(bad),
                      timeout=120, check=False)
    assert proc.returncode != 0
    assert "[demo] train.py failed" in proc.stdout
    assert "Average mAP" not in proc.stdout
