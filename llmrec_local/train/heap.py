"""Keep freed memory in the process heap while training on the CPU, so that a step's temporaries cost no page faults.

Why: glibc's malloc serves a request at or above its mmap threshold (which grows with use, to at most 32 MiB) with a
fresh ``mmap`` that it unmaps when the block is freed, and it hands the top of its heap back to the kernel once more
than a trim threshold of it is free. A training step allocates and frees the same large temporaries every step (the
gathered feature rows, their projections, gradients, evaluation score blocks), so with the defaults the kernel faults
in and zeroes fresh pages for them step after step: at Netflix scale (benchmarks/train_speed.py) an LLMRec step took
about 15,000 minor page faults, 58 MiB of new pages, each step. Inside :func:`retained_heap` malloc takes every block
from its heap (``M_MMAP_MAX = 0``) and keeps what is freed (``M_TRIM_THRESHOLD`` at its largest), so a step reuses the
pages of the step before. Results are unchanged (only where memory comes from); the process holds its peak heap until
the context ends, when the defaults return and ``malloc_trim`` gives the free memory back.

Elsewhere (macOS, musl) this is a no-op: their allocators have no such switches.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# mallopt parameters and glibc's defaults for them (malloc.h; malloc/malloc.c DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
_DEFAULTS = {M_MMAP_MAX: 65536, M_TRIM_THRESHOLD: 128 * 1024}
_RETAINED = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1}  # mallopt takes an int: the largest trim threshold

_lock = threading.Lock()
_depth = 0  # nested or concurrent trainings share the setting; the last one out restores the defaults


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (the only one with these mallopt switches), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _set(libc: ctypes.CDLL, values: dict[int, int]) -> bool:
    return all(libc.mallopt(param, value) == 1 for param, value in values.items())  # mallopt returns 1 on success


@contextmanager
def retained_heap(enabled: bool = True) -> Iterator[bool]:
    """While inside, freed memory stays in the heap for reuse (module docstring); yields whether that is in effect
    (False where the C library is not glibc, or with ``enabled=False``)."""
    global _depth
    libc = _glibc() if enabled else None
    with _lock:
        if libc is not None and _depth == 0 and not _set(libc, _RETAINED):
            _set(libc, _DEFAULTS)
            log.debug("mallopt refused the retained-heap settings; training with the allocator's defaults")
            libc = None
        if libc is not None:
            _depth += 1
    if libc is None:
        yield False
        return
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(libc, _DEFAULTS)
                libc.malloc_trim(0)
