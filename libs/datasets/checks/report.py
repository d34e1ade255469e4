"""The findings of a data-set check (errors, warnings, sections) and how they print."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List

SHOW = 5  # offending ids listed per message


def first_ids(ids: Iterable[str], n: int = SHOW) -> str:
    """The first ``n`` ids, comma-separated, ``... (k more)`` when there are more."""
    ids = list(ids)
    return ", ".join(ids[:n]) + (f", ... ({len(ids) - n} more)" if len(ids) > n else "")


@dataclass
class Report:
    """Findings of a data-set check, grouped in sections (in the order they were made).

    Attributes:
        errors: what would crash training/evaluation or make it wrong.
        warnings: what runs but deserves a look.
        sections: section title -> printed lines (information, warnings and errors).
    """

    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    sections: Dict[str, List[str]] = field(default_factory=dict)

    def info(self, section: str, msg: str) -> None:
        """Records an information line."""
        self.sections.setdefault(section, []).append(f"  {msg}")

    def warn(self, section: str, msg: str) -> None:
        """Records a warning (runs, but deserves a look)."""
        self.warnings.append(msg)
        self.sections.setdefault(section, []).append(f"  WARNING: {msg}")

    def error(self, section: str, msg: str) -> None:
        """Records an error (would crash training/evaluation or make it wrong)."""
        self.errors.append(msg)
        self.sections.setdefault(section, []).append(f"  ERROR: {msg}")

    @property
    def ok(self) -> bool:
        """Whether no error was found."""
        return not self.errors

    def format(self) -> str:
        """The printed report: one block a section, then the summary line."""
        lines: List[str] = []
        for title, body in self.sections.items():
            lines.append(f"== {title} ==")
            lines.extend(body)
            lines.append("")
        verdict = ("errors found: fix them before training" if self.errors else
                   "no errors" + (" (see the warnings)" if self.warnings else ""))
        lines.append(f"== summary: {len(self.errors)} error(s), {len(self.warnings)} "
                     f"warning(s); {verdict} ==")
        return "\n".join(lines)
