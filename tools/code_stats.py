"""Code size report (maintainers' tool): file and function lengths, files without a docstring.

Usage: python tools/code_stats.py [PATH ...] [--max-file 400] [--max-func 60]
Defaults to libs/, tools/, benchmarks/, tests/ and the entry points. Prints the totals, the
files over ``--max-file`` lines, the functions over ``--max-func`` lines and the ``.py`` files
that do not open with a module docstring. Exit code 0 always (a report, not a gate).
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Iterator, List, NamedTuple, Sequence

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = ("libs", "tools", "benchmarks", "tests", "train.py", "eval.py", "setup.py")


class FunctionSize(NamedTuple):
    """A function (or method) and its length in lines, decorators included."""

    path: str
    name: str
    lines: int


def python_files(paths: Sequence[str]) -> List[Path]:
    """The ``.py`` files under ``paths`` (relative to the repository root), sorted."""
    files: List[Path] = []
    for name in paths:
        path = ROOT / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
    return files


def functions(tree: ast.AST, rel: str) -> Iterator[FunctionSize]:
    """Every function and method of a module with its qualified name."""
    def walk(node: ast.AST, prefix: str) -> Iterator[FunctionSize]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                yield FunctionSize(rel, prefix + child.name, child.end_lineno - first + 1)
                yield from walk(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
    return walk(tree, "")


def report(paths: Sequence[str], max_file: int, max_func: int) -> str:
    """The text report for the ``.py`` files under ``paths``."""
    big_files, big_funcs, undocumented = [], [], []
    n_lines = n_funcs = 0
    files = python_files(paths)
    for path in files:
        rel = str(path.relative_to(ROOT))
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=rel)
        lines = len(text.splitlines())
        n_lines += lines
        if lines > max_file:
            big_files.append(f"  {lines:5d}  {rel}")
        if ast.get_docstring(tree) is None:
            undocumented.append(f"  {rel}")
        for fn in functions(tree, rel):
            n_funcs += 1
            if fn.lines > max_func:
                big_funcs.append(f"  {fn.lines:5d}  {fn.path}:{fn.name}")
    out = [f"{len(files)} files, {n_lines} lines, {n_funcs} functions",
           f"files over {max_file} lines: {len(big_files)}", *sorted(big_files, reverse=True),
           f"functions over {max_func} lines: {len(big_funcs)}", *sorted(big_funcs, reverse=True),
           f"files without a module docstring: {len(undocumented)}", *undocumented]
    return "\n".join(out)


def main(argv: Sequence[str] = ()) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS),
                        help="files or folders relative to the repository root")
    parser.add_argument("--max-file", type=int, default=400, help="file length to report")
    parser.add_argument("--max-func", type=int, default=60, help="function length to report")
    args = parser.parse_args(list(argv) or None)
    print(report(args.paths, args.max_file, args.max_func))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
