"""The four model registries and their builders (docs/reference.md §3.1).

Replaces the original's ``libs/modeling/models.py``. Registered names are frozen:
backbones ``convTransformer``/``conv``, necks ``fpn``/``identity``, generators ``point``,
meta-architectures ``LocPointTransformer``. An unknown name raises a KeyError listing the
valid ones (libs.utils.Registry).
"""
from __future__ import annotations

from torch import nn

from libs.utils import Registry

__all__ = [
    "BACKBONES", "NECKS", "GENERATORS", "META_ARCHS",
    "make_backbone", "make_neck", "make_generator", "make_meta_arch",
]

BACKBONES = Registry("backbone")
NECKS = Registry("neck")
GENERATORS = Registry("generator")
META_ARCHS = Registry("meta_arch")


def make_backbone(name: str, **kwargs) -> nn.Module:
    """Builds the backbone registered as ``name`` with ``kwargs``."""
    return BACKBONES.build(name, **kwargs)


def make_neck(name: str, **kwargs) -> nn.Module:
    """Builds the neck registered as ``name`` with ``kwargs``."""
    return NECKS.build(name, **kwargs)


def make_generator(name: str, **kwargs) -> nn.Module:
    """Builds the location generator registered as ``name`` with ``kwargs``."""
    return GENERATORS.build(name, **kwargs)


def make_meta_arch(name: str, **kwargs) -> nn.Module:
    """Builds the whole model, e.g. ``make_meta_arch(cfg['model_name'], **cfg['model'])``."""
    return META_ARCHS.build(name, **kwargs)
