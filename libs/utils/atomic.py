"""Re-exports :func:`libs.core.atomic.atomic_open` and ``write_json_atomic`` (they live in core:
the config writer uses them)."""
from libs.core.atomic import atomic_open, write_json_atomic

__all__ = ["atomic_open", "write_json_atomic"]
