"""Device resolution and synchronisation: the one place (with comm.py) where CUDA is spelled.

The original hard-codes CUDA (docs/reference.md §9 item 1): ``devices: ['cuda:0']`` is the default
of every config, checkpoints are mapped to ``devices[0]`` and ``torch.cuda.synchronize()`` is
called at every print step. Here the device is resolved once at start-up (STYLE.md §3.6):

* ``--device`` on the command line beats the config's ``devices``;
* a CUDA device requested while no GPU is available falls back to CPU with one warning, so the
  shipped configs run unchanged on a laptop;
* under ``torchrun`` (``LOCAL_RANK`` set) each process uses ``cuda:LOCAL_RANK`` when CUDA is
  available and wanted, else the CPU;
* :func:`synchronize` is a no-op off CUDA;
* :func:`enlarge_onednn_primitive_cache` lets the CPU convolution library keep the kernels it
  plans for many input lengths (minimal padding gives most batches / videos a length of their
  own; with the default cache of 1,024 entries the kernels were re-planned on every call).
"""
from __future__ import annotations

import os
import warnings
from typing import Optional, Sequence, Union

import torch

from .cli import UserError

__all__ = ["DeviceError", "resolve_device", "synchronize", "is_cuda_available", "describe_devices",
           "manual_seed_cuda", "set_cuda_device", "enlarge_onednn_primitive_cache",
           "DEVICE_TYPES", "device_type_available", "exact_float32", "peak_memory_mib",
           "reset_peak_memory"]

ONEDNN_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
ONEDNN_CACHE_CAPACITY = 32768

_CUDA = "cuda"
DEVICE_TYPES = ("cpu", _CUDA)  # the device types tests and benchmarks are parametrised over
_WARNED: set = set()  # the CPU fall-back is announced once per process and device string


class DeviceError(ValueError, UserError):
    """A requested device is not understood by torch."""


def is_cuda_available() -> bool:
    """True when torch was built with CUDA and at least one GPU is visible."""
    return torch.cuda.is_available()


def _wants_cuda(device: str) -> bool:
    return device.split(":")[0] == _CUDA


def resolve_device(cli_device: Optional[str] = None,
                   cfg_devices: Optional[Union[Sequence[str], str]] = None) -> torch.device:
    """Chooses the device of this process.

    Args:
        cli_device: the ``--device`` flag (``'cpu'``, ``'cuda'``, ``'cuda:1'``...); wins over
            the config when given.
        cfg_devices: the config's ``devices`` list (only its first entry matters: the original
            scales the LR by its length but runs on ``devices[0]``).

    Returns:
        ``torch.device``. Under torchrun (env ``LOCAL_RANK``) a CUDA request becomes
        ``cuda:LOCAL_RANK``.

    Raises:
        DeviceError: (a ValueError) the requested device string is not understood by torch.
    """
    if cli_device:
        wanted = cli_device
        source = "--device"
    elif cfg_devices:
        wanted = cfg_devices if isinstance(cfg_devices, str) else cfg_devices[0]
        source = "config 'devices'"
    else:
        wanted, source = "cpu", "default"
    try:
        device = torch.device(wanted)
    except RuntimeError as err:
        raise DeviceError(f"{source}: invalid device '{wanted}': {err}") from None
    if device.type != _CUDA:
        return device
    if not is_cuda_available():
        if wanted in _WARNED:
            return torch.device("cpu")
        _WARNED.add(wanted)
        warnings.warn(f"{source} asks for '{wanted}' but no CUDA device is available; "
                      "running on CPU", RuntimeWarning, stacklevel=2)
        return torch.device("cpu")
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is not None:
        return torch.device(_CUDA, int(local_rank))
    if device.index is None:
        return torch.device(_CUDA, torch.cuda.current_device())
    return device


def set_cuda_device(device: torch.device) -> None:
    """Makes ``device`` the current CUDA device (needed by NCCL); no-op for other devices."""
    if device.type == _CUDA:
        torch.cuda.set_device(device)


def synchronize(device: Optional[torch.device] = None) -> None:
    """Waits for queued CUDA work (for honest timings); does nothing off CUDA."""
    if device is not None and torch.device(device).type != _CUDA:
        return
    if is_cuda_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize(device)


def manual_seed_cuda(seed: int) -> None:
    """``torch.cuda.manual_seed(_all)`` as the original's seeding; harmless without CUDA."""
    torch.cuda.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def describe_devices() -> str:
    """One line per visible accelerator (for collect_env); 'CUDA: not available' otherwise."""
    if not is_cuda_available():
        return f"CUDA: not available (torch built with CUDA {torch.version.cuda})"
    lines = [f"CUDA: {torch.version.cuda}, {torch.cuda.device_count()} device(s)"]
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        lines.append(f"  {_CUDA}:{i} {props.name} {props.total_memory / 2**30:.1f} GiB")
    return "\n".join(lines)


def enlarge_onednn_primitive_cache(capacity: int = ONEDNN_CACHE_CAPACITY) -> bool:
    """Sets ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` unless the user did (True when set here).

    oneDNN (PyTorch's CPU convolutions) caches one planned kernel per operator and shape; with
    a new length per batch the default 1,024 entries thrash and every call re-plans (measured
    on the 64-channel tiny model: ~100 ms per training iteration, more than the padding
    saves). oneDNN reads the variable when it first builds a kernel, so this must run before
    the process's first CPU convolution (the model constructor calls it); later calls have no
    effect. Cached kernels are small: resident memory did not grow measurably with 8,192.
    """
    if ONEDNN_CACHE_ENV in os.environ or "DNNL_PRIMITIVE_CACHE_CAPACITY" in os.environ:
        return False
    os.environ[ONEDNN_CACHE_ENV] = str(int(capacity))
    return True


def device_type_available(device_type: str) -> bool:
    """True for 'cpu', and for 'cuda' when a GPU is visible."""
    return device_type == "cpu" or (device_type == _CUDA and is_cuda_available())


def exact_float32(enabled: bool = True) -> None:
    """Turns TensorFloat-32 off (``enabled``) or back on for CUDA matmuls and convolutions.

    PyTorch lets cuDNN convolutions use TF32 by default on Ampere and later GPUs (~1e-3
    relative error); comparisons with float32 reference tensors need it off."""
    torch.backends.cuda.matmul.allow_tf32 = not enabled
    torch.backends.cudnn.allow_tf32 = not enabled


def reset_peak_memory(device: torch.device) -> None:
    """Restarts the peak GPU memory counter of ``device`` (no-op off CUDA)."""
    if torch.device(device).type == _CUDA:
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device: torch.device) -> float:
    """Peak GPU memory allocated on ``device`` since the last reset, MiB (0 off CUDA)."""
    if torch.device(device).type != _CUDA:
        return 0.0
    return torch.cuda.max_memory_allocated(device) / 2 ** 20
