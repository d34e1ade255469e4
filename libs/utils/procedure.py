"""The one owner of the training / inference procedure choice: the original's (``FAITHFUL``)
or this project's faster one (``FAST``, the default); see docs/performance.md.

Every place whose arithmetic differs between the two reads a field of a :class:`Procedure`
that is handed to it explicitly (the model constructor's ``procedure`` keyword, the engine's
optimizer / EMA / training-step arguments); nothing here changes process-wide state except
:func:`configure_process`, which the entry points (train.py, eval.py, tools) call themselves.

``FAITHFUL`` is the original's procedure step for step: padding by the original rule
(docs/reference.md §3.10), PyTorch's default (oneDNN) convolutions, the original's eight-operator
LayerNorm, separate q / k / v paths, the overlapping-chunk local attention, heads run level by
level, label assignment video by video, TorchScript-compiled losses (the original's
``@torch.jit.script``: their compiled backward rounds differently from eager PyTorch), the
optimizer's per-parameter loop, ``clip_grad_norm_``'s per-tensor loop and the EMA updated
entry by entry, and the CPU kernels of the original's reference runs (AVX2: PyTorch's and
oneDNN's AVX-512 kernels round differently). ``FAST`` agrees with it to float rounding
(docs/performance.md).
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Mapping, Optional

import torch

from libs.core import ConfigError, load_config

from .device import enlarge_onednn_primitive_cache
from .host_memory import keep_freed_memory

__all__ = ["Procedure", "FAITHFUL", "FAST", "procedure_from_config", "procedure_named",
           "configure_process", "cap_cpu_isa", "load_run_config"]

# environment variables that cap PyTorch's own CPU kernels and oneDNN's at an ISA (both are
# read when the first kernel runs; a value the user set is kept)
_ISA_ENV = {"AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}


@dataclasses.dataclass(frozen=True)
class Procedure:
    """Which implementation every procedure-dependent place uses.

    Attributes:
        name: 'faithful', 'fast' or a custom label (benchmarks).
        train_padding, test_padding: 'original' (docs/reference.md §3.10) or 'minimal' (exact,
            shorter; modeling/padding.py) for training / inference forwards.
        fast_kernels: small-input kernels of modeling/blocks.py and attention.py (native
            convolutions, one LayerNorm kernel, batched q / k / v).
        attention_kernel: 'banded' (this project's) or 'chunked' (the original's algorithm).
        fuse_head_levels: heads run once over the concatenated pyramid (else level by level).
        batched_assignment: label assignment for the whole batch at once (else per video).
        scripted_losses: TorchScript-compiled focal / DIoU losses, as the original.
        fused_optimizer: PyTorch's fused AdamW / SGD kernel (else the per-parameter loop).
        foreach_clip: ``clip_grad_norm_(foreach=True)`` (else the per-tensor loop).
        foreach_ema: EMA updated with the foreach kernels (else entry by entry).
        large_onednn_cache: :func:`configure_process` enlarges the oneDNN kernel cache
            (needed when minimal padding gives every batch its own length).
        cpu_isa: vector ISA the CPU kernels are capped at by :func:`configure_process`
            ('AVX2': the machine of the original's reference runs), or None (the best this
            CPU has).
        keep_freed_memory: :func:`configure_process` makes the C library keep freed memory
            for reuse instead of returning it to the kernel (host_memory.py: fresh pages cost
            a page fault each, ~2.4 us per 4 KiB on the benchmark machine); False keeps
            glibc's defaults, as the original's runs.
    """
    name: str
    train_padding: str
    test_padding: str
    fast_kernels: bool
    attention_kernel: str
    fuse_head_levels: bool
    batched_assignment: bool
    scripted_losses: bool
    fused_optimizer: bool
    foreach_clip: bool
    foreach_ema: bool
    large_onednn_cache: bool
    cpu_isa: Optional[str] = None
    keep_freed_memory: bool = False

    def __post_init__(self) -> None:
        for field in ("train_padding", "test_padding"):
            if getattr(self, field) not in ("original", "minimal"):
                raise ValueError(f"Procedure.{field} must be 'original' or 'minimal', got "
                                 f"{getattr(self, field)!r}")
        if self.cpu_isa not in (None, *_ISA_ENV):
            raise ValueError(f"Procedure.cpu_isa must be None or one of {sorted(_ISA_ENV)}, "
                             f"got {self.cpu_isa!r}")
        if self.attention_kernel not in ("banded", "chunked"):
            raise ValueError("Procedure.attention_kernel must be 'banded' or 'chunked', got "
                             f"{self.attention_kernel!r}")

    def replace(self, **changes: Any) -> "Procedure":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


FAITHFUL = Procedure(
    name="faithful", train_padding="original", test_padding="original", fast_kernels=False,
    attention_kernel="chunked", fuse_head_levels=False, batched_assignment=False,
    scripted_losses=True, fused_optimizer=False, foreach_clip=False, foreach_ema=False,
    large_onednn_cache=False, cpu_isa="AVX2")

FAST = Procedure(
    name="fast", train_padding="minimal", test_padding="minimal", fast_kernels=True,
    attention_kernel="banded", fuse_head_levels=True, batched_assignment=True,
    scripted_losses=False, fused_optimizer=True, foreach_clip=True, foreach_ema=True,
    large_onednn_cache=True, keep_freed_memory=True)

_PRESETS = {"faithful": FAITHFUL, "fast": FAST}


def procedure_named(name: str) -> Procedure:
    """``FAITHFUL`` for 'faithful', ``FAST`` for 'fast'."""
    if name not in _PRESETS:
        raise ValueError(f"unknown procedure {name!r}; expected one of {sorted(_PRESETS)}")
    return _PRESETS[name]


def procedure_from_config(cfg: Mapping[str, Any], faithful: Optional[bool] = None
                          ) -> Procedure:
    """The procedure a loaded config selects.

    ``faithful`` (the ``--faithful`` flag) beats the config's optional top-level
    ``faithful`` key (default false). In fast mode the older per-feature keys keep working:
    ``train_cfg.padding`` / ``test_cfg.padding`` and ``opt.fused``.
    """
    if faithful is None:
        faithful = bool(cfg.get("faithful", False))
    if faithful:
        return FAITHFUL
    changes = {}
    for section, field in (("train_cfg", "train_padding"), ("test_cfg", "test_padding")):
        value = (cfg.get(section) or {}).get("padding")
        if value is not None:
            changes[field] = value
    fused = (cfg.get("opt") or {}).get("fused")
    if fused is not None:
        changes["fused_optimizer"] = bool(fused)
    return FAST.replace(**changes) if changes else FAST


def load_run_config(config_path: str, faithful: bool = False):
    """``(cfg, procedure)`` of a train.py / eval.py run; configures the process for it.

    ``faithful`` (the ``--faithful`` flag) sets the config's ``faithful`` key.
    """
    if not os.path.isfile(config_path):
        raise ConfigError(f"Config file does not exist: {config_path}")
    cfg = load_config(config_path)
    if faithful:
        cfg["faithful"] = True
    procedure = procedure_from_config(cfg)
    configure_process(procedure)
    return cfg, procedure


def configure_process(procedure: Procedure, cap_isa: bool = True) -> None:
    """Process settings the procedure wants; call once, before the model's first operator.

    The enlarged oneDNN kernel cache and the kept freed memory of the fast procedure
    (device.py, host_memory.py); the CPU ISA cap of the faithful one (``cpu_isa``), with a
    warning when the kernels already run at another ISA (then the process must be started
    with the variables of ``_ISA_ENV`` set). ``cap_isa=False`` skips the cap (the speed
    benchmarks: the original itself runs at the machine's best ISA).
    """
    if procedure.large_onednn_cache:
        enlarge_onednn_primitive_cache()
    if procedure.keep_freed_memory:
        keep_freed_memory()
    if cap_isa and procedure.cpu_isa is not None:
        cap_cpu_isa(procedure.cpu_isa)


def cap_cpu_isa(isa: str) -> bool:
    """Caps PyTorch's and oneDNN's CPU kernels at ``isa`` (unless the user set the variables);
    True when PyTorch reports that ISA afterwards. CPUs without it run what they have (warned)."""
    for name, value in _ISA_ENV[isa].items():
        os.environ.setdefault(name, value)
    running = torch.backends.cpu.get_cpu_capability()
    if running != isa:
        env = " ".join(f"{k}={v}" for k, v in _ISA_ENV[isa].items())
        warnings.warn(f"the faithful procedure's CPU kernels run at {running}, not at {isa} as "
                      f"the original's reference runs; for bitwise equality start the process "
                      f"with {env}", stacklevel=2)
        return False
    return True
