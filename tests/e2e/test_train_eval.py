"""train.py / eval.py end to end on CPU (subprocesses) with the tiny conformance data."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading

import pytest
import torch

from .conftest import run_script, write_tiny_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, conformance_dir, repo_root):
    """3 epochs (1 warm-up + 2), checkpoint every epoch."""
    folder = tmp_path_factory.mktemp("e2e")
    cfg = write_tiny_config(conformance_dir, folder)
    proc = run_script(repo_root, "train.py", str(cfg), "--output", "full", "-c", "1", "-p", "1")
    return folder, cfg, folder / "ckpt" / "tiny_e2e_full", proc


def test_training_outputs(full_run):
    from libs.core import load_config
    folder, cfg, exp, proc = full_run
    assert "Start training model LocPointTransformer ..." in proc.stdout
    assert "All done!" in proc.stdout
    assert "Using model EMA ..." in proc.stdout
    assert proc.stderr.count("no CUDA device is available") <= 1
    names = sorted(os.listdir(exp))
    for n in ("epoch_001.pth.tar", "epoch_002.pth.tar", "epoch_003.pth.tar", "config.txt",
              "config.yaml", "logs"):
        assert n in names
    ckpt = torch.load(exp / "epoch_003.pth.tar", map_location="cpu", weights_only=True)
    assert list(ckpt)[:5] == ["epoch", "state_dict", "scheduler", "optimizer",
                              "state_dict_ema"]
    assert ckpt["epoch"] == 3 and all(k.startswith("module.") for k in ckpt["state_dict"])
    assert ckpt["scheduler"]["last_epoch"] == 6  # 3 epochs x 2 iterations, per iteration
    reloaded = load_config(str(exp / "config.yaml"))
    assert reloaded["opt"]["epochs"] == 2 and reloaded["train_cfg"]["head_empty_cls"] == []
    assert "'model_name': 'LocPointTransformer'" in (exp / "config.txt").read_text()


def test_tensorboard_events(full_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    _, _, exp, _ = full_run
    acc = EventAccumulator(str(exp / "logs"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "train/learning_rate" in tags and "train/final_loss" in tags
    steps = [e.step for e in acc.Scalars("train/learning_rate")]
    assert steps == [1, 3, 5]  # iteration 1 of each epoch (2 iterations per epoch)
    # add_scalars writes one sub-folder per loss key
    assert any("all_losses" in d for d in os.listdir(exp / "logs"))


def test_eval_and_saveonly(full_run, repo_root):
    folder, cfg, exp, _ = full_run
    proc = run_script(repo_root, "eval.py", str(cfg), str(exp))
    assert f"=> loading checkpoint '{exp / 'epoch_003.pth.tar'}'" in proc.stdout
    assert "Loading from EMA model ..." in proc.stdout
    assert "All done! Total time:" in proc.stdout and "mAP" in proc.stdout
    proc = run_script(repo_root, "eval.py", str(cfg), str(exp), "-epoch", "2", "--saveonly")
    assert "epoch_002.pth.tar" in proc.stdout
    with open(exp / "eval_results.pkl", "rb") as f:
        res = pickle.load(f)
    assert set(res) == {"video-id", "t-start", "t-end", "label", "score"}
    assert len(res["video-id"]) == res["score"].shape[0] > 0


def test_eval_bf16_is_opt_in_and_close(full_run, repo_root):
    _, cfg, exp, _ = full_run
    results = {}
    for flag in ([], ["--bf16"]):
        proc = run_script(repo_root, "eval.py", str(cfg), str(exp), "--saveonly", *flag)
        assert ("Inference under bfloat16 autocast (--bf16)" in proc.stdout) == bool(flag)
        with open(exp / "eval_results.pkl", "rb") as f:
            results[bool(flag)] = pickle.load(f)
        os.remove(exp / "eval_results.pkl")
    fp32, bf16 = results[False], results[True]
    assert set(bf16["video-id"]) == set(fp32["video-id"])
    # bf16 keeps about 3 significant digits: the strongest detection of each video moves a
    # little, it does not disappear
    for vid in set(fp32["video-id"]):
        a = fp32["score"][[v == vid for v in fp32["video-id"]]].max()
        b = bf16["score"][[v == vid for v in bf16["video-id"]]].max()
        assert abs(a - b) < 0.05 * max(a, 1e-3), vid


def test_eval_original_checkpoint(full_run, repo_root, conformance_dir):
    _, cfg, _, _ = full_run
    ckpt = conformance_dir / "tiny_thumos_perturbed" / "epoch_000.pth.tar"
    proc = run_script(repo_root, "eval.py", str(cfg), str(ckpt), "--device", "cpu")
    assert "All done!" in proc.stdout


def test_resume_is_bitwise_exact(full_run, repo_root, conformance_dir):
    folder, cfg, exp, _ = full_run
    cfg_stop = write_tiny_config(conformance_dir, folder, early_stop_epochs=1)
    run_script(repo_root, "train.py", str(cfg_stop), "--output", "part", "-c", "1")
    part = folder / "ckpt" / f"{cfg_stop.stem}_part" / "epoch_001.pth.tar"
    proc = run_script(repo_root, "train.py", str(cfg), "--output", "resumed", "-c", "1",
                      "--resume", str(part))
    assert f"=> loaded checkpoint '{part}' (epoch 1" in proc.stdout
    a = torch.load(exp / "epoch_003.pth.tar", weights_only=True)
    b = torch.load(folder / "ckpt" / "tiny_e2e_resumed" / "epoch_003.pth.tar",
                   weights_only=True)
    for key in ("state_dict", "state_dict_ema"):
        for (ka, va), (kb, vb) in zip(a[key].items(), b[key].items()):
            assert ka == kb and torch.equal(va, vb), f"{key}/{ka} differs after resume"
    assert a["loss_normalizer"] == b["loss_normalizer"]


def test_missing_resume_file_is_an_error(full_run, repo_root):
    _, cfg, _, _ = full_run
    proc = run_script(repo_root, "train.py", str(cfg), "--output", "x", "--resume",
                      "does_not_exist.pth.tar", check=False)
    assert proc.returncode != 0 and "no checkpoint found at 'does_not_exist.pth.tar'" in proc.stderr


def _wait_for_line(proc: subprocess.Popen, marker: str, limit_s: float) -> list:
    """Lines of ``proc``'s output up to the first one containing ``marker``.

    Waits for the event, not the clock: ``limit_s`` is only a generous upper bound for a hung
    process; reaching it (or the process ending without the line) fails the test, and the
    process is killed, never signalled early.
    """
    lines: list = []
    done = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(limit_s)
    if not any(marker in line for line in lines):
        proc.kill()
        proc.wait()
        pytest.fail(f"no line with {marker!r} (process ended or {limit_s:.0f} s passed):\n"
                    + "".join(lines)[-3000:])
    return lines


def test_sigterm_saves_resumable_checkpoint(full_run, repo_root, conformance_dir):
    folder, _, _, _ = full_run
    cfg = write_tiny_config(conformance_dir, folder, epochs=500)
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "train.py", str(cfg), "--output", "sig", "-p",
                             "1"], cwd=repo_root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # epoch 0 is complete once epoch 1 starts: the signal then interrupts a resumable run
    lines = _wait_for_line(proc, "[Train]: Epoch 1 started", limit_s=1800)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    path = folder / "ckpt" / f"{cfg.stem}_sig" / "interrupted.pth"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["epoch"] >= 1 and "rng_state" in ckpt
    # resumable: finish the interrupted epoch and one more
    stop_cfg = write_tiny_config(conformance_dir, folder, epochs=500,
                                 early_stop_epochs=ckpt["epoch"] + 2)
    proc2 = run_script(repo_root, "train.py", str(stop_cfg), "--output", "sig2", "--resume",
                       str(path))
    assert "All done!" in proc2.stdout
