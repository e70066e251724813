"""Seeds: one recipe seed, derived per stage, turned into explicit generators (no hidden global state)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from .hashing import stable_hash

if TYPE_CHECKING:
    import torch


def derive_seed(seed: int, *names: str) -> int:
    """A 31-bit seed for a named sub-task (e.g. ``derive_seed(0, "split")``): independent streams per stage,
    stable across processes (unlike ``hash()``)."""
    return int(stable_hash([seed, *names], length=8), 16) & 0x7FFFFFFF


def numpy_rng(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *names) if names else seed)


def torch_generator(seed: int, device: "str | torch.device" = "cpu") -> "torch.Generator":
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch global RNGs (for library code we do not control, e.g. weight init)."""
    random.seed(seed)
    np.random.seed(seed)
    import torch

    torch.manual_seed(seed)
