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


def derangement(n: int, seed: int) -> np.ndarray:
    """A uniformly random derangement of ``0..n-1`` (a permutation with ``perm[i] != i`` for every i), seeded.

    Drawn by rejection: uniform permutations until one has no fixed point (about e ≈ 2.7 draws on average, each
    O(n)), so every derangement is equally likely. n <= 1 has none: the identity is returned (n = 1) or an empty
    array (n = 0); callers decide what that means.

    Returns:
        int64 (n,) array.
    """
    if n <= 1:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n).astype(np.int64)
        if not np.any(perm == np.arange(n)):
            return perm
