"""The command lines in README.md and docs/*.md still match the scripts they call.

Every ``python X.py ...`` / ``torchrun ... X.py ...`` / ``bash X.sh ...`` line of a fenced
``bash`` block is parsed; each distinct script runs once with ``--help`` (exit code 0), and
every ``--flag`` a doc line gives it must appear in that help text (a ``bash`` script's
sub-command too).
"""
from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*```\s*([\w-]*)\s*$")
SHELL_LANGS = {"bash", "sh", "shell"}
PYTHONS = {"python", "python3", ".venv/bin/python"}


class DocCommand(NamedTuple):
    """One command line of a doc: where it is, the script it runs, its arguments."""

    where: str
    script: str
    args: Tuple[str, ...]


def shell_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, logical line) of the fenced shell blocks; ``\\`` continuations joined."""
    lang: Optional[str] = None
    pending, start = "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence:
            lang = fence.group(1) if lang is None else None
            continue
        if lang not in SHELL_LANGS:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending = ""


def parse_command(tokens: List[str]) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """(script, arguments) of a python / torchrun / bash command; None for anything else."""
    if not tokens:
        return None
    head = tokens[0]
    if head in PYTHONS and len(tokens) > 1 and tokens[1].endswith(".py"):
        return tokens[1], tuple(tokens[2:])
    if head == "torchrun":
        for i, tok in enumerate(tokens[1:], 1):
            if tok.endswith(".py"):
                return tok, tuple(tokens[i + 1:])
    if head == "bash" and len(tokens) > 1 and tokens[1].endswith(".sh"):
        return tokens[1], tuple(tokens[2:])
    return None


def doc_commands() -> List[DocCommand]:
    """Every script invocation written in README.md and docs/*.md."""
    found = []
    for path in DOCS:
        for number, line in shell_lines(path):
            parsed = parse_command(shlex.split(line, comments=True))
            if parsed:
                where = f"{path.relative_to(ROOT)}:{number}"
                found.append(DocCommand(where, parsed[0], parsed[1]))
    return found


def flags_of(args: Tuple[str, ...]) -> List[str]:
    """The ``--long`` option names of a doc line (usage brackets and ``=value`` removed)."""
    names = []
    for arg in args:
        for part in re.split(r"[\[\]|]", arg):
            if part.startswith("--") and len(part) > 2:
                names.append(part.split("=", 1)[0])
    return names


@functools.lru_cache(maxsize=None)
def help_text(script: str) -> Tuple[int, str]:
    """Exit code and output of ``script --help`` (one subprocess per script)."""
    runner = ["bash"] if script.endswith(".sh") else [sys.executable]
    proc = subprocess.run([*runner, script, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def _by_script() -> Dict[str, List[DocCommand]]:
    grouped: Dict[str, List[DocCommand]] = {}
    for cmd in doc_commands():
        grouped.setdefault(cmd.script.lstrip("./"), []).append(cmd)
    return grouped


SCRIPTS = _by_script()


def test_the_docs_have_commands_to_check():
    # the parser finds the main entry points (a broken parser would make the test below vacuous)
    assert {"train.py", "eval.py", "tools/make_config.py", "tools/quickstart.sh"} <= set(SCRIPTS)


def test_parse_command_and_flags_hand_worked():
    tokens = shlex.split("torchrun --nproc_per_node=2 train.py cfg.yaml --output ddp  # c",
                         comments=True)
    assert parse_command(tokens) == ("train.py", ("cfg.yaml", "--output", "ddp"))
    assert parse_command(["pip", "install", "x"]) is None
    assert flags_of(("[--weights", "FILE|none]", "[--mode", "auto|per-video]", "--fps=30",
                     "[-p", "N]", "--")) == ["--weights", "--mode", "--fps"]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_doc_command_lines_match_the_scripts_help(script):
    assert (ROOT / script).is_file(), \
        f"{SCRIPTS[script][0].where}: {script} does not exist"
    code, text = help_text(script)
    assert code == 0, f"{script} --help exited {code}:\n{text[-2000:]}"
    missing = []
    for cmd in SCRIPTS[script]:
        words = flags_of(cmd.args)
        if script.endswith(".sh") and cmd.args:
            words.append(cmd.args[0])  # the sub-command of a shell script
        missing += [f"{cmd.where}: {w}" for w in words
                    if not re.search(re.escape(w) + r"(?![\w-])", text)]
    assert not missing, f"{script} --help does not mention:\n" + "\n".join(missing)
