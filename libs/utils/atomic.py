"""Re-exports :func:`libs.core.atomic.atomic_open` (it lives in core so the config writer can use it)."""
from libs.core.atomic import atomic_open

__all__ = ["atomic_open"]
