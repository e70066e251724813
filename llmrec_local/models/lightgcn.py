"""LightGCN (He et al. 2020) on the bipartite blocks of a symmetric-normalised graph.

Propagation (synchronous, no self-loops, no weights): ``E_u^{l+1} = A_ui E_i^l``, ``E_i^{l+1} = A_iu E_u^l`` with
``A = D^-1/2 A D^-1/2``; final ``e = 1/(L+1) sum_{l=0..L} E^l``; score(u, i) = e_u . e_i.
"""

from __future__ import annotations

import torch
from torch import nn

from ..graph import BipartiteGraph, StaticAdjacency
from .base import PaddedBatch, Recommender, TripleBatch
from .losses import bpr_loss, bpr_scores, l2_reg, mask_rows, pruned_score_loss_masked


class LightGCN(Recommender):
    """LightGCN with BPR and L2 on the layer-0 embeddings of the batch rows.

    Args:
        graph: symmetric-normalised :class:`BipartiteGraph` (its device is the model's).
        dim: d; n_layers: L; reg_weight: lambda of the L2 term. Tables are initialised N(0, 0.1^2).
    """

    def __init__(self, graph: BipartiteGraph, dim: int = 64, n_layers: int = 3, reg_weight: float = 1e-4) -> None:
        super().__init__()
        if graph.norm != "symmetric":
            raise ValueError(f"LightGCN needs a symmetric-normalised graph, got norm={graph.norm!r}")
        self.graph = graph
        self.n_layers = n_layers
        self.reg_weight = reg_weight
        self.user = nn.Parameter(torch.randn(graph.n_users, dim, device=graph.device) * 0.1)
        self.item = nn.Parameter(torch.randn(graph.n_items, dim, device=graph.device) * 0.1)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # .to(device) must move the (non-parameter) sparse graph too.
        out = super()._apply(fn, recurse)
        self.graph = self.graph.to(self.user.device)
        return out

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (U, d) and (I, d) representations: the mean of layers 0..L."""
        return self.propagate(self.graph)

    def propagate(self, graph: BipartiteGraph | StaticAdjacency) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean of layers 0..L over `graph` (the model's own, an augmented view of it, or its dense entry lists):
        (U, d), (I, d)."""
        eu, ei = self.user, self.item
        su, si = eu, ei
        for _ in range(self.n_layers):
            eu, ei = graph.users_from_items(ei), graph.items_from_users(eu)
            su, si = su + eu, si + ei
        return su / (self.n_layers + 1), si / (self.n_layers + 1)

    def loss(
        self, batch: TripleBatch, *, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        hu, hi = self.embeddings()
        bpr = bpr_loss(hu[batch.users], hi[batch.pos], hi[batch.neg])
        reg = self.reg_weight * l2_reg(
            self.user[batch.users], self.item[batch.pos], self.item[batch.neg], batch_size=len(batch)
        )
        return bpr + reg, {"bpr": bpr.detach(), "reg": reg.detach()}

    @property
    def has_static_loss(self) -> bool:
        # Only while the loss is LightGCN's own: SGL and SimGCL inherit static_loss but add their contrastive terms
        # in their own loss, so the static step would silently train them as plain LightGCN.
        return type(self).loss is LightGCN.loss

    def prepare_static(self) -> None:
        if not hasattr(self, "static_graph"):
            self.static_graph = StaticAdjacency(self.graph)

    def static_loss(self, batch: PaddedBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`loss` of ``batch.compact()`` at fixed shapes (padding rows masked; see :class:`PaddedBatch`), the
        propagation over the graph's dense entry lists (:meth:`prepare_static` first)."""
        hu, hi = self.propagate(self.static_graph)
        bpr = pruned_score_loss_masked(bpr_scores(hu[batch.users], hi[batch.pos], hi[batch.neg]), batch.valid, 0.0,
                                       "hardest")
        rows = mask_rows(batch.valid, self.user[batch.users], self.item[batch.pos], self.item[batch.neg])
        reg = self.reg_weight * l2_reg(*rows, batch_size=batch.valid.sum())
        return bpr + reg, {"bpr": bpr.detach(), "reg": reg.detach()}
