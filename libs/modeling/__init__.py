"""The ActionFormer network: layers, backbones, necks, point generator, heads, losses,
label assignment, decoding and the ``LocPointTransformer`` meta-architecture (docs/reference.md
§3-§5).

Importing the package registers every backbone, neck, generator and meta-architecture.

Axis glossary used in every shape comment of this package:
    B  batch (videos)
    C  channels
    T  time, on the input feature grid (T_l: length of pyramid level l)
    F  points over all pyramid levels (F = sum_l T_l)
    N  ground-truth or predicted segments
    K  classes
Features are (B, C, T) float; masks are (B, 1, T) bool with True = valid. "Grid units" are
positions on the input feature grid; offsets predicted by the regression head are in units
of the level stride.
"""
from __future__ import annotations

from .attention import LocalMaskedMHCA, MaskedMHCA
from .blocks import (AffineDropPath, ConvBlock, LayerNorm, MaskedConv1D, Scale, drop_path,
                     get_sinusoid_encoding)
from .registry import (BACKBONES, GENERATORS, META_ARCHS, NECKS, make_backbone,
                       make_generator, make_meta_arch, make_neck)
from .transformer import TransformerBlock
# the modules below register themselves on import
from . import backbones, loc_generators, meta_archs, necks  # noqa: F401,E402
from .meta_archs import PtTransformer  # noqa: E402

__all__ = [
    "MaskedConv1D", "MaskedMHCA", "LocalMaskedMHCA", "LayerNorm",
    "TransformerBlock", "ConvBlock", "Scale", "AffineDropPath", "drop_path",
    "get_sinusoid_encoding", "make_backbone", "make_neck", "make_meta_arch", "make_generator",
    "BACKBONES", "NECKS", "GENERATORS", "META_ARCHS", "PtTransformer",
]
