"""The video-backbone registry and its builder: ``make_backbone(name, weights)``, ``list_backbones()``.

Adding a backbone is one small class decorated with ``@register_backbone("name")``; the
decorator also sets the class's ``name`` attribute. ``torchvision:NAME`` builds one of
torchvision's video models through its own builder where torchvision imports.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, List, Optional, Type, TypeVar, Union

import torch

from libs.utils import Registry

from .base import VideoBackbone
from .weights import apply_weights

__all__ = ["BACKBONES", "TORCHVISION_PREFIX", "RANDOM_WEIGHTS_SEED", "register_backbone",
           "list_backbones", "make_backbone"]

BACKBONES = Registry("video backbone")
TORCHVISION_PREFIX = "torchvision:"
RANDOM_WEIGHTS_SEED = 0  # random weights are drawn from this seed unless told otherwise
B = TypeVar("B", bound=Type[VideoBackbone])


def register_backbone(name: str) -> Callable[[B], B]:
    """Class decorator: registers a ``VideoBackbone`` subclass under ``name`` and sets its ``name``."""

    def _add(cls: B) -> B:
        cls.name = name
        return BACKBONES.register(name)(cls)

    return _add


def list_backbones() -> List[str]:
    """The registered backbone names, sorted (``torchvision:NAME`` comes on top of these)."""
    return sorted(BACKBONES)


def make_backbone(name: str, weights: Union[str, Path, None] = "none",
                  seed: int = RANDOM_WEIGHTS_SEED, **kwargs: Any) -> VideoBackbone:
    """Builds backbone ``name`` in eval mode with ``weights`` loaded.

    ``weights``: a local state_dict file (``"rgb.pt,flow.pt"`` for the two-stream ``i3d``), or
    ``"none"`` / ``None`` for random weights (warns loudly: the features are meaningless).
    With ``torchvision:NAME``, ``weights`` may also name one of torchvision's weight enums
    (e.g. ``DEFAULT``). An unknown name raises a ValueError listing the known ones.

    Random weights are drawn from ``torch.manual_seed(seed)`` inside a forked RNG (the caller's
    RNG state is untouched), and ``weights_info`` records the seed, so the same name and seed
    rebuild the same network (tools/infer.py does, from the feature manifest).
    """
    if name.startswith(TORCHVISION_PREFIX):
        from .torchvision_models import build_torchvision_backbone
        return build_torchvision_backbone(name[len(TORCHVISION_PREFIX):], weights, **kwargs)
    if name not in BACKBONES:
        raise ValueError(f"unknown video backbone '{name}'; known backbones: "
                         f"{', '.join(list_backbones())} (or torchvision:NAME where torchvision "
                         f"is installed)")
    weights = _none_if_random(weights)
    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model: VideoBackbone = BACKBONES.build(name, **kwargs)
        apply_weights(model, None)
        model.weights_info["seed"] = int(seed)
    else:
        model = BACKBONES.build(name, **kwargs)
        apply_weights(model, weights)
    return model.eval()


def _none_if_random(weights: Union[str, Path, None]) -> Optional[Union[str, Path]]:
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("", "none")):
        return None
    return weights
