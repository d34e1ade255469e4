"""A benchmark worker's setup for tests/test_benchmarks.py (spawn needs it importable by name):
reports the process settings the worker runs with."""
from __future__ import annotations

import os
import resource

import torch


def probe_setup(mode: str):
    def run(payload):
        counts = []
        for _ in range(8):  # fresh 64 MiB blocks: faulted in each time unless memory is kept
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            block = torch.empty(16 << 20)
            block.fill_(float(payload))
            del block
            counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return {"pid": os.getpid(), "mode": mode, "faults": counts,
                "onednn_cache": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
                "isa_cap": os.environ.get("ONEDNN_MAX_CPU_ISA")}
    return run
