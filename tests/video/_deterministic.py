"""Test helpers for the video backbones: reference files, deterministic weights and inputs.

The rules are those of tests/assets/spec/i3d/README.md and
tests/assets/spec/video_backbones/README.md
(the references were produced with them by the original I3D port and by torchvision).
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch

from tests._assets import asset_path

KeyList = List[Tuple[str, List[int], str]]


def load_reference(rel: str) -> Dict:
    """The shipped reference file ``tests/assets/spec/<rel>`` (weights_only); the test fails
    when it is missing."""
    return torch.load(asset_path(f"spec/{rel}"), map_location="cpu", weights_only=True)


def _base(shape: Sequence[int], index: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 + index)
    return torch.randn(list(shape), generator=gen, dtype=torch.float32)


def _fan_in(shape: Sequence[int]) -> int:
    return math.prod(shape[1:])


def deterministic_value(name: str, shape: Sequence[int], dtype: str, index: int) -> torch.Tensor:
    """The value of state_dict entry ``index`` (both READMEs' rules; they agree where both apply)."""
    if name.endswith("num_batches_tracked"):
        return torch.zeros(list(shape), dtype=torch.int64)
    assert dtype == "torch.float32", f"{name}: unexpected dtype {dtype}"
    base = _base(shape, index)
    if name.endswith("running_var"):
        return 1 + 0.5 * base.abs()
    if name.endswith("running_mean"):
        return 0.1 * base
    if len(shape) == 5:                                  # conv weights
        return base * math.sqrt(2.0 / _fan_in(shape))
    if len(shape) == 2:                                  # fc.weight
        return base * math.sqrt(1.0 / shape[1])
    if name.endswith(".weight"):                         # BatchNorm weight
        return 1 + 0.1 * base
    if name.endswith(".bias"):                           # BatchNorm / conv / fc bias
        return 0.1 * base
    raise AssertionError(f"no deterministic rule for {name} {list(shape)}")


def deterministic_state_dict(keys: KeyList) -> Dict[str, torch.Tensor]:
    """The deterministic weights for the ``(name, shape, dtype)`` list of a reference."""
    return {name: deterministic_value(name, shape, dtype, i)
            for i, (name, shape, dtype) in enumerate(keys)}


def deterministic_input(channels: int, frames: int, size: int) -> torch.Tensor:
    """``x[0, c, t, h, w] = sin(0.05 * (31 t + 7 h + 3 w + 101 c))`` in float64, cast to float32."""
    c, t, h, w = torch.meshgrid(*(torch.arange(n, dtype=torch.float64)
                                  for n in (channels, frames, size, size)), indexing="ij")
    return torch.sin(0.05 * (31 * t + 7 * h + 3 * w + 101 * c)).to(torch.float32).unsqueeze(0)


def state_dict_listing(model: torch.nn.Module) -> KeyList:
    """A model's state_dict as ``(name, shape, dtype)`` in order, the form of the references."""
    return [(k, list(v.shape), str(v.dtype)) for k, v in model.state_dict().items()]
