"""Value predicates and single-key constraints the config schema (schema.py) is written with.

A predicate answers "is this value of the right type?"; a constraint returns the error text for
a well-typed value that is out of range (``None`` when it is fine).
"""
from __future__ import annotations

from numbers import Number
from typing import Any, Callable, Optional

Predicate = Callable[[Any], bool]
Constraint = Callable[[Any], Optional[str]]


def is_int(v: Any) -> bool:
    """An integer that is not a bool."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """A number that is not a bool."""
    return isinstance(v, Number) and not isinstance(v, bool)


def is_seq(v: Any) -> bool:
    """A list or a tuple."""
    return isinstance(v, (list, tuple))


def is_str(v: Any) -> bool:
    """A string."""
    return isinstance(v, str)


def is_bool(v: Any) -> bool:
    """``True`` or ``False``."""
    return isinstance(v, bool)


def int_or_int_list(v: Any) -> bool:
    """An integer or a non-empty list of integers."""
    return is_int(v) or (is_seq(v) and len(v) > 0 and all(is_int(x) for x in v))


def str_or_str_list(v: Any) -> bool:
    """A string or a non-empty list of strings."""
    return is_str(v) or (is_seq(v) and len(v) > 0 and all(is_str(x) for x in v))


def seq_of(item: Predicate, length: Optional[int] = None) -> Predicate:
    """A list whose items all pass ``item`` (of exactly ``length`` items when given)."""
    return lambda v: (is_seq(v) and (length is None or len(v) == length)
                      and all(item(x) for x in v))


def optional(check: Predicate) -> Predicate:
    """``None`` (YAML ``~``) or a value that passes ``check``."""
    return lambda v: v is None or check(v)


def at_least(low: int) -> Constraint:
    """``value >= low``."""
    return lambda v: None if v >= low else f"must be >= {low}, got {v}"


def in_unit_interval(closed: bool) -> Constraint:
    """``0 <= value <= 1`` (``closed``) or ``0 <= value < 1``."""
    if closed:
        return lambda v: None if 0 <= v <= 1 else f"must be in [0, 1], got {v}"
    return lambda v: None if 0 <= v < 1 else f"must be in [0, 1), got {v}"


def odd(v: Any) -> Optional[str]:
    """An odd integer."""
    return None if v % 2 == 1 else f"must be odd, got {v}"


def crop_range(v: Any) -> Optional[str]:
    """``~`` or ``[lo, hi]`` with ``0 < lo <= hi``."""
    if v is None:
        return None
    lo, hi = v
    return None if 0 < lo <= hi else f"must be [lo, hi] with 0 < lo <= hi, got {[lo, hi]}"


def looks_like_number(text: str) -> bool:
    """True for a string that ``float`` reads (PyYAML leaves ``1e-4`` a string)."""
    try:
        float(text)
    except ValueError:
        return False
    return True
