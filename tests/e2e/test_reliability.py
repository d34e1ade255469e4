"""train.py / eval.py against bad input and interruptions (subprocesses, tiny data sets):
diverging runs stop with the non-finite-loss error, damaged checkpoints give one error line
and leave no experiment folder, and SIGINT / SIGTERM at several moments (found by waiting for
lines of the run's output, never by sleeping) either save interrupted.pth or say why not.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from .conftest import run_script, write_tiny_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NONFINITE = re.compile(r"^error: non-finite training loss at epoch (\d+), iteration (\d+): "
                       r"\{'cls_loss': [^}]*'final_loss': (nan|inf|-inf)\}; videos of the "
                       r"batch: \['video_validation_\d+'", re.M)


def _edit(path: Path, **sections) -> Path:
    cfg = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        if isinstance(values, dict):
            cfg.setdefault(section, {}).update(values)
        else:
            cfg[section] = values
    path.write_text(yaml.safe_dump(cfg))
    return path


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "AssertionError" not in proc.stderr, proc.stderr


def _checkpoints(folder: Path):
    return sorted(p.name for p in folder.glob("epoch_*.pth.tar"))


def test_features_times_1e30_stop_with_the_non_finite_error(tmp_path, conformance_dir,
                                                            repo_root):
    data = tmp_path / "big"
    shutil.copytree(conformance_dir / "tiny_data", data)
    for f in (data / "i3d_features").glob("*.npy"):
        feats = np.load(f).astype(np.float32) * np.float32(1e30)
        assert np.isfinite(feats).all()  # finite in float32: the overflow is in the network
        np.save(f, feats)
    cfg = _edit(write_tiny_config(conformance_dir, tmp_path), dataset={
        "json_file": str(data / "annotations" / "tiny_thumos14.json"),
        "feat_folder": str(data / "i3d_features")})
    proc = run_script(repo_root, "train.py", str(cfg), "--output", "big", "-c", "1",
                      check=False)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr
    _no_traceback(proc)
    match = NONFINITE.search(proc.stderr)
    assert match and match.group(1) == "0", proc.stderr
    assert _checkpoints(tmp_path / "ckpt" / f"{cfg.stem}_big") == []


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from make_synthetic_dataset import make_synthetic_dataset
    out = tmp_path_factory.mktemp("syn")
    make_synthetic_dataset(str(out), num_videos=16, dim=32, seed=0)
    return out


def test_demo_config_with_lr_100_and_no_clipping(tmp_path, synthetic, repo_root):
    cfg = tmp_path / "lr100.yaml"
    shutil.copy(repo_root / "configs" / "synthetic_thumos.yaml", cfg)
    _edit(cfg, dataset={"json_file": str(synthetic / "annotations" / "synthetic.json"),
                        "feat_folder": str(synthetic / "features")},
          opt={"learning_rate": 100.0, "epochs": 9, "warmup_epochs": 1},
          train_cfg={"clip_grad_l2norm": -1}, output_folder=str(tmp_path / "ckpt"))
    proc = run_script(repo_root, "train.py", str(cfg), "--output", "lr", "-c", "1", "-p", "1",
                      check=False)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr
    _no_traceback(proc)
    match = NONFINITE.search(proc.stderr)
    assert match, proc.stderr
    epoch = int(match.group(1))
    # every completed epoch kept its checkpoint, with finite weights; none after the failure
    folder = tmp_path / "ckpt" / "lr100_lr"
    assert _checkpoints(folder) == [f"epoch_{e:03d}.pth.tar" for e in range(1, epoch + 1)]
    for name in _checkpoints(folder):
        ckpt = torch.load(folder / name, weights_only=True)
        assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values()
                   if v.is_floating_point()), name


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, conformance_dir):
    folder = tmp_path_factory.mktemp("damaged")
    good = conformance_dir / "tiny_train" / "epoch_002.pth.tar"
    files = {"empty": b"", "random": np.random.default_rng(1).bytes(3000)}
    if good.exists():
        files["truncated"] = good.read_bytes()[:2000]
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.pth.tar"
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("which", ["empty", "random", "truncated"])
def test_eval_and_resume_of_a_damaged_checkpoint(tmp_path, conformance_dir, repo_root,
                                                 damaged, which):
    if which not in damaged:
        pytest.skip("no conformance checkpoint to truncate")
    path = damaged[which]
    cfg = write_tiny_config(conformance_dir, tmp_path)
    _edit(cfg, devices=["cpu"])  # (no CUDA fall-back warning on stderr)
    proc = run_script(repo_root, "eval.py", str(cfg), str(path), check=False)
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: '{path}' "), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = run_script(repo_root, "train.py", str(cfg), "--output", "res", "--resume",
                      str(path), check=False)
    lines = proc.stderr.strip().splitlines()  # the data set's warnings, then the error
    assert proc.returncode == 1 and lines[-1].startswith(f"error: '{path}' "), proc.stderr
    assert all(ln.startswith("warning: ") for ln in lines[:-1]), proc.stderr
    assert not (tmp_path / "ckpt").exists()  # no experiment folder left behind


def test_debug_shows_the_traceback(tmp_path, conformance_dir, repo_root, damaged):
    cfg = write_tiny_config(conformance_dir, tmp_path)
    proc = run_script(repo_root, "eval.py", str(cfg), str(damaged["empty"]), "--debug",
                      check=False)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert "CheckpointError: '" in proc.stderr and "is empty (0 bytes)" in proc.stderr


# ------------------------------------------------------------------------------ signals
def _start(repo_root: Path, cfg: Path, output: str, *extra: str, ignore_sigint=False):
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    env.pop("ACTIONFORMER_DEBUG", None)

    def preexec():  # as a background job of a non-interactive shell
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen([sys.executable, "train.py", str(cfg), "--output", output,
                             "-p", "1", *extra], cwd=repo_root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=preexec if ignore_sigint else None)


def _wait_for(proc, needle: str, seen: list) -> None:
    for line in proc.stdout:
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"the run ended before printing {needle!r}:\n{''.join(seen)[-3000:]}")


def _finish(proc, seen: list) -> str:
    rest, _ = proc.communicate(timeout=240)  # a hang guard only
    return "".join(seen) + rest


@pytest.fixture
def long_cfg(tmp_path, conformance_dir):
    return write_tiny_config(conformance_dir, tmp_path, epochs=500)


def _interrupted(tmp_path: Path, cfg: Path, output: str) -> Path:
    return tmp_path / "ckpt" / f"{cfg.stem}_{output}" / "interrupted.pth"


@pytest.mark.parametrize("signum, ignore_sigint", [(signal.SIGTERM, False),
                                                   (signal.SIGINT, True)])
def test_signal_during_startup_is_never_ignored(tmp_path, long_cfg, repo_root, signum,
                                                ignore_sigint):
    # SIGINT inherited as ignored (a background job of a non-interactive shell) is how a
    # double Ctrl-C once let the run go on to the end with exit 0
    proc = _start(repo_root, long_cfg, "early", ignore_sigint=ignore_sigint)
    seen: list = []
    _wait_for(proc, "'dataset_name'", seen)  # the config is printed: data and model follow
    proc.send_signal(signum)
    out = _finish(proc, seen)
    assert proc.returncode == 128 + signum, out[-3000:]
    assert "Traceback" not in out and "All done!" not in out
    # the tiny data load in milliseconds: the signal may land before or after the first
    # step (tests/utils/test_interrupt.py pins the start-up phase itself); both outcomes
    # are the documented ones
    path = _interrupted(tmp_path, long_cfg, "early")
    if path.exists():
        assert f"=> interrupted: saved '{path}'" in out
    else:
        name = signal.Signals(signum).name
        assert (f"interrupted: received {name} before the first training step: nothing to "
                "save") in out and "[Train]: Epoch 0 finished" not in out


@pytest.mark.parametrize("needle, extra", [
    ("[Train]: Epoch 0 started", ("--num-workers", "2")),  # data-loader workers starting
    ("Epoch: [000][00001/", ()),                           # between / during steps
    ("[Train]: Epoch 1 started", ()),                      # after an epoch checkpoint
])
def test_signal_during_training_saves_interrupted(tmp_path, long_cfg, repo_root, needle,
                                                  extra):
    proc = _start(repo_root, long_cfg, "run", "-c", "1", *extra)
    seen: list = []
    _wait_for(proc, needle, seen)
    proc.send_signal(signal.SIGINT)
    out = _finish(proc, seen)
    assert proc.returncode == 130, out[-3000:]
    path = _interrupted(tmp_path, long_cfg, "run")
    assert f"=> interrupted: saved '{path}'" in out and "Traceback" not in out
    ckpt = torch.load(path, weights_only=True)
    assert ckpt.get("iteration", 0) >= 1 or ckpt["epoch"] >= 1  # mid-epoch or at its end


def test_second_sigterm_waits_for_the_save(tmp_path, long_cfg, repo_root):
    proc = _start(repo_root, long_cfg, "term2")
    seen: list = []
    _wait_for(proc, "Epoch: [000][00001/", seen)
    proc.send_signal(signal.SIGTERM)
    _wait_for(proc, "=> received SIGTERM", seen)
    proc.send_signal(signal.SIGTERM)
    out = _finish(proc, seen)
    assert proc.returncode == 143, out[-3000:]
    assert torch.load(_interrupted(tmp_path, long_cfg, "term2"), weights_only=True)


def test_double_ctrl_c_is_never_ignored(tmp_path, long_cfg, repo_root):
    proc = _start(repo_root, long_cfg, "int2")
    seen: list = []
    _wait_for(proc, "Epoch: [000][00001/", seen)
    proc.send_signal(signal.SIGINT)
    _wait_for(proc, "=> received SIGINT", seen)
    proc.send_signal(signal.SIGINT)
    out = _finish(proc, seen)
    assert proc.returncode == 130, out[-3000:]
    path = _interrupted(tmp_path, long_cfg, "int2")
    if path.exists():  # the second signal came while the file was written: it waited
        assert "finishing the checkpoint write first" in out and "=> interrupted: saved" in out
        assert torch.load(path, weights_only=True)["epoch"] >= 0
    else:  # it came during a step: stopped at once, and says so
        assert ("interrupted: a second SIGINT stopped training at once: nothing saved"
                in out)
    assert "Traceback" not in out


def test_kill_9_keeps_the_last_checkpoint_resumable(tmp_path, long_cfg, repo_root):
    proc = _start(repo_root, long_cfg, "k9", "-c", "1")
    seen: list = []
    _wait_for(proc, "[Train]: Epoch 1 started", seen)  # epoch_001.pth.tar is complete
    proc.kill()
    _finish(proc, seen)
    folder = tmp_path / "ckpt" / f"{long_cfg.stem}_k9"
    assert torch.load(folder / "epoch_001.pth.tar", weights_only=True)["epoch"] == 1
    stop_cfg = _edit(long_cfg, opt={"early_stop_epochs": 2})
    proc2 = run_script(repo_root, "train.py", str(stop_cfg), "--output", "k9b", "--resume",
                       str(folder / "epoch_001.pth.tar"))
    assert "All done!" in proc2.stdout
