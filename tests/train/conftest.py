"""Planted-group interaction data and a popularity baseline for the training tests."""

import numpy as np
import pytest
import torch

from llmrec_local.data.arrays import InteractionArrays
from llmrec_local.evaluate.ranking import PairIndex, rank_and_score


def planted(seed: int = 0, n_users: int = 120, n_items: int = 150, n_groups: int = 5, per_user: int = 16):
    """Users and items in planted groups; 90% of a user's positives come from its group (popularity is uniform
    inside groups, so only personalisation helps). Per-user 70/10/20 split."""
    rng = np.random.default_rng(seed)
    ug = rng.integers(0, n_groups, n_users)
    ig = np.arange(n_items) % n_groups
    pop = rng.pareto(2.0, n_items) + 1.0  # mild global popularity so the baseline is not trivial
    tr, va, te = [], [], []
    for u in range(n_users):
        own = np.flatnonzero(ig == ug[u])
        other = np.flatnonzero(ig != ug[u])
        k_own = int(per_user * 0.9)
        items = np.concatenate([
            rng.choice(own, k_own, replace=False, p=pop[own] / pop[own].sum()),
            rng.choice(other, per_user - k_own, replace=False, p=pop[other] / pop[other].sum()),
        ])
        rng.shuffle(items)
        n_tr, n_va = int(0.7 * per_user), int(0.1 * per_user)
        for dst, part in ((tr, items[:n_tr]), (va, items[n_tr:n_tr + n_va]), (te, items[n_tr + n_va:])):
            dst.extend((u, i) for i in part)
    return InteractionArrays.from_pairs(n_users, n_items, np.array(tr), np.array(va), np.array(te))


def popularity_recall(arrays: InteractionArrays, k: int = 20) -> float:
    counts = np.bincount(arrays.train[:, 1], minlength=arrays.n_items).astype(np.float64)
    _, m = rank_and_score(
        torch.ones(arrays.n_users, 1, dtype=torch.float64), torch.tensor(counts)[:, None],
        PairIndex.build(arrays.test, arrays.n_users, arrays.n_items),
        [PairIndex.build(arrays.train, arrays.n_users, arrays.n_items),
         PairIndex.build(arrays.val, arrays.n_users, arrays.n_items)],
    )
    return float(m[f"recall@{k}"].mean())


@pytest.fixture(scope="session")
def planted_arrays() -> InteractionArrays:
    return planted()


@pytest.fixture(scope="session")
def make_planted():
    return planted


@pytest.fixture(scope="session")
def pop_recall():
    return popularity_recall
