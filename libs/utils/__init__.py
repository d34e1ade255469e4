"""Small shared helpers: registry, device, distributed communication, seeding, meters."""
from .registry import Registry
from .device import describe_devices, is_cuda_available, resolve_device, synchronize
from .meters import AverageMeter
from .seed import fix_random_seed
from . import comm

__all__ = ["Registry", "resolve_device", "synchronize", "is_cuda_available",
           "describe_devices", "AverageMeter", "fix_random_seed", "comm"]
