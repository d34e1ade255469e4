"""Re-exports :func:`libs.core.atomic.atomic_open` (it lives in core: the config writer uses it)."""
from libs.core.atomic import atomic_open

__all__ = ["atomic_open"]
