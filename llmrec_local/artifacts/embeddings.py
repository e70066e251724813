"""Embedding artifacts on disk: row ids + vectors, with alignment checks against the dataset's vocabularies.

Layout of an embedding artifact folder (stage ``embed``):
    ids.parquet   one column, ``item`` or ``user`` (int64 contiguous index of each row), in row order
    vectors.npy   float32 array (n_rows, dim)
    mask.npy      optional bool (n_rows,): False where the input was missing (e.g. no poster); such rows are zero
    manifest.json  includes ``source`` (item_text, item_image, item_attributes:<field>, user_profiles), ``entity``
                   (item|user), ``dim``, ``model`` identity
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ArtifactError
from .base import require_stage


@dataclass(frozen=True)
class EmbeddingTable:
    """Vectors aligned to a vocabulary: ``vectors[i]`` belongs to index ``i``; shape (n_entities, dim)."""

    entity: str
    source: str
    vectors: np.ndarray
    mask: np.ndarray  # bool (n_entities,), False where no input existed (vector is zero)


def load_embedding(path: str | Path, n_entities: int, entity: str | None = None) -> EmbeddingTable:
    """Load an embedding artifact and scatter it into an (n_entities, dim) array ordered by contiguous index.

    Raises ArtifactError when the artifact is of the wrong entity, has ids outside [0, n_entities), duplicate ids,
    or a row count that disagrees with its ids (a sign it was built for another dataset).
    """
    import polars as pl

    path = Path(path)
    manifest = require_stage(path, "embed")
    ent = manifest.get("entity")
    if entity is not None and ent != entity:
        raise ArtifactError(f"{path} holds {ent} embeddings, expected {entity} embeddings; check the path")
    ids = pl.read_parquet(path / "ids.parquet")[ent].to_numpy().astype(np.int64)
    vectors = np.load(path / "vectors.npy", mmap_mode="r")
    if len(ids) != len(vectors):
        raise ArtifactError(f"{path}: {len(ids)} ids but {len(vectors)} vectors; the artifact is corrupt, rebuild it")
    if len(ids) and (ids.min() < 0 or ids.max() >= n_entities):
        bad = ids[(ids < 0) | (ids >= n_entities)][0]
        raise ArtifactError(
            f"{path}: {ent} index {bad} is outside this dataset's [0, {n_entities}); the embeddings were built for "
            "another dataset artifact: rerun `python -m llmrec_local.embed` on this one"
        )
    if len(np.unique(ids)) != len(ids):
        raise ArtifactError(f"{path}: duplicate {ent} ids; the artifact is corrupt, rebuild it")
    out = np.zeros((n_entities, vectors.shape[1]), dtype=np.float32)
    out[ids] = vectors
    mask = np.zeros(n_entities, dtype=bool)
    row_mask = np.load(path / "mask.npy") if (path / "mask.npy").exists() else np.ones(len(ids), dtype=bool)
    mask[ids] = row_mask
    return EmbeddingTable(entity=ent, source=manifest.get("source", path.name), vectors=out, mask=mask)
