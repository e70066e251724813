"""Tiny random bipartite data for the model tests: a (user, item) training set and one fixed triple batch."""

from __future__ import annotations

import numpy as np
import torch

from llmrec_local.models import Recommender, TripleBatch, build_model

#: users and items of the tiny graph
U, I = 30, 40

#: Compiled or static step against eager: losses and gradients agree to these.
TOL = {"rtol": 1e-5, "atol": 1e-6}
#: Parameters after a few AdamW steps: AdamW divides each gradient entry by its running RMS, so a rounding difference
#: in a small entry moves that parameter by up to ``lr`` times the relative difference (observed: 4.5e-6 after 3 steps
#: from gradients that agree to 2e-7; 6.2e-6 after 2 steps for an entry whose gradient was 1.2e-8).
PARAM_TOL = {"rtol": 1e-4, "atol": 1e-5}


def random_train(seed: int = 0, p: float = 0.3) -> np.ndarray:
    """(n, 2) int training pairs: each of the U x I pairs kept with probability `p` (seeded)."""
    rng = np.random.default_rng(seed)
    return np.array([[u, i] for u in range(U) for i in range(I) if rng.random() < p])


def random_side(seed: int = 0) -> dict[str, object]:
    """Random LLMRec side inputs for the U x I graph: image (I, 6), text (I, 12), profiles (U, 10), two attribute
    fields (I, 8) each."""
    rng = np.random.default_rng(seed)
    return {"item_image": rng.standard_normal((I, 6), dtype=np.float32),
            "item_text": rng.standard_normal((I, 12), dtype=np.float32),
            "user_profiles": rng.standard_normal((U, 10), dtype=np.float32),
            "item_attributes": {f: rng.standard_normal((I, 8), dtype=np.float32) for f in ("a", "b")}}


def fixed_batch(device: str = "cpu") -> TripleBatch:
    """16 distinct users with random positive and negative items, the same on every call (generator seed 1)."""
    g = torch.Generator().manual_seed(1)
    users = torch.randperm(U, generator=g)[:16]
    pos, neg = torch.randint(0, I, (16,), generator=g), torch.randint(0, I, (16,), generator=g)
    return TripleBatch(users.to(device), pos.to(device), neg.to(device), 16)


def seeded_model(name: str, train: np.ndarray, **kwargs: object) -> Recommender:
    """`build_model(name)` on the tiny graph with torch's global seed 0 (the weight init draws from it)."""
    torch.manual_seed(0)
    return build_model(name, n_users=U, n_items=I, train=train, **kwargs)
