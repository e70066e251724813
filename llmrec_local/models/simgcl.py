"""SimGCL (Yu et al., SIGIR 2022, "Are Graph Augmentations Necessary? Simple Graph Contrastive Learning for
Recommendation"): no graph augmentation; two views made by adding small random noise to every layer.

Encoder (LightGCN propagation, layer 0 left out of the mean as in the paper, Eq. 7):
``E^l = A E^{l-1} + Delta^l`` (l = 1..L, ``A = D^-1/2 A D^-1/2``), ``e = 1/L sum_{l=1..L} E^l``. The noise of each
node row is ``Delta = eps * normalize(X) ⊙ sign(E^l)`` with ``X ~ U(0, 1)^d`` (Eq. 6): length exactly eps, and in
the same orthant as the row it perturbs, so it rotates an embedding by a small angle without flipping it.

    L = L_bpr(clean view) + lambda * (InfoNCE(z'_B, z''_B) + InfoNCE(z'_P, z''_P)) + reg * L2(layer-0 batch rows)

with ``z', z''`` two independently noised encodings, B the distinct users and P the distinct positive items of the
batch (cosine similarity, temperature tau, in-batch negatives, Eq. 4). The clean view (Delta = 0) gives the BPR
term and the ranking. Paper defaults: eps = 0.1, tau = 0.2, L = 3 (as LightGCN), d = 64; lambda is tuned per
dataset in the paper, so it is a recipe setting here (default 0.1, SGL's value).
"""

from __future__ import annotations

import torch

from ..graph import BipartiteGraph
from .base import TripleBatch
from .lightgcn import LightGCN
from .losses import bpr_loss, info_nce, l2_reg


def uniform_noise(
    x: torch.Tensor, eps: float, *, generator: torch.Generator | None, training: bool = True
) -> torch.Tensor:
    """SimGCL's perturbation of `x` (n, d): ``Delta = eps * normalize(U(0, 1)^d) ⊙ sign(x)`` row by row, so
    ``||Delta_n||_2 = eps`` (fewer where x has zeros) and ``Delta * x >= 0``. Zero when not training.

    Delta carries no gradient (d sign(x)/dx = 0 almost everywhere), so it is built outside autograd and in place:
    recording it made the backward pass multiply zeros through every layer (SimGCL's step on ml-latest-small was
    about half elementwise noise work).
    """
    if not training or eps == 0.0:
        return torch.zeros_like(x)
    with torch.no_grad():
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        scale = eps / torch.linalg.vector_norm(u, dim=-1, keepdim=True).clamp_min(1e-12)  # as F.normalize
        return u.mul_(scale).mul_(torch.sign(x))


class SimGCL(LightGCN):
    """SimGCL on a LightGCN encoder (shares its tables, L2 term and graph handling).

    Args:
        graph: symmetric-normalised :class:`BipartiteGraph` of the training pairs (its device is the model's).
        dim: d; n_layers: L >= 1; reg_weight: weight of the L2 term (as LightGCN).
        noise_eps: eps, the length of each layer's noise per node. cl_temp: tau; cl_weight: lambda (0 = no CL).
    """

    def __init__(
        self, graph: BipartiteGraph, dim: int = 64, n_layers: int = 3, reg_weight: float = 1e-4,
        noise_eps: float = 0.1, cl_temp: float = 0.2, cl_weight: float = 0.1,
    ) -> None:
        super().__init__(graph, dim=dim, n_layers=n_layers, reg_weight=reg_weight)
        if n_layers < 1:
            raise ValueError("SimGCL perturbs propagated layers: n_layers must be >= 1")
        if noise_eps < 0 or cl_temp <= 0 or cl_weight < 0:
            raise ValueError(f"need noise_eps >= 0, cl_temp > 0, cl_weight >= 0; got {noise_eps}, {cl_temp}, "
                             f"{cl_weight}")
        self.noise_eps = noise_eps
        self.cl_temp = cl_temp
        self.cl_weight = cl_weight

    def encode(
        self, *, perturbed: bool, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``1/L sum_{l=1..L} E^l``, (U, d) and (I, d); with `perturbed` each layer gets :func:`uniform_noise`
        (before it feeds the next layer) when training."""
        eps = self.noise_eps if perturbed else 0.0
        eu, ei = self.user, self.item
        su = si = None
        for _ in range(self.n_layers):
            eu, ei = self.graph.users_from_items(ei), self.graph.items_from_users(eu)
            if eps:
                eu = eu + uniform_noise(eu, eps, generator=generator, training=training)
                ei = ei + uniform_noise(ei, eps, generator=generator, training=training)
            su, si = (eu, ei) if su is None else (su + eu, si + ei)
        return su / self.n_layers, si / self.n_layers

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean view: final (U, d) and (I, d) representations, the mean of layers 1..L."""
        return self.encode(perturbed=False)

    def loss(
        self, batch: TripleBatch, *, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """BPR on the clean view + L2 on the layer-0 rows + lambda * (InfoNCE_users + InfoNCE_items) between two
        noisy views; parts: bpr, reg, cl (weighted, so the parts add up to the loss)."""
        hu, hi = self.embeddings()
        bpr = bpr_loss(hu[batch.users], hi[batch.pos], hi[batch.neg])
        reg = self.reg_weight * l2_reg(
            self.user[batch.users], self.item[batch.pos], self.item[batch.neg], batch_size=len(batch)
        )
        parts = {"bpr": bpr.detach(), "reg": reg.detach()}
        if self.cl_weight == 0.0:
            return bpr + reg, parts
        u1, i1 = self.encode(perturbed=True, generator=generator, training=training)
        u2, i2 = self.encode(perturbed=True, generator=generator, training=training)
        # distinct nodes only: a repeated node would be its own in-batch negative
        users, items = torch.unique(batch.users), torch.unique(batch.pos)
        cl = self.cl_weight * (info_nce(u1[users], u2[users], self.cl_temp)
                               + info_nce(i1[items], i2[items], self.cl_temp))
        return bpr + reg + cl, {**parts, "cl": cl.detach()}
