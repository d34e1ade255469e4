"""Video backbones for feature extraction from raw video (issue 17): one registry, clip encoders.

``make_backbone(name, weights)`` builds a registered ``VideoBackbone`` (``list_backbones()``
names them); importing this package registers the built-in ones.
"""
from .base import VideoBackbone, pool_to_vector
from .registry import BACKBONES, list_backbones, make_backbone, register_backbone
from .weights import WeightsError, load_strict, read_state_dict
from . import i3d, resnet3d  # noqa: F401  (registers i3d_rgb, i3d_flow, i3d, r3d_18, r2plus1d_18)

__all__ = ["VideoBackbone", "pool_to_vector", "BACKBONES", "list_backbones", "make_backbone",
           "register_backbone", "WeightsError", "load_strict", "read_state_dict"]
