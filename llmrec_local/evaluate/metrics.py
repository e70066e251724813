"""Top-K ranking metrics, vectorised over users.

Inputs: ``hits`` (n, K_max) bool, ``hits[u, r]`` is True when the item at rank r (0-based) of user u's ranking is a
held-out positive; ``n_truth`` (n,) the number of held-out positives of each user (>= 1). For cut-off K:

* Recall@K = |hits in top K| / n_truth
* Precision@K = |hits in top K| / K
* HitRate@K = 1 if any hit in top K else 0
* NDCG@K = DCG@K / IDCG@K with ``DCG@K = sum_{r<K} hits[r] / log2(r + 2)`` and the standard ideal
  ``IDCG@K = sum_{r < min(n_truth, K)} 1 / log2(r + 2)``.

:func:`paper_ndcg` is the original's variant (utility/metrics.py:61-71): its ideal DCG sorts only the hits
*retrieved in the top K_max* to the front, ``IDCG'@K = sum_{r < min(|hits in top K_max|, K)} 1 / log2(r + 2)``, and a
user with no retrieved hit scores 0. It is never smaller than the standard NDCG.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

DEFAULT_KS = (10, 20, 50)


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(k, device=device, dtype=torch.float64) + 2.0)


def _ideal(counts: torch.Tensor, k: int) -> torch.Tensor:
    """``sum_{r < min(count, k)} 1/log2(r+2)`` per row, via a cumulative table."""
    table = torch.cat([torch.zeros(1, dtype=torch.float64, device=counts.device),
                       torch.cumsum(_discounts(k, counts.device), 0)])
    return table[counts.clamp(max=k).long()]


def metrics_from_hits(
    hits: torch.Tensor, n_truth: torch.Tensor, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, torch.Tensor]:
    """Per-user metrics ``{"recall@10": (n,), "ndcg@10": ..., "precision@10": ..., "hit@10": ...}`` (float64)."""
    if hits.ndim != 2 or hits.shape[0] != n_truth.shape[0]:
        raise ValueError(f"hits must be (n, K) and n_truth (n,), got {tuple(hits.shape)} and {tuple(n_truth.shape)}")
    if max(ks) > hits.shape[1]:
        raise ValueError(f"cut-off {max(ks)} exceeds the {hits.shape[1]} ranked items")
    h = hits.to(torch.float64)
    nt = n_truth.to(torch.float64)
    out: dict[str, torch.Tensor] = {}
    gains = h * _discounts(hits.shape[1], hits.device)
    for k in ks:
        n_hit = h[:, :k].sum(1)
        out[f"recall@{k}"] = n_hit / nt.clamp(min=1.0)
        out[f"precision@{k}"] = n_hit / k
        out[f"hit@{k}"] = (n_hit > 0).to(torch.float64)
        out[f"ndcg@{k}"] = gains[:, :k].sum(1) / _ideal(n_truth, k).clamp(min=1e-12)
    return out


def paper_ndcg(hits: torch.Tensor, k: int) -> torch.Tensor:
    """The original's NDCG@k (see module doc): ideal DCG over the hits retrieved in the whole top-K_max list."""
    h = hits.to(torch.float64)
    dcg = (h[:, :k] * _discounts(k, hits.device)).sum(1)
    ideal = _ideal(h.sum(1).long(), k)
    return torch.where(ideal > 0, dcg / ideal.clamp(min=1e-12), torch.zeros_like(dcg))
