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
from typing import Any

import numpy as np

from ..errors import ArtifactError
from .base import check_kind, require_stage, stamp_kind

STAGE = "embed"
KIND = "embeddings"
SCHEMA_VERSION = 1
IDS_FILE = "ids.parquet"
VECTORS_FILE = "vectors.npy"
MASK_FILE = "mask.npy"


@dataclass(frozen=True)
class EmbeddingTable:
    """Vectors aligned to a vocabulary: ``vectors[i]`` belongs to index ``i``; shape (n_entities, dim)."""

    entity: str
    source: str
    vectors: np.ndarray
    mask: np.ndarray  # bool (n_entities,), False where no input existed (vector is zero)


def write_embedding(folder: str | Path, manifest: dict[str, Any], entity: str, ids: np.ndarray,
                    vectors: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Write an embedding's files into `folder` (an ArtifactWriter's staging folder).

    Args:
        manifest: the ArtifactWriter's manifest (stamped with this kind's layout version; the caller adds source,
            entity, dim, model).
        entity: "item" or "user", the name of the ids column.
        ids: (n,) contiguous indices of the rows; vectors: (n, dim), stored as float32.
        mask: optional (n,) bool, False where the row had no input; without it every row counts as present.
    """
    import polars as pl

    folder = Path(folder)
    pl.DataFrame({entity: np.asarray(ids, dtype=np.int64)}, schema={entity: pl.Int64}).write_parquet(folder / IDS_FILE)
    np.save(folder / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32))
    if mask is not None:
        np.save(folder / MASK_FILE, np.asarray(mask, dtype=bool))
    stamp_kind(manifest, KIND, SCHEMA_VERSION)


def load_embedding(path: str | Path, n_entities: int, entity: str | None = None) -> EmbeddingTable:
    """Load an embedding artifact and scatter it into an (n_entities, dim) array ordered by contiguous index.

    Raises ArtifactError when the artifact is of the wrong entity, has ids outside [0, n_entities), duplicate ids,
    or a row count that disagrees with its ids (a sign it was built for another dataset).
    """
    import polars as pl

    path = Path(path)
    manifest = require_stage(path, STAGE)
    check_kind(path, manifest, KIND, SCHEMA_VERSION)
    ent = manifest.get("entity")
    if entity is not None and ent != entity:
        raise ArtifactError(f"{path} holds {ent} embeddings, expected {entity} embeddings; check the path")
    ids = pl.read_parquet(path / IDS_FILE)[ent].to_numpy().astype(np.int64)
    vectors = np.load(path / VECTORS_FILE, mmap_mode="r")
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
    row_mask = np.load(path / MASK_FILE) if (path / MASK_FILE).exists() else np.ones(len(ids), dtype=bool)
    mask[ids] = row_mask
    return EmbeddingTable(entity=ent, source=manifest.get("source", path.name), vectors=out, mask=mask)
