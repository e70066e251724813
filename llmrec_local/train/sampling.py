"""Vectorised BPR triple sampling on the training device (no per-sample Python loops).

Per batch, as in the original (load_data.py:157-195): ``B`` distinct users drawn uniformly from the users with a
training item; for each, one positive uniform over the user's training items and one negative uniform over all items
outside the user's training set (rejection sampling, redrawn in vectorised rounds). LLM triples are added for a
random fraction ``aug_sample_rate`` of the batch's users (main.py:216-224), and optionally random noisy triples.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.base import TripleBatch


def _group_by_user(users: np.ndarray, values: np.ndarray, n_users: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR-style (indptr (U+1,), values sorted by user) on `device`."""
    order = np.argsort(users, kind="stable")
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return torch.from_numpy(indptr).to(device), torch.from_numpy(np.ascontiguousarray(values[order])).to(device)


class TripleSampler:
    """Draws :class:`TripleBatch` es from training pairs (and optional LLM pairs) with one torch.Generator.

    Args:
        train: int64 (n, 2) training pairs (duplicates ignored).
        n_users, n_items: U, I.
        generator: the only randomness source (its device is where sampling runs).
        aug_pairs: optional int64 (m, 3) LLM triples (user, pos, neg); rows with out-of-range ids are dropped and
            counted in ``n_invalid_aug``, as the original silently drops ids >= n_items.
    """

    def __init__(
        self, train: np.ndarray, n_users: int, n_items: int, generator: torch.Generator,
        aug_pairs: np.ndarray | None = None,
    ) -> None:
        self.gen = generator
        self.device = generator.device
        self.n_users, self.n_items = n_users, n_items
        keys = np.unique(np.asarray(train, dtype=np.int64)[:, 0] * n_items + np.asarray(train)[:, 1])
        users, items = keys // n_items, keys % n_items
        self.n_train = len(keys)
        self.keys = torch.from_numpy(keys).to(self.device)
        self.indptr, self.items = _group_by_user(users, items, n_users, self.device)
        self.active = torch.from_numpy(np.unique(users)).to(self.device)
        self.n_invalid_aug = 0
        self.aug_indptr: torch.Tensor | None = None
        if aug_pairs is not None and len(aug_pairs):
            a = np.asarray(aug_pairs, dtype=np.int64).reshape(-1, 3)
            ok = (a[:, 0] >= 0) & (a[:, 0] < n_users) & (a[:, 1:] >= 0).all(1) & (a[:, 1:] < n_items).all(1)
            self.n_invalid_aug = int((~ok).sum())
            a = a[ok]
            self.aug_indptr, aug_rows = _group_by_user(a[:, 0], np.arange(len(a)), n_users, self.device)
            self.aug_pairs = torch.from_numpy(a).to(self.device)[aug_rows]

    def steps_per_epoch(self, batch_size: int) -> int:
        """The original's ``n_train // batch_size + 1``."""
        return self.n_train // batch_size + 1

    def _rand(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.gen, device=self.device)

    def _in_train(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        key = users * self.n_items + items
        pos = torch.searchsorted(self.keys, key).clamp(max=len(self.keys) - 1)
        return self.keys[pos] == key

    def negatives(self, users: torch.Tensor) -> torch.Tensor:
        """One item per user, uniform over items not in the user's training set (vectorised rejection)."""
        neg = torch.randint(0, self.n_items, users.shape, generator=self.gen, device=self.device)
        bad = self._in_train(users, neg)
        while bool(bad.any()):
            idx = bad.nonzero().squeeze(1)
            neg[idx] = torch.randint(0, self.n_items, idx.shape, generator=self.gen, device=self.device)
            bad = torch.zeros_like(bad)
            bad[idx] = self._in_train(users[idx], neg[idx])
        return neg

    def sample(self, batch_size: int, aug_sample_rate: float = 0.0, noise_rate: float = 0.0) -> TripleBatch:
        """Observed triples for ``min(batch_size, #active users)`` distinct users, then LLM and noise triples."""
        n = min(batch_size, len(self.active))
        perm = torch.randperm(len(self.active), generator=self.gen, device=self.device)[:n]
        users = self.active[perm]
        start = self.indptr[users]
        deg = self.indptr[users + 1] - start
        pos = self.items[start + (self._rand(n) * deg).long().clamp(max=deg - 1)]
        neg = self.negatives(users)
        parts_u, parts_p, parts_n = [users], [pos], [neg]
        n_aug = int(batch_size * aug_sample_rate)
        if n_aug and self.aug_indptr is not None:
            cand = users[torch.randperm(n, generator=self.gen, device=self.device)[:n_aug]]
            a_start = self.aug_indptr[cand]
            a_cnt = self.aug_indptr[cand + 1] - a_start
            has = a_cnt > 0
            cand, a_start, a_cnt = cand[has], a_start[has], a_cnt[has]
            rows = a_start + (self._rand(len(cand)) * a_cnt).long().clamp(max=a_cnt - 1) if len(cand) else a_start
            triples = self.aug_pairs[rows]
            parts_u.append(triples[:, 0]), parts_p.append(triples[:, 1]), parts_n.append(triples[:, 2])
        n_noise = int(batch_size * noise_rate)
        if n_noise:
            nu = users[torch.randint(0, n, (n_noise,), generator=self.gen, device=self.device)]
            parts_u.append(nu)
            parts_p.append(torch.randint(0, self.n_items, (n_noise,), generator=self.gen, device=self.device))
            parts_n.append(torch.randint(0, self.n_items, (n_noise,), generator=self.gen, device=self.device))
        return TripleBatch(torch.cat(parts_u), torch.cat(parts_p), torch.cat(parts_n), n_observed=n)
