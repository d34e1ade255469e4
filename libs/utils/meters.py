"""``AverageMeter``: the running value / average used by the training log (docs/reference.md
§7.3)."""
from __future__ import annotations

__all__ = ["AverageMeter"]


class AverageMeter:
    """Tracks the last value and the weighted average of a scalar.

    The first :meth:`update` initialises ``val = avg = value``, ``sum = value * n``,
    ``count = n``; later ones add to ``sum`` / ``count`` and set ``avg = sum / count``.
    """

    def __init__(self) -> None:
        self.initialized = False
        self.val = 0.0
        self.avg = 0.0
        self.sum = 0.0
        self.count = 0.0

    def update(self, val: float, n: float = 1) -> None:
        if not self.initialized:
            self.val = val
            self.avg = val
            self.sum = val * n
            self.count = n
            self.initialized = True
        else:
            self.val = val
            self.sum += val * n
            self.count += n
            self.avg = self.sum / self.count
