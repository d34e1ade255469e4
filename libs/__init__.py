"""ActionFormer re-implementation: temporal action localization with a multi-scale Transformer.

Sub-packages, lowest layer first (imports only go downwards; tests/test_layering.py enforces it):
``core`` (config) → ``utils`` (device, comm, seed, registry, meters) → ``ops`` (NMS) →
``modeling`` (network, losses, decoding); ``datasets`` and ``evaluation`` sit beside
``modeling``; ``engine`` (loops, optimizer, schedulers, EMA, checkpoints) sits on top.
"""

__version__ = "1.0.0"
