"""A small name → class registry, one instance per kind of component.

Replaces the original's four module-level dicts (libs/modeling/models.py) and the dataset dict
(libs/datasets/datasets.py) with one class that refuses duplicate names and lists the valid
names when a lookup fails. The registered names are part of the frozen surface.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterator, TypeVar

T = TypeVar("T")


class Registry:
    """Maps names to classes (or factories).

    Example:
        BACKBONES = Registry("backbone")

        @BACKBONES.register("convTransformer")
        class ConvTransformerBackbone(nn.Module): ...

        BACKBONES.get("convTransformer")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a name can be registered once."""

        def _add(obj: T) -> T:
            if name in self._entries:
                raise KeyError(
                    f"{self.kind} '{name}' is already registered "
                    f"(by {self._entries[name].__module__}.{self._entries[name].__qualname__})"
                )
            self._entries[name] = obj
            return obj

        return _add

    def get(self, name: str) -> Callable:
        """Returns the entry for ``name``; an unknown name raises a KeyError listing the valid ones."""
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "(none registered)"
            raise KeyError(f"unknown {self.kind} '{name}'; valid names: {valid}") from None

    def build(self, name: str, *args, **kwargs):
        """Instantiates the entry registered under ``name`` with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"
