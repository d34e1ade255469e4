#!/usr/bin/env python
"""Checks the citations of the behaviour contract: no file cites the old ``REFERENCE.md``, and
every ``docs/reference.md §N.M`` (or appendix letter) names a section that docs/reference.md has.

    python tools/check_citations.py [--root DIR]

Prints one ``path:line: problem`` per finding and exits 1 when there is any (0 otherwise).
Scans the repository's text files (``git ls-files``, tracked and untracked-not-ignored; a plain
walk when git is not available).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set

__all__ = ["SUFFIXES", "REFERENCE_DOC", "EXEMPT", "Problem", "reference_sections", "repo_files",
           "old_citations", "bad_sections", "check", "main"]

REFERENCE_DOC = "docs/reference.md"
SUFFIXES = (".py", ".md", ".sh", ".cpp", ".h", ".cu", ".yaml", ".yml", ".txt", ".cfg", ".ini")
_SKIP_DIRS = {"__pycache__", "build", "dist", "node_modules"}
# the check and its test cite wrong spellings and sections on purpose
EXEMPT = ("tools/check_citations.py", "tests/test_docs_citations.py")
# the old spelling: REFERENCE.md, or REFERENCE followed by a section (§x, Appendix / App. X),
# also across a line break inside a comment; not a name such as REFERENCE = or _REFERENCES
_OLD = re.compile(r"\bREFERENCE(?:\.md\b|`?\s*(?:(?:#|//|\*)\s*)?(?:§|App(?:endix|\.)))")
_NEW = re.compile(r"docs/reference\.md`?")
# a citation's reach: up to a clause end, another file name, a blank line, or 160 characters
_STOP = re.compile(r"[;)\]]|\n\s*\n|[\w./-]+\.(?:md|py|txt|yaml|json)\b")
_SECTION = re.compile(r"§\s*(\d+(?:\.\d+)*)(?:\s*[-–]\s*§?\s*(\d+(?:\.\d+)*))?")
_APPENDIX = re.compile(r"\b(?:Appendix|App\.)\s+([A-Z])\b")
_HEADING = re.compile(r"^#{2,4}\s+(?:(\d+(?:\.\d+)*)\.?\s|Appendix\s+([A-Z])\b)")

Problem = str  # "path:line: message"


def reference_sections(text: str) -> Set[str]:
    """Section numbers (``"3"``, ``"3.10"``) and appendix letters (``"E"``) of the headings."""
    found: Set[str] = set()
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            found.add(m.group(1) or m.group(2))
    return found


def repo_files(root: Path) -> List[Path]:
    """The repository's files with a text suffix, relative to ``root``, sorted."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=root, capture_output=True,
                             check=True).stdout.decode("utf-8")
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                       and not d.endswith(".egg-info")]
            names += [os.path.relpath(os.path.join(folder, f), root) for f in files]
    paths = {Path(n) for n in names if n.endswith(SUFFIXES) and (root / n).is_file()}
    return sorted(paths)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def old_citations(rel: str, text: str) -> List[Problem]:
    """One problem per line that cites the old ``REFERENCE.md`` / ``REFERENCE §x``."""
    lines = sorted({_line_of(text, m.start()) for m in _OLD.finditer(text)})
    return [f"{rel}:{n}: cites REFERENCE.md (old name); cite {REFERENCE_DOC} §N.M instead"
            for n in lines]


def _cited(window: str) -> Iterable[str]:
    for m in _SECTION.finditer(window):
        yield from (g for g in m.groups() if g)
    for m in _APPENDIX.finditer(window):
        yield m.group(1)


def bad_sections(rel: str, text: str, sections: Set[str]) -> List[Problem]:
    """One problem per cited section of docs/reference.md that does not exist."""
    problems = []
    for m in _NEW.finditer(text):
        rest = text[m.end():m.end() + 160]
        stop = _STOP.search(rest)
        window = rest[:stop.start()] if stop else rest
        for number in _cited(window):
            if number not in sections:
                problems.append(f"{rel}:{_line_of(text, m.start())}: {REFERENCE_DOC} has no "
                                f"section {number!r}")
    return problems


def check(root: Path, files: Optional[Sequence[Path]] = None, old: bool = True,
          sections: bool = True) -> List[Problem]:
    """All problems in ``files`` (default: :func:`repo_files`), paths relative to ``root``.

    Raises:
        FileNotFoundError: ``root/docs/reference.md`` does not exist.
    """
    ref = root / REFERENCE_DOC
    if not ref.is_file():
        raise FileNotFoundError(f"{ref} not found: the citations cannot be checked")
    known = reference_sections(ref.read_text(encoding="utf-8"))
    problems: List[Problem] = []
    for rel in (repo_files(root) if files is None else files):
        if rel.as_posix() in EXEMPT:
            continue
        text = (root / rel).read_text(encoding="utf-8", errors="replace")
        if old:
            problems += old_citations(rel.as_posix(), text)
        if sections:
            problems += bad_sections(rel.as_posix(), text, known)
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=str(Path(__file__).resolve().parents[1]),
                   help="repository root (default: the one holding this script)")
    args = p.parse_args(argv)
    try:
        problems = check(Path(args.root))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for line in problems:
        print(line)
    print(f"{len(problems)} citation problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
