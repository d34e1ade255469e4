"""The fast procedure keeps freed host memory (libs/utils/host_memory.py).

Page-fault counts, not times: a fresh 64 MiB block is 16,384 first-touch faults of 4 KiB;
glibc's default hands such a block back to the kernel on free, so every new one faults again.
Each case runs in a fresh interpreter (the setting is process-wide).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from libs.utils import host_memory, procedure
from libs.utils.procedure import FAITHFUL, FAST, configure_process

ROOT = Path(__file__).resolve().parents[2]

_FAULTS = r"""
import json, resource, sys, torch
from libs.utils.host_memory import keep_freed_memory

def faults_of_fresh_blocks(n=8, mib=64):
    counts = []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = torch.empty(mib << 18)  # float32: mib MiB
        block.fill_(1.0)
        del block
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return counts

default = faults_of_fresh_blocks()
applied = keep_freed_memory()
kept = faults_of_fresh_blocks()
print(json.dumps([applied, default, kept]))
"""


def _run(code, **env):
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    applied, default, kept = json.loads(out.stdout)
    return applied, (default, kept)


glibc = pytest.mark.skipif(not host_memory.glibc_malloc_available(),
                           reason="glibc's malloc only (Linux)")


@glibc
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    applied, (default, kept) = _run(_FAULTS)
    assert applied
    pages = (64 << 20) // 4096
    # glibc's default: every fresh 64 MiB block is mmap'ed and faulted in page by page
    assert all(count >= 0.9 * pages for count in default), default
    # kept: once the heap holds a freed block of the size, blocks are reused without new
    # pages (how soon varies with the heap's layout: an aligned request need not fit the
    # first freed block), so fewer pages are faulted in than glibc's default's every one
    assert sum(kept) < 0.9 * sum(default), kept


@glibc
def test_freed_blocks_stay_in_the_heap():
    code = _FAULTS.replace("print(json.dumps([applied, default, kept]))", """
import ctypes
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
before = libc.mallinfo2()
block = torch.empty(64 << 18); block.fill_(1.0)
held = libc.mallinfo2()
del block
freed = libc.mallinfo2()
print(json.dumps([applied, [held.hblks - before.hblks, held.hblkhd - before.hblkhd],
                  [freed.arena, freed.fordblks]]))""")
    applied, ((mmapped_blocks, mmapped_bytes), (heap, free_in_heap)) = _run(code)
    assert applied
    assert mmapped_blocks == 0 and mmapped_bytes == 0  # the block came from the heap
    assert heap >= 64 << 20 and free_in_heap >= 64 << 20  # and stayed there once freed


@glibc
def test_a_users_malloc_settings_are_kept():
    applied, (default, kept) = _run(_FAULTS, MALLOC_ARENA_MAX="4")
    assert not applied
    pages = (64 << 20) // 4096
    assert all(count >= 0.9 * pages for count in kept), kept  # glibc's behaviour unchanged


def test_only_the_fast_procedure_keeps_freed_memory(monkeypatch):
    assert FAST.keep_freed_memory and not FAITHFUL.keep_freed_memory
    calls = []
    monkeypatch.setattr(procedure, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(procedure, "cap_cpu_isa", lambda isa: calls.append(isa) or True)
    configure_process(FAITHFUL)
    assert calls == ["AVX2"]
    configure_process(FAITHFUL, cap_isa=False)  # the benchmarks: the machine's best ISA
    assert calls == ["AVX2"]
    configure_process(FAST)
    assert calls == ["AVX2", 1]


_RELEASE = r"""
import json, torch
from libs.utils import host_memory
before = host_memory.release_excess_memory(limit=1)  # not kept yet: a no-op
host_memory.keep_freed_memory()
blocks = [torch.empty(16 << 20).fill_(1.0) for _ in range(4)]  # 4 x 64 MiB
del blocks
kept = host_memory.kept_free_bytes()
small = host_memory.release_excess_memory(limit=kept + 1)  # under the limit: kept
released = host_memory.release_excess_memory(limit=64 << 20)
after = host_memory.kept_free_bytes()
print(json.dumps([before, [kept, small], [released, after]]))
"""


@glibc
def test_freed_memory_beyond_the_limit_is_given_back():
    if host_memory.kept_free_bytes() is None:
        pytest.skip("mallinfo2 needs glibc 2.33")
    before, ((kept, small), (released, after)) = _run(_RELEASE)
    assert before is False and small is False
    assert kept >= 4 * (64 << 20)  # the four freed blocks stayed in the heap
    assert released is True and after < kept  # malloc_trim gave the free pages back
