"""Seeds: one recipe seed, derived per stage, turned into explicit generators (no hidden global state)."""

from __future__ import annotations

import numpy as np

from .hashing import stable_hash


def derive_seed(seed: int, *names: str) -> int:
    """A 31-bit seed for a named sub-task (e.g. ``derive_seed(0, "split")``): independent streams per stage,
    stable across processes (unlike ``hash()``)."""
    return int(stable_hash([seed, *names], length=8), 16) & 0x7FFFFFFF


def numpy_rng(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *names) if names else seed)
