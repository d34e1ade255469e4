"""``torchvision:NAME``: any of torchvision's video models as a VideoBackbone, where torchvision imports.

torchvision is not a dependency (its PyPI wheel does not import beside the CPU torch this
project installs); on a machine where it does, its own builder and weight enums are used and
the classifier head is replaced by the identity, so the output is the pooled clip feature.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .base import VideoBackbone
from .weights import WeightsError, apply_weights, load_strict, read_state_dict, warn_random

__all__ = ["TorchvisionBackbone", "build_torchvision_backbone"]

HEAD_NAMES = ("fc", "head", "classifier")


def _import_torchvision_models() -> Any:
    try:
        import torchvision.models as tvm
        import torchvision.models.video  # noqa: F401  (registers the video builders)
    except Exception as err:  # ImportError, or RuntimeError when its C++ ops do not match torch
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ImportError(
            f"backbones 'torchvision:NAME' need torchvision, which does not import here "
            f"({first}); install a torchvision build that matches this torch, or use a built-in "
            f"backbone") from None
    return tvm


def _strip_head(model: nn.Module, name: str) -> int:
    """Replaces the classifier head by the identity; returns the feature dimension it received."""
    for attr in HEAD_NAMES:
        head = getattr(model, attr, None)
        if head is None:
            continue
        last = [m for m in head.modules() if isinstance(m, (nn.Linear, nn.Conv3d))]
        if last:
            setattr(model, attr, nn.Identity())
            layer = last[-1]
            return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels
    raise ValueError(f"torchvision:{name}: cannot find its classifier head (looked for "
                     f"{', '.join(HEAD_NAMES)})")


def _pair(value: Any) -> Tuple[int, int]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return (int(values[0]), int(values[-1]))


class TorchvisionBackbone(VideoBackbone):
    """Wraps a torchvision video model; ``forward_features``: normalised clips -> ``(N, D)``.

    Its state_dict has torchvision's names under ``model.`` (weights files load into
    ``.model``); preprocessing facts come from the weight enum's transforms.
    """

    def __init__(self, name: str, model: nn.Module, feature_dim: int, transforms: Any) -> None:
        super().__init__()
        self.name = f"torchvision:{name}"
        self.model = model
        self.feature_dim = feature_dim
        crop = _pair(getattr(transforms, "crop_size", 224))
        resize = _pair(getattr(transforms, "resize_size", crop))
        self.crop_size = crop[0]
        self.resize_to = resize if resize[0] != resize[1] else resize[0]
        self.pixel_mean = tuple(float(v) for v in getattr(transforms, "mean", (0.0,) * 3))
        self.pixel_std = tuple(float(v) for v in getattr(transforms, "std", (1.0,) * 3))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_clip(x, 3)
        return self.model(x).flatten(1)

    def load_weight_files(self, paths: Sequence[Path]) -> None:
        """One torchvision state_dict file (its classifier keys are dropped with the head)."""
        if len(paths) != 1:
            raise WeightsError(f"backbone '{self.name}' takes one weights file, got {len(paths)}")
        state = read_state_dict(paths[0])
        state = {k: v for k, v in state.items() if k.split(".")[0] not in HEAD_NAMES}
        load_strict(self.model, state, str(paths[0]))


def build_torchvision_backbone(name: str, weights: Union[str, Path, None] = "none",
                               **kwargs: Any) -> VideoBackbone:
    """Builds torchvision's video model ``name``; ``weights``: none, a weight enum name, or a file."""
    tvm = _import_torchvision_models()
    known = sorted(tvm.list_models(module=tvm.video))
    if name not in known:
        raise ValueError(f"unknown torchvision video model '{name}'; known: {', '.join(known)}")
    enums = tvm.get_model_weights(name)
    text = "" if weights is None else str(weights).strip()
    enum: Optional[Any] = None
    if text and text.lower() != "none" and not Path(text).exists():
        if text not in enums.__members__ and text != "DEFAULT":
            raise ValueError(f"torchvision:{name}: weights '{text}' is neither a file nor one of "
                             f"{', '.join(['DEFAULT', *enums.__members__])}")
        enum = enums.DEFAULT if text == "DEFAULT" else enums[text]
    model = tvm.get_model(name, weights=enum, **kwargs)
    dim = _strip_head(model, name)
    backbone = TorchvisionBackbone(name, model, dim, (enum or enums.DEFAULT).transforms())
    if enum is not None:
        backbone.weights_info = {"kind": "torchvision", "name": f"{enums.__name__}.{enum.name}"}
    elif text and text.lower() != "none":
        apply_weights(backbone, text)
    else:
        warn_random(backbone.name)
    return backbone.eval()
