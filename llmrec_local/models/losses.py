"""Loss functions (pure: tensors in, scalar tensor out).

Notation: for a batch of N triples (u, i+, i-) with scores ``y+ = h_u . h_i+`` and ``y- = h_u . h_i-``, the BPR
log-likelihood of triple n is ``s_n = log sigma(y+_n - y-_n)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

PruneKeep = Literal["hardest", "easiest"]


def bpr_scores(user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """``s_n = log sigma(u_n . p_n - u_n . q_n)``; inputs (N, d), output (N,). Leading dimensions broadcast, e.g.
    (N, 1, d) users against (N, T, d) items give (N, T): T terms at once.

    The original adds 1e-8 inside the sigmoid (``log sigma(y+ - y- + 1e-8)``); it changes nothing measurable and is
    left out."""
    return F.logsigmoid((user * pos).sum(-1) - (user * neg).sum(-1))


def bpr_loss(user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """``L = -1/N sum_n log sigma(u_n . p_n - u_n . q_n)`` (Rendle et al. 2009); inputs (N, d)."""
    return -bpr_scores(user, pos, neg).mean()


def keep_count(n: int, drop_rate: float) -> int:
    """How many of ``n`` triples pruning keeps: ``int((1 - drop_rate) n)``, at least 1 when n > 0."""
    return max(int((1.0 - drop_rate) * n), 1) if n else 0


def keep_count_tensor(n: torch.Tensor, drop_rate: float) -> torch.Tensor:
    """:func:`keep_count` of an int64 tensor (elementwise), without reading it on the host (for static-shape steps).

    ``(1 - drop_rate) n`` in float64 is the very multiplication Python does for ``int((1 - drop_rate) * n)`` (an int
    below 2^53 converts to a double exactly, then one IEEE double product), so the floor agrees for every n."""
    kept = torch.floor(n.to(torch.float64) * (1.0 - drop_rate)).to(torch.int64)
    return torch.where(n > 0, kept.clamp(min=1), 0)


def prune_keep_index(losses: torch.Tensor, drop_rate: float, keep: PruneKeep) -> torch.Tensor:
    """Indices of the triples kept after dropping a fraction `drop_rate` of them, ranked by loss.

    ``n_keep = int((1 - drop_rate) * N)`` (at least 1 when N > 0). ``keep="hardest"`` keeps the n_keep triples with
    the *largest* loss (the released LLMRec code and paper Eq. 7: sort log sigma ascending, keep the head);
    ``keep="easiest"`` keeps the n_keep smallest losses (small-loss denoising, the paper's stated intent).
    Ties are broken by position (stable sort), so the result is deterministic. ``losses`` (N,) gives (n_keep,);
    (N, T) ranks each of the T columns on its own and gives (n_keep, T).
    """
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"prune drop rate must be in [0, 1), got {drop_rate}")
    if keep not in ("hardest", "easiest"):
        raise ValueError(f"prune keep must be 'hardest' or 'easiest', got {keep!r}")
    n_keep = keep_count(losses.shape[0], drop_rate)
    order = torch.sort(losses.detach(), dim=0, descending=(keep == "hardest"), stable=True).indices
    return order[:n_keep]


def pruned_score_loss(s: torch.Tensor, drop_rate: float, keep: PruneKeep) -> torch.Tensor:
    """``L = -mean_{n in kept} s_n`` over the triples kept by :func:`prune_keep_index` (ranked by loss ``-s``).

    ``s`` (N,) gives a scalar; (N, T) holds T independent terms (one per column, each pruned on its own) and gives
    (T,). With ``drop_rate = 0`` this is the plain mean.
    """
    if drop_rate == 0.0:
        return -s.mean(0)
    return -s.gather(0, prune_keep_index(-s, drop_rate, keep)).mean(0)


def pruned_score_loss_split(s: torch.Tensor, n_observed: int, drop_rate: float, keep: PruneKeep) -> torch.Tensor:
    """:func:`pruned_score_loss` where only the extra triples (rows ``n_observed:``, e.g. LLM-augmented) are pruned:
    ``L = -(sum_{n < n_obs} s_n + sum_{n in kept(extra)} s_n) / (n_obs + |kept|)``, per column of ``s``.

    This is the paper's stated purpose of pruning (remove unreliable augmented edges) without discarding
    observed interactions; with no extra rows it is the plain mean.
    """
    obs, extra = s[:n_observed], s[n_observed:]
    if drop_rate == 0.0 or len(extra) == 0:
        return -s.mean(0)
    return -torch.cat([obs, extra.gather(0, prune_keep_index(-extra, drop_rate, keep))]).mean(0)


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The (N,) row mask shaped to broadcast against ``like`` (N, ...)."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _masked_kept_sum(s: torch.Tensor, valid: torch.Tensor, drop_rate: float, keep: PruneKeep
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of ``s`` over the rows :func:`prune_keep_index` keeps among the valid rows, and how many it keeps.

    Static shapes: the invalid rows are ranked after every valid one (their loss set to -inf for ``hardest``, +inf for
    ``easiest``), so the stable sort orders the valid rows exactly as it orders ``s[valid]``; the first ``n_keep`` of
    the order are summed (``where``, so the others get exactly zero gradient)."""
    if keep not in ("hardest", "easiest"):
        raise ValueError(f"prune keep must be 'hardest' or 'easiest', got {keep!r}")
    n_keep = keep_count_tensor(valid.sum(), drop_rate)
    hardest = keep == "hardest"
    losses = torch.where(_rows(valid, s), -s.detach(), float("-inf") if hardest else float("inf"))
    order = torch.sort(losses, dim=0, descending=hardest, stable=True).indices
    kept = _rows(torch.arange(s.shape[0], device=s.device) < n_keep, s)
    return torch.where(kept, s.gather(0, order), 0.0).sum(0), n_keep


def pruned_score_loss_masked(s: torch.Tensor, valid: torch.Tensor, drop_rate: float, keep: PruneKeep) -> torch.Tensor:
    """:func:`pruned_score_loss` of ``s[valid]`` with static shapes: ``s`` (N,) or (N, T), ``valid`` bool (N,).

    Invalid rows (padding) contribute exactly zero to the value and to the gradient."""
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"prune drop rate must be in [0, 1), got {drop_rate}")
    if drop_rate == 0.0:
        return -torch.where(_rows(valid, s), s, 0.0).sum(0) / valid.sum()
    total, n_keep = _masked_kept_sum(s, valid, drop_rate, keep)
    return -total / n_keep


def pruned_score_loss_split_masked(s: torch.Tensor, valid: torch.Tensor, n_observed: int, drop_rate: float,
                                   keep: PruneKeep) -> torch.Tensor:
    """:func:`pruned_score_loss_split` of ``s[valid]`` with static shapes (padding only among the extra rows, so the
    first ``n_observed`` rows of ``s[valid]`` are those of ``s``): ``L = -(sum_obs s + sum_kept(extra) s) /
    (n_obs + n_keep)``; invalid rows contribute exactly zero."""
    if not 0.0 <= drop_rate < 1.0:
        raise ValueError(f"prune drop rate must be in [0, 1), got {drop_rate}")
    if drop_rate == 0.0 or s.shape[0] == n_observed:
        return pruned_score_loss_masked(s, valid, 0.0, keep)
    obs, v_obs = s[:n_observed], valid[:n_observed]
    total, n_keep = _masked_kept_sum(s[n_observed:], valid[n_observed:], drop_rate, keep)
    return -(torch.where(_rows(v_obs, obs), obs, 0.0).sum(0) + total) / (v_obs.sum() + n_keep)


def mask_rows(valid: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each (N, ...) tensor with its invalid rows (``valid`` bool (N,) False) set to zero, with zero gradient."""
    return tuple(torch.where(_rows(valid, t), t, 0.0) for t in tensors)


def l2_reg(*tensors: torch.Tensor, batch_size: int | torch.Tensor) -> torch.Tensor:
    """Standard embedding regulariser ``1/(2B) sum_t ||t||_F^2`` over the batch rows of each tensor."""
    return sum(t.pow(2).sum() for t in tensors) / (2.0 * batch_size)


def inverse_reg_original(
    user: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, batch_size: int | torch.Tensor
) -> torch.Tensor:
    """The original LLMRec "regulariser" (main.py:334-340, bug B5): ``sum_t 1/(2 ||t||_F^2 + 1e-8) / B``.

    It is the inverse of the usual term, so it *rewards* large embeddings; its weight (1e-5) makes it negligible.
    Kept only for the faithful variant.
    """
    return sum(1.0 / (2.0 * t.pow(2).sum() + 1e-8) for t in (user, pos, neg)) / batch_size


def sce_loss(pred: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Scaled cosine error (paper Eq. 9, GraphMAE): ``1/|V| sum_v (1 - cos(pred_v, target_v))^gamma``; (n, D) inputs."""
    if gamma < 1.0:
        raise ValueError(f"SCE gamma must be >= 1, got {gamma}")
    cos = F.cosine_similarity(pred, target, dim=-1, eps=1e-8)
    return (1.0 - cos).pow(gamma).mean()


def info_nce(view1: torch.Tensor, view2: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between two views of the same N nodes with in-batch negatives (SGL Eq. 9, SimGCL Eq. 4):

    ``L = -1/N sum_n log( exp(s(z'_n, z''_n) / tau) / sum_m exp(s(z'_n, z''_m) / tau) )`` with ``s`` the cosine
    similarity; the denominator runs over all N nodes of view 2 (the positive included). Inputs (N, d), scalar out.

    The papers write both this term and BPR as sums over the batch; here both are means, so lambda weighs the two
    terms against each other as in the papers (up to the ratio of distinct nodes to triples in a batch).
    """
    if temperature <= 0:
        raise ValueError(f"InfoNCE temperature must be > 0, got {temperature}")
    z1, z2 = F.normalize(view1, dim=-1), F.normalize(view2, dim=-1)
    logits = z1 @ z2.T / temperature  # (N, N): row n scores node n of view 1 against every node of view 2
    # -log softmax at the diagonal, computed stably (log-sum-exp) by cross_entropy
    return F.cross_entropy(logits, torch.arange(len(z1), device=z1.device))
