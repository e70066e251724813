"""What every recommender shares: a triple batch (and its padded, fixed-size form), and the methods the trainer and
evaluator call."""

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


@dataclass(frozen=True)
class PaddedBatch:
    """A :class:`TripleBatch` at a fixed size: the same rows, with padding rows (``valid`` False) in the block of LLM
    triples, so that every step of a run has the same shapes (one compiled graph, one CUDA graph).

    Rows ``[0, n_observed)`` are observed and all valid; padding rows hold in-range ids (0) that a static loss must
    mask: they contribute exactly zero to the loss and to every gradient. ``users``, ``pos``, ``neg`` int64 (N,),
    ``valid`` bool (N,), all on the training device.
    """

    users: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor
    valid: torch.Tensor
    n_observed: int

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def compact(self) -> TripleBatch:
        """The variable-size batch it pads: the valid rows, in order (what the eager loss takes)."""
        keep = self.valid.nonzero().squeeze(1)
        return TripleBatch(self.users[keep], self.pos[keep], self.neg[keep], self.n_observed)


class Recommender(nn.Module):
    """Interface: ``embeddings()`` gives the final (U, d) and (I, d) representations with score = user . item;
    ``loss(batch, generator=..., training=...)`` returns the scalar loss and a dict of its named parts; models whose
    ``has_static_loss`` is True also have ``static_loss(padded_batch)``, the same loss at fixed shapes."""

    #: AdamW weight decay used when the training config leaves it unset.
    default_weight_decay: float = 0.0

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @property
    def has_static_loss(self) -> bool:
        """Whether :meth:`static_loss` exists for this model's configuration."""
        return False

    def prepare_static(self) -> None:
        """Build what :meth:`static_loss` needs before it is compiled (e.g. the graph as dense entry lists: a
        compiled graph cannot take a sparse tensor in); idempotent."""

    def static_loss(self, batch: PaddedBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss of ``batch.compact()`` (equal to ``loss(batch.compact(), training=True)`` up to float
        rounding), computed with shapes that depend only on ``len(batch)`` and no host synchronisation, so that
        ``torch.compile(fullgraph=True)`` captures it whole and a CUDA graph can replay it."""
        raise NotImplementedError(f"{type(self).__name__} has no static loss; use the eager loss (train.compile=off "
                                  "or default)")

    def loss(
        self, batch: TripleBatch, *, generator: torch.Generator | None = None, training: bool = True
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError
