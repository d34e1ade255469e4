"""Imports inside ``libs`` go one way only, and the literal ``cuda`` stays in one device module.

Allowed (a package may import itself and the ones listed):
core → nothing; utils → core; ops → utils, core; modeling → ops, utils, core;
datasets → utils, core; evaluation → utils, core; video (clip encoders for feature
extraction) → utils, core; engine → everything below it.
Nothing inside libs imports engine.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LIBS = Path(__file__).resolve().parents[1] / "libs"
ROOT = LIBS.parent

ALLOWED = {
    "core": set(),
    "utils": {"core"},
    "ops": {"utils", "core"},
    "modeling": {"ops", "utils", "core"},
    "datasets": {"utils", "core"},
    "evaluation": {"utils", "core"},
    "video": {"utils", "core"},
    "engine": {"core", "utils", "ops", "modeling", "datasets", "evaluation"},
}


def _imported_subpackages(path: Path, own: str):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names = [node.module or ""]
            else:
                # relative import: resolve against this file's package
                pkg = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
                base = pkg[: len(pkg) - (node.level - 1)]
                if node.module:
                    names = [".".join(base + [node.module])]
                else:
                    names = [".".join(base + [a.name]) for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "libs" and len(parts) > 1 and parts[1] in ALLOWED:
                yield parts[1], node.lineno


def _package_files():
    for sub in ALLOWED:
        for path in sorted((LIBS / sub).rglob("*.py")):
            yield sub, path


def test_imports_only_go_downwards():
    bad = []
    for own, path in _package_files():
        for target, line in _imported_subpackages(path, own):
            if target != own and target not in ALLOWED[own]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports libs.{target}")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


# device.py/comm.py own device handling; core/schema.py only holds the frozen default value
# devices: ['cuda:0'] of the original's DEFAULTS (resolved at run time by device.py).
DEVICE_MODULES = {LIBS / "utils" / "device.py", LIBS / "utils" / "comm.py",
                  LIBS / "core" / "schema.py"}
CUDA_LITERAL = re.compile(r"""\.cuda\(|["']cuda(:\d+)?["']|torch\.cuda\.""")


@pytest.mark.parametrize("path", [*sorted(LIBS.rglob("*.py")), ROOT / "train.py", ROOT / "eval.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_literal_cuda_outside_device_module(path):
    if not path.exists() or path in DEVICE_MODULES:
        pytest.skip("not applicable")
    hits = [f"{i}: {line.strip()}" for i, line in enumerate(path.read_text().splitlines(), 1)
            if CUDA_LITERAL.search(line) and not line.lstrip().startswith("#")]
    assert not hits, f"{path.relative_to(ROOT)} spells CUDA outside libs/utils/device.py:\n" + "\n".join(hits)
