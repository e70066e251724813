"""Matrix factorisation trained with BPR (Rendle et al. 2009): score(u, i) = e_u . e_i."""

from __future__ import annotations

import torch
from torch import nn

from .base import PaddedBatch, Recommender, TripleBatch
from .losses import bpr_loss, bpr_scores, l2_reg, mask_rows, pruned_score_loss_masked


class MF(Recommender):
    """MF-BPR.

    Args:
        n_users, n_items: table sizes U and I.
        dim: embedding size d. Tables are initialised N(0, 0.1^2).
        reg_weight: lambda of ``lambda/(2N) (||e_u||^2 + ||e_i+||^2 + ||e_i-||^2)`` over the batch rows.
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, reg_weight: float = 1e-4) -> None:
        super().__init__()
        self.user = nn.Parameter(torch.randn(n_users, dim) * 0.1)
        self.item = nn.Parameter(torch.randn(n_items, dim) * 0.1)
        self.reg_weight = reg_weight

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user, self.item

    def loss(
        self, batch: TripleBatch, *, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        u, p, n = self.user[batch.users], self.item[batch.pos], self.item[batch.neg]
        bpr = bpr_loss(u, p, n)
        reg = self.reg_weight * l2_reg(u, p, n, batch_size=len(batch))
        return bpr + reg, {"bpr": bpr.detach(), "reg": reg.detach()}

    @property
    def has_static_loss(self) -> bool:
        return True

    def static_loss(self, batch: PaddedBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`loss` of ``batch.compact()`` at fixed shapes (padding rows masked; see :class:`PaddedBatch`)."""
        u, p, n = self.user[batch.users], self.item[batch.pos], self.item[batch.neg]
        bpr = pruned_score_loss_masked(bpr_scores(u, p, n), batch.valid, 0.0, "hardest")
        reg = self.reg_weight * l2_reg(*mask_rows(batch.valid, u, p, n), batch_size=batch.valid.sum())
        return bpr + reg, {"bpr": bpr.detach(), "reg": reg.detach()}
