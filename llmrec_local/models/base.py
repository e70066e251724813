"""What every recommender shares: a triple batch, and the two methods the trainer and evaluator call."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TripleBatch:
    """One training batch of BPR triples (all int64 (N,) on the training device).

    Rows ``[0, n_observed)`` were sampled from the training interactions; the rest are extra triples (LLM
    augmented pairs, injected noise). Models may treat them alike (the original does) but can tell them apart.
    """

    users: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor
    n_observed: int

    def __len__(self) -> int:
        return int(self.users.shape[0])


class Recommender(nn.Module):
    """Interface: ``embeddings()`` gives the final (U, d) and (I, d) representations with score = user . item;
    ``loss(batch, generator=..., training=...)`` returns the scalar loss and a dict of its named parts."""

    #: AdamW weight decay used when the training config leaves it unset.
    default_weight_decay: float = 0.0

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def loss(
        self, batch: TripleBatch, *, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError
