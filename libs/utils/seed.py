"""``fix_random_seed`` with the original's semantics (docs/reference.md §7.2).

Seeds torch (returning the global default generator, which train.py hands to the training
data loader), NumPy, Python ``random`` and ``PYTHONHASHSEED``. With ``include_cuda`` (both
scripts use it) cuDNN is made deterministic, the CUDA generators are seeded,
``CUBLAS_WORKSPACE_CONFIG`` is set and ``torch.use_deterministic_algorithms(True,
warn_only=True)`` is switched on; the CUDA calls are harmless without a GPU.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from .device import manual_seed_cuda

__all__ = ["fix_random_seed"]


def fix_random_seed(seed: int, include_cuda: bool = True) -> torch.Generator:
    """Seeds every random generator the code uses.

    Args:
        seed: the seed (train.py: ``init_rand_seed``; eval.py: 0).
        include_cuda: also make cuDNN / cuBLAS deterministic (as both original scripts do).

    Returns:
        The global default torch generator (``torch.manual_seed``'s return value).
    """
    rng_generator = torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if include_cuda:
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        manual_seed_cuda(seed)
        # needed by deterministic cuBLAS; harmless elsewhere
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = True
    return rng_generator
