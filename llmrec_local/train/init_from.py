"""Text vectors as the initial embeddings of the ID models (``model.init_from``).

For a text table X (n, D) (rows L2-normalised by the embedder; zero rows = no text) and the model's table size d::

    P ~ N(0, 1/D)^(D x d)         a fixed projection drawn from derive_seed(seed, "init_from", table)
    Z = X P                        (n, d): a Johnson-Lindenstrauss sketch, so text similarity survives the reduction
    E[present] = Z[present] * 0.1 / std(Z[present])

so the rows with a text have the spread of the default N(0, 0.1^2) init (the models' regularisers and learning rate
are tuned for it) and the rows without keep their random init. Deterministic for a given seed and texts.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..errors import ConfigError
from ..models import Recommender
from ..seeding import derive_seed
from .side import SideArrays

log = logging.getLogger(__name__)

#: the std of the ID models' default init (MF, LightGCN and its descendants draw N(0, 0.1^2))
INIT_STD = 0.1


def projected(vectors: np.ndarray, dim: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """(rows reduced to `dim` and scaled to std :data:`INIT_STD` over the present rows, present mask)."""
    present = np.abs(vectors).sum(axis=1) > 0
    rng = np.random.default_rng(seed)
    projection = rng.standard_normal((vectors.shape[1], dim)) / np.sqrt(vectors.shape[1])
    z = vectors.astype(np.float64) @ projection
    spread = z[present].std() if present.any() else 0.0
    if spread > 0:
        z *= INIT_STD / spread
    return torch.from_numpy(z.astype(np.float32)), present


def apply_init_from(model: Recommender, tables: tuple[str, ...], side: SideArrays, seed: int) -> dict[str, int]:
    """Overwrite the present rows of `model`'s ``item`` / ``user`` tables from the text vectors of `side` named by
    `tables`; returns how many rows each table took. ConfigError when the run brings no such text."""
    sources = {"item_text": ("item", side.item_text), "user_text": ("user", side.user_profiles)}
    counts: dict[str, int] = {}
    for table in tables:
        attribute, vectors = sources[table]
        if vectors is None:
            raise ConfigError(f"model.init_from names {table!r} but the run brings no {table} vectors; add it to the "
                              f"run's side inputs (side = [\"{table}\"]) or drop it from init_from")
        parameter = getattr(model, attribute)
        rows, present = projected(vectors, parameter.shape[1], derive_seed(seed, "init_from", table))
        with torch.no_grad():
            mask = torch.from_numpy(present).to(parameter.device)
            parameter[mask] = rows.to(parameter.device)[mask]
        counts[table] = int(present.sum())
        log.info("init_from %s: %d of %d %s rows start from their text (projected %d -> %d, std %.2g)", table,
                 counts[table], len(present), attribute, vectors.shape[1], parameter.shape[1], INIT_STD)
    return counts
