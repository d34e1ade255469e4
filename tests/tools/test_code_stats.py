"""tools/code_stats.py: function lengths (decorators included, methods qualified) and the report."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import code_stats  # noqa: E402

SOURCE = '''
@decorator
def outer(x):
    def inner():
        return 1
    return inner


class Box:
    def size(self):
        return 0
'''


def test_function_lengths_hand_counted():
    sizes = list(code_stats.functions(ast.parse(SOURCE), "m.py"))
    assert sizes == [code_stats.FunctionSize("m.py", "outer", 5),
                     code_stats.FunctionSize("m.py", "outer.inner", 2),
                     code_stats.FunctionSize("m.py", "Box.size", 2)]


def test_report_on_the_config_package():
    root = Path(code_stats.__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "tools/code_stats.py", "libs/core", "--max-func", "1"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    n_files = len(list((root / "libs" / "core").glob("*.py")))
    assert lines[0].startswith(f"{n_files} files, ")
    assert "files over 400 lines: 0" in lines
    assert any(line.endswith("  libs/core/config.py:derive_keys") for line in lines)
    assert lines[-1] == "files without a module docstring: 0"
