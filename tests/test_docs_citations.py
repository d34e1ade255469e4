"""Citations of the behaviour contract (tools/check_citations.py): the old ``REFERENCE.md`` is
cited nowhere, and every ``docs/reference.md §N.M`` names a section that exists."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_citations as cc  # noqa: E402

SECTIONS = {"1", "3", "3.10", "3.12", "6.2", "6.4", "E"}


def test_no_old_citation_anywhere():
    assert cc.check(ROOT, cc.repo_files(ROOT), sections=False) == []


def test_every_cited_section_exists():
    assert cc.check(ROOT, old=False) == []


def test_reference_keeps_the_original_numbering():
    sections = cc.reference_sections((ROOT / "docs" / "reference.md").read_text())
    assert {str(n) for n in range(12)} <= sections
    assert {f"3.{n}" for n in range(1, 13)} <= sections and "3.13" not in sections
    assert {"A", "B", "C", "D", "E"} <= sections and "F" not in sections
    assert {"1.4", "2.7", "4.3", "5.4", "6.6", "7.9", "8.3"} <= sections


def test_heading_parser_on_hand_written_headings():
    text = ("# Title 9\n## 1. Configuration\n### 3.10 PtTransformer\n#### 3.10.1 Detail\n"
            "## Appendix E. State dict\nplain 4.4 text\n")
    assert cc.reference_sections(text) == {"1", "3.10", "3.10.1", "E"}


def test_old_spellings_are_found_one_problem_per_line():
    text = ('"""Rule (REFERENCE.md §3.10) and\nREFERENCE §6.2, shared/spec/REFERENCE.md."""\n'
            "_REFERENCES = {}  # a variable, not a citation\nreference and Reference\n"
            'REFERENCE = "perturbed"  # a name\n# the rule (REFERENCE\n# §3.10) wrapped\n'
            "see REFERENCE Appendix C\n")
    assert cc.old_citations("a.py", text) == [
        f"a.py:{n}: cites REFERENCE.md (old name); cite docs/reference.md §N.M instead"
        for n in (1, 2, 6, 8)]


@pytest.mark.parametrize("text", [
    "see docs/reference.md §3.10.", "(docs/reference.md §6.2-6.4)", "`docs/reference.md` §1",
    "docs/reference.md §3.12, App. E", "docs/reference.md Appendix E", "docs/reference.md",
    "docs/reference.md §3.10; STYLE.md §9.9",  # another document's section is not checked
    "docs/reference.md §1 (tables) and §42 later",  # the citation ends at the parenthesis
    "# (docs/reference.md\n# §3.12)",
])
def test_existing_sections_pass(text):
    assert cc.bad_sections("a.md", text, SECTIONS) == []


@pytest.mark.parametrize("text, missing", [
    ("docs/reference.md §3.99", ["3.99"]),
    ("x\n(docs/reference.md §6.2-6.5)", ["6.5"]),
    ("docs/reference.md §3.10, §2.7 and Appendix F", ["2.7", "F"]),
    ("`docs/reference.md` §12", ["12"]),
])
def test_missing_sections_are_named(text, missing):
    line = text.count("\n", 0, text.index("docs/")) + 1
    assert cc.bad_sections("a.md", text, SECTIONS) == [
        f"a.md:{line}: docs/reference.md has no section {n!r}" for n in missing]


def test_cli_reports_and_exits_nonzero(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "reference.md").write_text("## 1. One\n### 1.1 Sub\n")
    (tmp_path / "ok.md").write_text("docs/reference.md §1.1\n")
    assert cc.main(["--root", str(tmp_path)]) == 0
    (tmp_path / "bad.py").write_text("# REFERENCE §1\n# docs/reference.md §1.2\n")
    assert cc.main(["--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-3:] == [
        "bad.py:1: cites REFERENCE.md (old name); cite docs/reference.md §N.M instead",
        "bad.py:2: docs/reference.md has no section '1.2'", "2 citation problem(s)"]
    (tmp_path / "docs" / "reference.md").unlink()
    assert cc.main(["--root", str(tmp_path)]) == 1
    assert "reference.md not found" in capsys.readouterr().err
