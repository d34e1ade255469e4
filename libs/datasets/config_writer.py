"""Writes derived config entries as a commented YAML, and compares them with another config.

The YAML is block style, one key per line with its reason as a comment; ``load_config`` reads
and validates it (make_config.py checks that before it reports success).
"""
from __future__ import annotations

import os
import textwrap
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import yaml

from .config_stats import Entry

__all__ = ["entries_to_dict", "render_yaml", "compare_rows", "format_compare"]

SECTIONS = ("", "dataset", "model", "opt", "loader", "train_cfg", "test_cfg")


def entries_to_dict(entries: Sequence[Entry]) -> Dict[str, Any]:
    """Nested config dict of the entries (top-level keys, then one dict per section)."""
    cfg: Dict[str, Any] = {}
    for e in entries:
        if e.section:
            cfg.setdefault(e.section, {})[e.key] = e.value
        else:
            cfg[e.key] = e.value
    return cfg


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text[:-4].strip() if text.endswith("\n...") or text.endswith(" ...") else text


def render_yaml(entries: Sequence[Entry], header: Sequence[str]) -> str:
    """YAML text: header comment lines, then the sections in the shipped configs' order."""
    lines = [f"# {h}" if h else "#" for h in header]
    for section in SECTIONS:
        rows = [e for e in entries if e.section == section]
        if not section:  # dataset_name first, as the shipped configs
            rows.sort(key=lambda e: e.key != "dataset_name")
        if not rows:
            continue
        lines.append("")
        indent = ""
        if section:
            lines.append(f"{section}:")
            indent = "  "
        for e in rows:
            lines += textwrap.wrap(e.why, 98 - len(indent), initial_indent=f"{indent}# ",
                                   subsequent_indent=f"{indent}#   ")
            lines.append(f"{indent}{e.key}: {_scalar(e.value)}")
    lines += ["", "# experiments go to <output_folder>/<config name>_<--output NAME>",
              "output_folder: ./ckpt/", ""]
    return "\n".join(lines)


def _lookup(cfg: Mapping[str, Any], section: str, key: str) -> Tuple[bool, Any]:
    node = cfg.get(section, {}) if section else cfg
    return (key in node, node.get(key)) if isinstance(node, Mapping) else (False, None)


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def compare_rows(entries: Sequence[Entry], other: Mapping[str, Any]) -> List[Tuple[str, str,
                                                                                  str, bool]]:
    """(dotted key, derived, other, equal) for every entry; ``other`` is a loaded config
    (defaults merged, so a key the other file leaves out shows its default)."""
    rows = []
    for e in entries:
        if e.key in ("json_file", "feat_folder"):
            continue  # paths differ by construction
        found, value = _lookup(other, e.section, e.key)
        shown = _scalar(value) if found else "-"
        same = found and _norm(value) == _norm(e.value)
        rows.append((f"{e.section}.{e.key}" if e.section else e.key, _scalar(e.value), shown,
                     bool(same)))
    return rows


def format_compare(rows: Sequence[Tuple[str, str, str, bool]], other_name: str) -> str:
    """A plain-text side-by-side table; differing rows are marked with '*'."""
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows + [("", "derived", "", True)])
    head = f"  {'key':<{w0}}  {'derived':<{w1}}  {os.path.basename(other_name)}"
    body = [f"{' ' if same else '*'} {k:<{w0}}  {d:<{w1}}  {o}" for k, d, o, same in rows]
    n = sum(1 for r in rows if not r[3])
    return "\n".join([head] + body + [f"({n} of {len(rows)} values differ, marked *)"])
