"""Flush denormal floats to zero on every CPU thread while training, so that tiny optimizer state costs no slow path.

Why: x86 cores handle a denormal float (magnitude below 1.2e-38 in float32) in microcode, tens to hundreds of times
slower than a normal one. AdamW keeps ``v = beta2 v + (1 - beta2) g^2`` for every parameter entry, and the faithful
LLMRec's ID tables get gradients of 1e-20 and less for many items (rows reached only through two propagation hops and
a softmax), whose squares are denormal: at Netflix scale (benchmarks/train_speed.py) 28% of the item table's ``v`` was
denormal after 30 steps, and the fused AdamW pass took 8.2-8.8 ms per step instead of 2.5-3.2 ms with them flushed.
Inside :func:`flushed_denormals` the CPU treats denormal inputs as zero (DAZ) and writes zero for denormal results
(FTZ). Only values below 1.2e-38 change, to zero; a float32 step adds nothing measurable from them.

``torch.set_flush_denormal`` sets the mode of the calling thread only, and ATen's OpenMP workers keep the mode they
were created with (threads inherit it from their creator), so the switch is run on every thread of the OpenMP team:
through libgomp's ``GOMP_parallel`` with a callback that sets it on the thread it runs on. Where ATen's parallel
backend is not libgomp's OpenMP, or the CPU cannot flush, only the calling thread is switched and the context says so.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

log = logging.getLogger(__name__)

_lock = threading.Lock()
_depth = 0  # nested or concurrent trainings share the mode; the last one out turns it off
_all_threads = False  # whether the mode now in effect reached every thread


def _libgomp() -> ctypes.CDLL | None:
    """The libgomp that runs ATen's parallel regions (the one loaded in this process, torch's own copy first), or
    None when ATen does not use OpenMP or no libgomp is loaded (macOS and Windows link other runtimes)."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    loaded = sorted({line.split()[-1] for line in maps.splitlines() if "libgomp" in line.rsplit("/", 1)[-1]},
                    key=lambda path: "torch" not in path)
    for path in loaded:
        try:
            lib = ctypes.CDLL(path)
            lib.GOMP_parallel.restype = None
            lib.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
            return lib
        except (OSError, AttributeError):
            continue
    return None


def _on_every_thread(fn: Callable[[], object]) -> bool:
    """Run ``fn`` on the calling thread and on every thread of its OpenMP team (``torch.get_num_threads()`` threads);
    returns whether the team was reached (False: the calling thread only)."""
    gomp = _libgomp()
    if gomp is None:
        fn()
        return False
    # ctypes releases the GIL around the call, and each team thread takes it to run the Python callback
    callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _data: fn())
    gomp.GOMP_parallel(ctypes.cast(callback, ctypes.c_void_p), None, torch.get_num_threads(), 0)
    return True


@contextmanager
def flushed_denormals(enabled: bool = True) -> Iterator[bool]:
    """While inside, denormal floats are flushed to zero on the CPU (module docstring); yields whether every ATen
    thread flushes (False with ``enabled=False``, on a CPU without the mode, or where only the calling thread could be
    switched)."""
    global _depth, _all_threads
    if not enabled:
        yield False
        return
    with _lock:
        if _depth == 0:
            flushes: list[bool] = []  # set_flush_denormal's answer on each thread: False where the CPU cannot
            team = _on_every_thread(lambda: flushes.append(torch.set_flush_denormal(True)))
            _all_threads = team and all(flushes)
            if not all(flushes):
                log.debug("this CPU cannot flush denormals; training with them")
            elif not team:
                log.debug("denormals are flushed on the calling thread only (ATen's workers are not libgomp's)")
        _depth += 1
        flushing = _all_threads
    try:
        yield flushing
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _on_every_thread(lambda: torch.set_flush_denormal(False))
