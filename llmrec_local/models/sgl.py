"""SGL-ED (Wu et al., SIGIR 2021, "Self-supervised Graph Learning for Recommendation") with edge dropout.

Encoder: LightGCN (``e = 1/(L+1) sum_{l=0..L} E^l`` over ``A = D^-1/2 A D^-1/2``). Each training step draws two
augmented views of the graph by edge dropout, ``s1(G), s2(G) = (V, M1 ⊙ E), (V, M2 ⊙ E)`` with masks
``M ~ Bernoulli(1 - rho)`` per edge, shared by all layers (ED, the paper's default and strongest augmentation),
each view renormalised by its own degrees. With ``z'`` and ``z''`` the LightGCN outputs on the two views:

    L = L_bpr(full graph) + lambda * (L_ssl^user + L_ssl^item) + reg * L2(layer-0 rows of the batch)

``L_ssl^user = InfoNCE(z'_B, z''_B)`` over the distinct users B of the batch and ``L_ssl^item`` over its distinct
positive items, cosine similarity, temperature tau, in-batch negatives (Eq. 9-10). Paper defaults: rho = 0.1,
tau = 0.2, lambda = 0.1, L = 3, d = 64, L2 1e-4 (the paper's main setting; it reports sensitivity around it).
Ranking and the BPR term use the clean full graph.
"""

from __future__ import annotations

import torch

from ..graph import BipartiteGraph, GraphEdges, drop_edges
from .base import TripleBatch
from .lightgcn import LightGCN
from .losses import info_nce


class SGL(LightGCN):
    """SGL-ED on a LightGCN encoder.

    Args:
        graph: symmetric-normalised :class:`BipartiteGraph` of the training pairs (its device is the model's).
        dim: d; n_layers: L; reg_weight: weight of the L2 term (as LightGCN).
        edge_drop_rate: rho, the probability that an edge is dropped from a view, in [0, 1).
        cl_temp: tau of the InfoNCE; cl_weight: lambda, the weight of the SSL term (0 = plain LightGCN).

    The two views are re-drawn at every step (the paper re-draws them every epoch). Why per step: the trainer's
    loss call carries no epoch boundary, and a view drawn inside ``loss`` from the step's generator keeps the model
    stateless, so a run resumed from a checkpoint replays exactly; drawing a view costs two bincounts and a mask
    over E edges, small beside the three propagations of a step. Fresher views are, if anything, more augmentation.
    """

    def __init__(
        self, graph: BipartiteGraph, dim: int = 64, n_layers: int = 3, reg_weight: float = 1e-4,
        edge_drop_rate: float = 0.1, cl_temp: float = 0.2, cl_weight: float = 0.1,
    ) -> None:
        super().__init__(graph, dim=dim, n_layers=n_layers, reg_weight=reg_weight)
        if not 0.0 <= edge_drop_rate < 1.0:
            raise ValueError(f"edge_drop_rate must be in [0, 1), got {edge_drop_rate}")
        if cl_temp <= 0 or cl_weight < 0:
            raise ValueError(f"cl_temp must be > 0 and cl_weight >= 0, got {cl_temp} and {cl_weight}")
        self.edge_drop_rate = edge_drop_rate
        self.cl_temp = cl_temp
        self.cl_weight = cl_weight
        self.edges = GraphEdges.from_graph(graph)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # .to(device) must move the (non-buffer) edge list with the graph
        out = super()._apply(fn, recurse)
        self.edges = self.edges.to(self.user.device)
        return out

    def views(
        self, *, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[BipartiteGraph, BipartiteGraph]:
        """Two independent edge-dropout views of the training graph (the full graph twice when not training)."""
        if not training:
            return self.graph, self.graph
        return (drop_edges(self.edges, self.edge_drop_rate, generator=generator),
                drop_edges(self.edges, self.edge_drop_rate, generator=generator))

    def loss(
        self, batch: TripleBatch, *, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """BPR + L2 as LightGCN, plus ``lambda * (InfoNCE_users + InfoNCE_items)`` between two fresh views;
        parts: bpr, reg, ssl (weighted, so the parts add up to the loss)."""
        bpr_reg, parts = super().loss(batch, generator=generator, training=training)
        if self.cl_weight == 0.0:
            return bpr_reg, parts
        g1, g2 = self.views(generator=generator, training=training)
        (u1, i1), (u2, i2) = self.propagate(g1), self.propagate(g2)
        # distinct nodes only: a repeated node would be its own in-batch negative
        users, items = torch.unique(batch.users), torch.unique(batch.pos)
        ssl = self.cl_weight * (info_nce(u1[users], u2[users], self.cl_temp)
                                + info_nce(i1[items], i2[items], self.cl_temp))
        return bpr_reg + ssl, {**parts, "ssl": ssl.detach()}
