"""The benchmark scripts run: every one imports and parses its options, and the tiny-model
benchmark runs its comparison end to end (faithful vs fast on the same inputs, agreement
check included) at a reduced scale. Timings are printed, never asserted."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

SCRIPTS = ["bench_bf16.py", "bench_eval.py", "bench_extract.py", "bench_fidelity.py",
           "bench_inference.py", "bench_model.py", "bench_nms.py", "bench_positions.py",
           "bench_tiny.py", "bench_train.py"]


def _run(repo_root, *args, timeout=300, program=None):
    env = dict(os.environ, PYTHONPATH=str(repo_root), OMP_NUM_THREADS="1",
               PYTHON=sys.executable)
    return subprocess.run(program or [sys.executable, *args], cwd=repo_root, env=env,
                          timeout=timeout, capture_output=True, text=True)


def test_every_benchmark_is_listed(repo_root):
    assert sorted(p.name for p in (repo_root / "benchmarks").glob("bench_*.py")) == SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_imports_and_parses_options(repo_root, script):
    proc = _run(repo_root, f"benchmarks/{script}", "--help", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_each_mode_runs_in_its_own_process_configured_as_the_entry_points(repo_root,
                                                                          monkeypatch):
    from libs.utils.host_memory import glibc_malloc_available
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY",
                 "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MALLOC_ARENA_MAX",
                 "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                 "MALLOC_TOP_PAD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.syspath_prepend(str(repo_root / "benchmarks"))
    from _workers import ModeWorker
    from tests._bench_probe import probe_setup
    pages = (64 << 20) // 4096
    with ModeWorker("fast", probe_setup) as fast, ModeWorker("faithful", probe_setup) as slow:
        got = {"fast": fast(1), "faithful": slow(2)}
    assert got["fast"]["pid"] != got["faithful"]["pid"] != os.getpid()
    assert got["fast"]["onednn_cache"] is not None and got["faithful"]["onednn_cache"] is None
    assert got["faithful"]["isa_cap"] is None  # benchmarks: the machine's best ISA, as the original
    if glibc_malloc_available():
        # kept: blocks are reused once the heap holds one (glibc's default faults every one in)
        assert sum(got["fast"]["faults"]) < 0.9 * sum(got["faithful"]["faults"]), got
    local = ModeWorker("fast", probe_setup, in_process=True)(3)
    assert local["pid"] == os.getpid()


@pytest.mark.slow
def test_inference_benchmark_runs_both_modes_in_workers(repo_root):
    proc = _run(repo_root, "benchmarks/bench_inference.py", "--videos", "1", "--skip-bf16")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "each in its own process, configured as the entry points configure it" in proc.stdout
    assert "detections matched: 100.0%" in proc.stdout
    assert re.search(r"\nfaithful +[0-9.]+ +[0-9]+\nfast +[0-9.]+ +[0-9]+\n", proc.stdout)


@pytest.mark.slow
def test_tiny_benchmark_compares_modes_end_to_end(repo_root, conformance_dir):
    proc = _run(repo_root, "benchmarks/bench_tiny.py", "--regimes", "short", "--repeats", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for mode in ("faithful", "overhead", "fast"):
        assert f"\n{mode} " in proc.stdout
    assert "check: first-iteration loss equal to faithful" in proc.stdout


@pytest.mark.slow
def test_extract_benchmark_compares_procedures_end_to_end(repo_root):
    proc = _run(repo_root, "benchmarks/bench_extract.py", "--videos", "2", "--seconds", "1",
                "--width", "64", "--height", "48", "--size", "16", "--batch-size", "4")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in ("pipeline", "naive"):
        assert f"\n{name} " in proc.stdout
    assert "check: features identical in both procedures: yes" in proc.stdout


def test_fidelity_benchmark_trains_and_evaluates_both_procedures(repo_root, conformance_dir):
    proc = _run(repo_root, "benchmarks/bench_fidelity.py", "--configs", "tiny", "--seeds", "1",
                "--epochs-scale", "tiny", timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for mode in ("faithful", "fast"):
        assert f"tiny seed 1 {mode}: average mAP " in proc.stdout
    assert "tiny: faithful " in proc.stdout and "the seed spread" in proc.stdout


def test_gpu_check_script_parses_options(repo_root):
    proc = _run(repo_root, "benchmarks/gpu_check.py", "--help", timeout=120)
    assert proc.returncode == 0 and "--tiny" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.slow
def test_gpu_check_dry_run_prints_one_table_of_every_row(repo_root, conformance_dir):
    proc = _run(repo_root, program=["bash", "benchmarks/gpu_check.sh", "--dry-run"])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("\nwork ") == 1  # one table header
    for row in ("infer b1 fast fp32", "infer b1 faithful fp32", "infer b1 fast bf16",
                "infer b1 fast fp16", "infer b2 fast fp32", "train faithful fp32",
                "train fast fp32", "train fast bf16", "train fast fp16"):
        assert f"\n{row} " in proc.stdout, row
    # the fast fp32 detections equal the faithful ones; the training losses start equal
    assert re.search(r"\ninfer b1 faithful fp32 .* 100\.0% dets matched", proc.stdout)
    assert re.search(r"\ntrain fast fp32 .* loss max rel \d\.\de-0[4-9]|"
                     r"\ntrain fast fp32 .* loss max rel 0\.0e\+00", proc.stdout)
