"""Recommenders (nn.Modules from plain arguments) and their loss functions.

``build_model(name, n_users=..., n_items=..., train=..., **kwargs)`` builds the graph each model needs from the
training pairs (symmetric normalisation for LightGCN, SGL, SimGCL and LLMRec-fixed, the original's row-only one for
LLMRec-faithful) and returns the module on ``device``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..graph import build_graph
from .base import PaddedBatch, Recommender, TripleBatch
from .lightgcn import LightGCN
from .llmrec import VARIANT_DEFAULTS, LLMRec
from .mf import MF
from .sgl import SGL
from .simgcl import SimGCL

MODEL_NAMES = ("mf", "lightgcn", "sgl", "simgcl", "llmrec")

__all__ = [
    "MF", "LightGCN", "SGL", "SimGCL", "LLMRec", "PaddedBatch", "Recommender", "TripleBatch", "build_model",
    "MODEL_NAMES",
    "VARIANT_DEFAULTS",
]


def build_model(
    name: str, *, n_users: int, n_items: int, train: np.ndarray | None = None,
    device: str | torch.device = "cpu", **kwargs: Any,
) -> Recommender:
    """Build model `name` ('mf', 'lightgcn', 'sgl', 'simgcl', 'llmrec').

    Args:
        n_users, n_items: U and I.
        train: int64 (n, 2) training pairs (user, item); needed by the graph models.
        device: where parameters, graph and fixed features live.
        **kwargs: the model's own constructor arguments (e.g. dim, n_layers, variant, item_text, ...).
    """
    if name == "mf":
        return MF(n_users, n_items, **kwargs).to(device)
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}")
    if train is None:
        raise ValueError(f"model {name!r} propagates over the training graph: pass train=(n, 2) pairs")
    if name == "lightgcn":
        return LightGCN(build_graph(train, n_users, n_items, "symmetric", device), **kwargs)
    if name == "sgl":
        return SGL(build_graph(train, n_users, n_items, "symmetric", device), **kwargs)
    if name == "simgcl":
        return SimGCL(build_graph(train, n_users, n_items, "symmetric", device), **kwargs)
    variant = kwargs.get("variant", "fixed")
    norm = "row" if variant == "faithful" else "symmetric"
    return LLMRec(build_graph(train, n_users, n_items, norm, device), **kwargs)
