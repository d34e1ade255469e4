"""tools/demo.py and configs/synthetic_thumos.yaml (the README's Quick start), fast checks only.

Oracles: the config against the original schema (load_config) and values worked out by hand
(pyramid strides 1..32 with window 9 need max_seq_len % (32 * 2 * 4) == 0,
docs/reference.md §3.10); the generator options against the config; ``--dry-run`` runs the
real train.py / eval.py end to end on 8 videos and its files are inspected on disk. The full
demo (minutes) is not run here.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from libs.core import ConfigError, load_config

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
    assert (ds["feat_stride"], ds["num_frames"]) == (4, 16)
    assert ds["json_file"] == "./data/synthetic/annotations/synthetic.json"
    assert ds["feat_folder"] == "./data/synthetic/features"
    # the generated data must fit the config: classes, channels, splits, grid
    gen = demo.GENERATOR
    assert ds["num_classes"] == gen["classes"] and ds["input_dim"] == gen["dim"]
    assert gen["train-subset"].lower() in cfg["train_split"]
    assert gen["test-subset"].lower() in cfg["val_split"]
    assert (gen["fps"], gen["feat-stride"], gen["num-frames"]) == (30.0, 4, 16)
    assert cfg["loader"]["num_workers"] <= 1
    assert cfg["opt"]["learning_rate"] == 1e-3 and cfg["train_cfg"]["clip_grad_l2norm"] == 1.0


def test_config_divisibility_by_hand():
    cfg = load_config(str(CONFIG))
    model = cfg["model"]
    levels = model["backbone_arch"][-1] + 1
    assert levels == 6 and model["scale_factor"] == 2 and model["n_mha_win_size"] == 9
    for level in range(levels):
        stride = 2 ** level
        assert cfg["dataset"]["max_seq_len"] % (stride * 2 * (9 // 2)) == 0
    assert cfg["dataset"]["max_seq_len"] % 256 == 0


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


@pytest.mark.slow
def test_dry_run_end_to_end(repo_root, e2e_ready):
    proc = run_script(repo_root, "tools/demo.py", "--dry-run", "--keep", timeout=240)
    out = proc.stdout
    kept = re.search(r"\[demo\] kept (\S+)", out)
    assert kept, out[-2000:]
    work = Path(kept.group(1))
    try:
        # the real entry points ran, on the derived config, with the demo's output name
        assert "Start training model LocPointTransformer ..." in out and "All done!" in out
        assert "Loading from EMA model ..." in out
        assert re.search(r"^\|tIoU = 0\.30: mAP = ", out, re.M)
        exp = work / "ckpt" / "synthetic_thumos_demo"
        ckpt = exp / "epoch_002.pth.tar"  # 1 warm-up + 1 epoch
        assert ckpt.is_file() and (exp / "logs").is_dir()
        assert len(list((work / "data" / "features").glob("*.npy"))) == demo.DRY_RUN_VIDEOS
        derived = load_config(str(work / "synthetic_thumos.yaml"))
        assert derived["opt"]["epochs"] == 1 and derived["opt"]["warmup_epochs"] == 1
        summary = re.search(r"\[demo\] Average mAP: ([0-9.]+) \(%\) - checkpoint: (\S+), "
                            r"TensorBoard: tensorboard --logdir (\S+)", out)
        assert summary, out[-2000:]
        assert 0.0 <= float(summary.group(1)) <= 100.0
        assert Path(summary.group(2)) == ckpt and Path(summary.group(3)) == exp / "logs"
        assert "[demo] total time" in out
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_failing_training_exits_nonzero(repo_root, tmp_path, e2e_ready):
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
