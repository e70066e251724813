"""Pure, stochastic-by-generator feature ops (they never modify their inputs and are identities when not training)."""

from __future__ import annotations

import torch

from .adjacency import BipartiteGraph, GraphEdges


def sample_mask(
    n: int, rate: float, *, generator: torch.Generator | None, training: bool = True,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Bool (n,) mask with each entry True independently with probability `rate` (all False when not training)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"mask rate must be in [0, 1], got {rate}")
    if not training or rate == 0.0 or n == 0:
        return torch.zeros(n, dtype=torch.bool, device=device)
    return torch.rand(n, generator=generator, device=device) < rate


def drop_edges(
    edges: GraphEdges, rate: float, *, generator: torch.Generator | None, training: bool = True
) -> BipartiteGraph:
    """Edge dropout (SGL-ED): each training edge is removed independently with probability `rate` and the kept
    ones are renormalised symmetrically (:meth:`GraphEdges.subgraph`). The full graph's edges when not training."""
    dropped = sample_mask(len(edges), rate, generator=generator, training=training, device=edges.users.device)
    return edges.subgraph(~dropped)
