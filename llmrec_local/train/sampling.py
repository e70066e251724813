"""Vectorised BPR triple sampling on the training device (no per-sample Python loops).

Per batch, as in the original (load_data.py:157-195): ``B`` distinct users drawn uniformly from the users with a
training item; for each, one positive uniform over the user's training items and one negative uniform over all items
outside the user's training set (rejection sampling, redrawn in vectorised rounds). LLM triples are added for a
random fraction ``aug_sample_rate`` of the batch's users (main.py:216-224), and optionally random noisy triples.
:meth:`TripleSampler.sample_padded` draws the same batch padded to a fixed size (for the static training step).
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.base import PaddedBatch, TripleBatch


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

    def _draw(self, batch_size: int, aug_sample_rate: float, noise_rate: float
              ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], int, int]:
        """The triples of one batch as row blocks (observed; LLM, if any; noise, if any) of users, positives and
        negatives, the observed count n, and the index of the LLM block (-1: none)."""
        n = min(batch_size, len(self.active))
        perm = torch.randperm(len(self.active), generator=self.gen, device=self.device)[:n]
        users = self.active[perm]
        start = self.indptr[users]
        deg = self.indptr[users + 1] - start
        pos = self.items[start + (self._rand(n) * deg).long().clamp(max=deg - 1)]
        neg = self.negatives(users)
        parts_u, parts_p, parts_n = [users], [pos], [neg]
        aug_block = -1
        n_aug = self.aug_slots(batch_size, aug_sample_rate)
        if n_aug:
            cand = users[torch.randperm(n, generator=self.gen, device=self.device)[:n_aug]]
            a_start = self.aug_indptr[cand]  # type: ignore[index]
            a_cnt = self.aug_indptr[cand + 1] - a_start  # type: ignore[index]
            has = a_cnt > 0
            cand, a_start, a_cnt = cand[has], a_start[has], a_cnt[has]
            rows = a_start + (self._rand(len(cand)) * a_cnt).long().clamp(max=a_cnt - 1) if len(cand) else a_start
            triples = self.aug_pairs[rows]
            aug_block = len(parts_u)
            parts_u.append(triples[:, 0]), parts_p.append(triples[:, 1]), parts_n.append(triples[:, 2])
        n_noise = int(batch_size * noise_rate)
        if n_noise:
            nu = users[torch.randint(0, n, (n_noise,), generator=self.gen, device=self.device)]
            parts_u.append(nu)
            parts_p.append(torch.randint(0, self.n_items, (n_noise,), generator=self.gen, device=self.device))
            parts_n.append(torch.randint(0, self.n_items, (n_noise,), generator=self.gen, device=self.device))
        return parts_u, parts_p, parts_n, n, aug_block

    def aug_slots(self, batch_size: int, aug_sample_rate: float) -> int:
        """Users drawn per batch for an LLM triple, ``int(batch_size * aug_sample_rate)`` (0 without LLM pairs): the
        most LLM rows a batch can hold (a drawn user without an LLM pair adds none)."""
        return int(batch_size * aug_sample_rate) if self.aug_indptr is not None else 0

    def sample(self, batch_size: int, aug_sample_rate: float = 0.0, noise_rate: float = 0.0) -> TripleBatch:
        """Observed triples for ``min(batch_size, #active users)`` distinct users, then LLM and noise triples."""
        parts_u, parts_p, parts_n, n, _ = self._draw(batch_size, aug_sample_rate, noise_rate)
        return TripleBatch(torch.cat(parts_u), torch.cat(parts_p), torch.cat(parts_n), n_observed=n)

    def sample_padded(self, batch_size: int, aug_sample_rate: float = 0.0, noise_rate: float = 0.0) -> PaddedBatch:
        """:meth:`sample` at a fixed size: the same draws from the generator (so the same triples, and the same random
        stream afterwards), with the LLM block padded to :meth:`aug_slots` rows; ``compact()`` gives back exactly
        what :meth:`sample` would have returned. Every batch of a run has ``min(batch_size, #active) + aug_slots +
        int(batch_size * noise_rate)`` rows."""
        parts_u, parts_p, parts_n, n, aug_block = self._draw(batch_size, aug_sample_rate, noise_rate)
        n_pad = self.aug_slots(batch_size, aug_sample_rate) - (len(parts_u[aug_block]) if aug_block >= 0 else 0)
        valid = [torch.ones(len(u), dtype=torch.bool, device=self.device) for u in parts_u]
        if n_pad:
            at = aug_block + 1 if aug_block >= 0 else 1  # right after the LLM rows (or the observed ones)
            pad = torch.zeros(n_pad, dtype=torch.long, device=self.device)
            for parts in (parts_u, parts_p, parts_n):
                parts.insert(at, pad)
            valid.insert(at, torch.zeros(n_pad, dtype=torch.bool, device=self.device))
        return PaddedBatch(torch.cat(parts_u), torch.cat(parts_p), torch.cat(parts_n), torch.cat(valid), n_observed=n)
