"""Environment report for bug reports and install checks: ``python -m libs.collect_env``.

Prints Python, PyTorch (and its CUDA build / visible GPUs), NumPy, pandas and the other
dependencies, whether the optional C++ NMS extension ``libs.ops._C`` is built, and which NMS
backend is active (``ACTIONFORMER_NMS_BACKEND``). STYLE.md §3.9; docs/reference.md §9 item 2 (the
original crashed at import without its compiled NMS; here the PyTorch fallback is reported).

It sits at the top of the package (outside the layered sub-packages) because it reports on
all of them.
"""
from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import List, Tuple

__all__ = ["collect_env_info", "main"]


def _version(module: str) -> str:
    try:
        mod = importlib.import_module(module)
    except Exception as err:  # a diagnostic must not crash on a broken dependency
        return f"not importable ({type(err).__name__}: {err})"
    return str(getattr(mod, "__version__", "unknown version"))


def _nms_rows() -> List[Tuple[str, str]]:
    try:
        from libs.ops import nms
    except Exception as err:
        return [("libs.ops", f"not importable ({type(err).__name__}: {err})")]
    if nms.extension_available():
        ext = importlib.import_module("libs.ops._C")
        built = f"yes ({ext.__file__})"
    else:
        built = f"no ({nms._C_IMPORT_ERROR})"
    try:
        backend = nms.nms_backend()
    except (ValueError, RuntimeError) as err:
        backend = f"error: {err}"
    env = os.environ.get(nms.BACKEND_ENV, "auto (unset)")
    return [("C++ NMS extension libs.ops._C built", built),
            (nms.BACKEND_ENV, env),
            ("NMS backend", backend)]


def collect_env_info() -> str:
    """Returns the report as a two-column text table (one ``name: value`` pair per line)."""
    rows: List[Tuple[str, str]] = [
        ("Python", sys.version.replace("\n", " ")),
        ("Platform", platform.platform()),
    ]
    try:
        import torch
    except Exception as err:
        rows.append(("PyTorch", f"not importable ({type(err).__name__}: {err})"))
    else:
        from libs.utils.device import describe_devices
        rows.append(("PyTorch", f"{torch.__version__} ({os.path.dirname(torch.__file__)})"))
        rows.append(("PyTorch built with CUDA", str(torch.version.cuda)))
        rows.append(("Accelerators", describe_devices()))
        rows.append(("PyTorch threads", str(torch.get_num_threads())))
    for name in ("numpy", "pandas", "yaml", "h5py", "tensorboard", "av"):
        rows.append((name, _version(name)))
    rows.extend(_nms_rows())
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        first, *rest = value.split("\n")
        lines.append(f"{key:<{width}} : {first}")
        lines.extend(f"{'':<{width}}   {more.strip()}" for more in rest)
    return "\n".join(lines)


def main() -> None:
    print(collect_env_info())


if __name__ == "__main__":
    main()
