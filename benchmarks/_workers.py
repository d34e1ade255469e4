"""Every benchmark mode in a process of its own, configured as the entry points configure it.

The procedures differ in process-wide settings (``libs/utils/procedure.configure_process``:
the fast one keeps freed host memory and enlarges the oneDNN kernel cache; the faithful one
keeps the C library's and oneDNN's defaults, as the original's runs), and these cannot be
undone inside a process. So each mode runs in a spawned worker process, configured with
``configure_process(procedure, cap_isa=False)`` before its first operator (both modes at the
machine's best CPU ISA, as the original runs; the faithful ISA cap only matters for bitwise
equality), and the parent hands the same work to each worker in turn, one at a time: the
modes see the same machine conditions, interleaved item by item, and never run together.

``in_process=True`` runs the mode in the calling process instead (no process settings: the
benchmarks' ``--one-process`` option, the earlier way of comparing).

A worker is built from ``setup(mode, *args) -> run``, a module-level function of the
benchmark script (spawn pickles it by name); ``worker(payload)`` returns ``run(payload)``.
Results travel pickled: send numbers and numpy arrays, not tensors.
"""
from __future__ import annotations

import multiprocessing
import traceback
from typing import Any, Callable, Sequence

from _common import peak_rss_mb, procedure_for

PEAK_RSS = "__peak_rss__"  # payload: the worker's peak resident memory (MiB)


def _configured(mode: str, threads: int, process_settings: bool) -> None:
    import torch

    from libs.utils.procedure import configure_process
    if process_settings:
        configure_process(procedure_for(mode), cap_isa=False)
    if threads > 0:
        torch.set_num_threads(threads)


def _serve(conn, mode: str, setup: Callable, args: Sequence[Any], threads: int) -> None:
    try:
        _configured(mode, threads, True)
        run = setup(mode, *args)
        conn.send(("ready", None))
        while True:
            payload = conn.recv()
            if payload is None:
                break
            conn.send(("ok", peak_rss_mb() if payload == PEAK_RSS else run(payload)))
    except Exception:  # reported to the parent, which raises it
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class ModeWorker:
    """One benchmark mode, in a worker process (module docstring) or in this process."""

    def __init__(self, mode: str, setup: Callable, args: Sequence[Any] = (), threads: int = 0,
                 in_process: bool = False) -> None:
        self.mode = mode
        self._run = None
        self._proc = None
        if in_process:
            _configured(mode, threads, False)
            self._run = setup(mode, *args)
            return
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, mode, setup, tuple(args), threads),
                                 daemon=True, name=f"bench-{mode}")
        self._proc.start()
        child.close()
        self._receive()  # "ready", or the worker's error

    def __call__(self, payload: Any) -> Any:
        if self._run is not None:
            return peak_rss_mb() if payload == PEAK_RSS else self._run(payload)
        self._conn.send(payload)
        return self._receive()

    def _receive(self) -> Any:
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the {self.mode} benchmark worker died (exit code "
                               f"{self._proc.exitcode})") from None
        if status == "error":
            raise RuntimeError(f"the {self.mode} benchmark worker failed:\n{value}")
        return value

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(timeout=30)
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc = None

    def __enter__(self) -> "ModeWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
