"""Operators: 1-D NMS / Soft-NMS (optional C++ extension ``_C`` with an exact PyTorch fallback).

See libs/ops/nms.py (docs/reference.md §5.3-§5.4, STYLE.md §3.9).
"""
from .nms import batched_nms, extension_available, nms_backend, seg_voting

__all__ = ["batched_nms", "seg_voting", "nms_backend", "extension_available"]
