"""DDP with the real model and scripts, CPU only (2 gloo processes via torchrun).

Owns two proofs of docs/distributed.md ("Semantics"):

* one DDP training step of the real ``LocPointTransformer`` (engine pieces wired as train.py
  wires them, see ddp_real_worker.py) on 2 processes x 1 video equals one single-process step
  on the union batch of the 2 videos (docs/reference.md §4.2 loss normaliser, §7.3 training step):
  parameters to 1e-6, the loss normaliser exactly; two deliberately broken runs (no positive
  count all-reduce, no gradient scaling) must NOT match, so the test can fail;
* ``torchrun train.py`` writes the single-process checkpoint format (docs/reference.md §7.1:
  ``module.`` keys, the original's names/order/shapes of the conformance checkpoint), and
  ``torchrun eval.py`` prints the same mAP report as ``python eval.py`` on it (§7.8), with the
  same ``--saveonly`` results.
"""
from __future__ import annotations

import os
import pickle
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from tests._matching import count_unmatched
from tests.e2e import ddp_real_worker as worker
from tests.e2e.conftest import run_script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARAM_ATOL = 1e-6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(repo_root: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           f"--master_port={_free_port()}", "--master_addr=127.0.0.1", *args]
    proc = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _tiny_config(conformance_dir: Path, path: Path, **sections) -> Path:
    """conformance tiny_thumos.yaml with some sections updated, written to ``path``."""
    with open(conformance_dir / "tiny_thumos.yaml") as f:
        cfg = yaml.load(f, Loader=yaml.FullLoader)
    for name, values in sections.items():
        if isinstance(cfg.get(name), dict):
            cfg[name].update(values)
        else:
            cfg[name] = values
    with open(path, "w") as f:
        yaml.dump(cfg, f)
    return path


# ------------------------------------------------------------------------ 1. one DDP step


@pytest.fixture(scope="module")
def ddp_steps(tmp_path_factory, conformance_dir, repo_root):
    folder = tmp_path_factory.mktemp("ddp_step")
    # drop path off: it draws torch.rand per block in every process (not reproducible by one
    # process on the union batch); dropout 0 is the tiny config's own value
    cfg = _tiny_config(conformance_dir, folder / "tiny_ddp_step.yaml",
                       train_cfg={"droppath": 0.0, "dropout": 0.0})
    out = folder / "ddp_steps.pt"
    _torchrun(repo_root, str(repo_root / "tests" / "e2e" / "ddp_real_worker.py"), str(cfg),
              str(conformance_dir / "tiny_inputs.pt"), str(out))
    return cfg, torch.load(out, weights_only=True), torch.load(
        conformance_dir / "tiny_inputs.pt", weights_only=True)["videos"]


_REFERENCES: dict = {}


def _union_batch_reference(cfg_path: Path, scenario: str, videos):
    """(model, initial state, recorded steps) of one process on the union batch (cached)."""
    if scenario not in _REFERENCES:
        cfg = worker.load_scenario_config(str(cfg_path), scenario)
        # the original's rule for 2 devices (DataParallel on the union batch): learning rate x 2
        cfg["opt"]["learning_rate"] *= 2
        model = worker.make_model(cfg)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        batches = [[videos[0], videos[1]] for _ in range(worker.NUM_STEPS)]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the machine's cores are shared: no oversubscription
        try:
            steps = worker.train_steps(cfg, model, batches)
        finally:
            torch.set_num_threads(threads)
        _REFERENCES[scenario] = (model, start, steps)
    return _REFERENCES[scenario]


# SGD's update is linear in the gradient: the two sides differ only by float rounding. Adam
# divides every gradient element by its own running magnitude, which turns rounding noise in
# (near-)zero gradients (e.g. attention key biases, whose exact gradient is 0) into updates of
# order lr: its bound is a small fraction of the per-step size lr (2e-4 here) instead.
TOLERANCE = {"sgd": PARAM_ATOL, "sgd_clip": PARAM_ATOL, "adamw_clip": 1e-5}


@pytest.mark.parametrize("scenario", ["sgd", "sgd_clip", "adamw_clip"])
def test_ddp_step_of_real_model_equals_union_batch_step(ddp_steps, scenario):
    cfg_path, results, videos = ddp_steps
    ddp = results[scenario]
    model, start, ref_steps = _union_batch_reference(cfg_path, scenario, videos)

    # the engine derived the DDP gradient scale (world size) itself
    assert [s["grad_scale"] for s in ddp["steps"][0]] == [2.0] * worker.NUM_STEPS
    assert ddp["replicas_equal"]
    # the normaliser EMA saw the union count: same float arithmetic, exactly equal
    assert ddp["loss_normalizer"][0] == ddp["loss_normalizer"][1] == model.loss_normalizer
    assert model.loss_normalizer != 100.0  # init_loss_norm: the EMA did move
    for i, ref in enumerate(ref_steps):
        # each process's loss is its share of the union-batch loss
        for key in ("cls_loss", "reg_loss", "final_loss"):
            total = ddp["steps"][0][i][key] + ddp["steps"][1][i][key]
            assert total == pytest.approx(ref[key], rel=1e-5, abs=1e-7), (i, key)
        # the gradient every replica stepped with is the union-batch gradient
        for rank in (0, 1):
            assert ddp["steps"][rank][i]["grad_norm"] == pytest.approx(ref["grad_norm"],
                                                                       rel=1e-5)
        if scenario.endswith("_clip"):
            assert ref["grad_norm"] == pytest.approx(0.5, rel=1e-5)  # clipping was active

    moved = max((v - start[k]).abs().max().item() for k, v in model.state_dict().items())
    assert moved > 20 * TOLERANCE[scenario]  # the tolerance is far below the update
    for k, v in model.state_dict().items():
        diff = (ddp["params"][k] - v).abs().max().item()
        assert diff <= TOLERANCE[scenario], f"{scenario}: {k} differs by {diff:.3g}"


@pytest.mark.parametrize("scenario", ["sgd_no_reducer", "sgd_no_grad_scale"])
def test_broken_ddp_path_is_detected(ddp_steps, scenario):
    """Negative controls: without the all-reduce of the positive count, or without the
    gradient scaling, the DDP step is NOT the union-batch step (the check above can fail)."""
    cfg_path, results, videos = ddp_steps
    ddp = results[scenario]
    model, _, _ = _union_batch_reference(cfg_path, "sgd", videos)
    worst = max((ddp["params"][k] - v).abs().max().item()
                for k, v in model.state_dict().items())
    # the correct path agrees to ~1e-8; a broken one misses by far more than the tolerance
    # (the normaliser moves only 10 % per step from init_loss_norm 100 towards the count,
    # so a per-process count changes the step by a few per cent)
    assert worst > 10 * PARAM_ATOL, f"{scenario}: max parameter difference {worst:.3g}"
    if scenario == "sgd_no_reducer":
        # every process normalised by its own count, not by the union count
        assert ddp["loss_normalizer"][0] != ddp["loss_normalizer"][1]
        assert model.loss_normalizer not in ddp["loss_normalizer"]
    else:
        # the gradient scale alone was wrong: the count and the loss split were right
        assert ddp["loss_normalizer"] == [model.loss_normalizer] * 2
        assert [s["grad_scale"] for s in ddp["steps"][0]] == [1.0] * worker.NUM_STEPS


# --------------------------------------------------- 2. torchrun train.py / eval.py on data


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, conformance_dir, repo_root):
    """Synthetic data (4 training, 5 test videos; the tiny model's 32 channels, 5 classes) and
    a 2-epoch DDP training run (1 warm-up epoch; 2 iterations per epoch and process)."""
    folder = tmp_path_factory.mktemp("ddp_run")
    data = folder / "data"
    run_script(repo_root, "tools/make_synthetic_dataset.py", str(data), "--videos", "9",
               "--classes", "5", "--dim", "32", "--min-len", "64", "--max-len", "160",
               "--test-fraction", "0.55", "--max-actions", "2", "--min-action-len", "8",
               "--noise", "0.3")
    cfg = _tiny_config(conformance_dir, folder / "tiny_ddp.yaml",
                       dataset={"json_file": str(data / "annotations" / "synthetic.json"),
                                "feat_folder": str(data / "features")},
                       opt={"epochs": 1, "warmup_epochs": 1, "learning_rate": 0.001},
                       loader={"batch_size": 1, "num_workers": 0},
                       output_folder=str(folder / "ckpt"), devices=["cpu"])
    proc = _torchrun(repo_root, "train.py", str(cfg), "--output", "ddp", "--device", "cpu",
                     "-p", "1")
    return cfg, folder / "ckpt" / "tiny_ddp_ddp", proc


def test_ddp_training_writes_single_process_checkpoint(ddp_run, conformance_dir):
    _, exp, proc = ddp_run
    # rank 0 alone prints and writes
    assert proc.stdout.count("All done!") == 1
    assert proc.stdout.count("[Train]: Epoch 1 finished") == 1
    assert sorted(os.listdir(exp)) == ["config.txt", "config.yaml", "epoch_002.pth.tar", "logs"]
    ckpt = torch.load(exp / "epoch_002.pth.tar", map_location="cpu", weights_only=True)
    assert list(ckpt)[:5] == ["epoch", "state_dict", "scheduler", "optimizer",
                              "state_dict_ema"]
    assert ckpt["epoch"] == 2
    # names (with the original's 'module.' prefix), order and shapes of the original's file
    expected = torch.load(conformance_dir / "tiny_expected.pt",
                          weights_only=True)["param_shapes"]
    for key in ("state_dict", "state_dict_ema"):
        assert list(ckpt[key]) == list(expected), key
        assert [list(v.shape) for v in ckpt[key].values()] == [list(s) for s in
                                                              expected.values()]
    # DistributedSampler shards: 4 videos / 2 processes = 2 iterations per epoch
    assert ckpt["scheduler"]["last_epoch"] == 4
    # learning rate x world size (docs/distributed.md)
    assert [g["initial_lr"] for g in ckpt["optimizer"]["param_groups"]] == [0.002, 0.002]
    assert isinstance(ckpt["loss_normalizer"], float) and ckpt["loss_normalizer"] != 100.0


def _report(stdout: str) -> list:
    """The evaluator's printed block: '[RESULTS] ...' through 'Average mAP: ...'."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("[RESULTS]"))
    end = next(i for i, line in enumerate(lines) if line.startswith("Average mAP:"))
    return lines[start:end + 1]


def test_ddp_eval_prints_the_single_process_map(ddp_run, repo_root):
    cfg, exp, _ = ddp_run
    ddp = _torchrun(repo_root, "eval.py", str(cfg), str(exp), "--device", "cpu")
    single = run_script(repo_root, "eval.py", str(cfg), str(exp), "--device", "cpu")
    assert ddp.stdout.count("Average mAP:") == 1  # rank 0 alone evaluates
    assert _report(ddp.stdout) == _report(single.stdout)
    ddp_map = float(re.search(r"Average mAP: ([\d.]+)", ddp.stdout).group(1))
    assert ddp_map == float(re.search(r"Average mAP: ([\d.]+)", single.stdout).group(1))
    # not a trivial 0 == 0 (the EMA weights are near the initialisation after 4 steps, so
    # the mAP is small, but the ranking of 5 videos' detections decides it)
    assert ddp_map > 0


def test_ddp_saveonly_equals_single_process(ddp_run, repo_root):
    cfg, exp, _ = ddp_run
    results = {}
    for name, run in (("ddp", _torchrun), ("single", run_script)):
        run(repo_root, "eval.py", str(cfg), str(exp), "--device", "cpu", "--saveonly")
        with open(exp / "eval_results.pkl", "rb") as f:
            results[name] = pickle.load(f)
        os.remove(exp / "eval_results.pkl")
    ddp, single = results["ddp"], results["single"]
    # the 5 test videos: 3 inferred by rank 0, 2 by rank 1, gathered back in dataset order
    assert len(set(single["video-id"])) == 5
    assert ddp["video-id"] == single["video-id"]
    for key in ("t-start", "t-end", "label", "score"):
        assert ddp[key].dtype == single[key].dtype
    # per video the same detections; a process with another thread count may round the
    # convolutions differently (float tolerance), which can swap near-tied detections
    ids = np.asarray(single["video-id"])
    for vid in dict.fromkeys(single["video-id"]):
        rows = ids == vid
        sets = [{"segments": torch.from_numpy(np.stack([r["t-start"][rows], r["t-end"][rows]],
                                                       axis=1)),
                 "scores": torch.from_numpy(r["score"][rows]),
                 "labels": torch.from_numpy(r["label"][rows])} for r in (ddp, single)]
        assert count_unmatched(sets[0], sets[1], seg_tol=1e-4, score_tol=1e-5) == 0, vid
