"""Candidate lists for the pair job: top-K unseen items per user, from a trained base model or imported.

Scores come from a training run's ``embeddings.safetensors`` (tensors ``user`` (n_users, d) and ``item``
(n_items, d)): ``score(u, i) = user[u] · item[i]``. Each user's *training* items are masked before the top-K, so
candidates are items the user has not interacted with in training. **This deviates from the original**: LLMRec's
README recipe took the top-10 without masking, so candidates could repeat history items and the prompt asked the
LLM to avoid them (`docs/llmrec-original.md` O7). Validation and test items are not masked (masking them would
leak the held-out data into the augmentation).

The ranking is `llmrec_local.evaluate.ranking.masked_top_k` (equal scores: the lower item index first). The stage
trains nothing: the pipeline runner trains the base run first (``llmrec_local.run.stage``). The artifact (files,
schema, writer, reader) is owned by `llmrec_local.artifacts.candidates`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from ..artifacts.base import is_complete
from ..artifacts.candidates import candidates_frame, load_candidates, write_candidates
from ..artifacts.dataset import Dataset
from ..artifacts.run import embeddings_path, read_run_embeddings
from ..data.tables import read_table
from ..errors import ArtifactError, ConfigError, DataError
from ..evaluate.ranking import masked_top_k
from ..hashing import file_sha256
from .config import CandidatesConfig

log = logging.getLogger(__name__)


def top_k_unseen(user: np.ndarray, item: np.ndarray, train: np.ndarray, k: int,
                 chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` items per user by ``user @ item.T`` with each user's training items excluded.

    Args:
        user: (n_users, d) float; item: (n_items, d) float; train: (n, 2) int [user, item] training pairs.
        chunk: users scored per block (bounds the (chunk, n_items) score matrix); the result does not depend on it.
    Returns:
        items (n_users, k) int64 and valid (n_users, k) bool; ``valid`` is False where a user has fewer than k
        unseen items. Within a row, items are in descending score order; ties go to the lower item index.
    """
    n_users = len(user)
    k_eff = min(k, len(item))
    out = np.zeros((n_users, k_eff), dtype=np.int64)
    valid = np.zeros((n_users, k_eff), dtype=bool)
    train = train[np.argsort(train[:, 0], kind="stable")]
    starts = np.searchsorted(train[:, 0], np.arange(n_users + 1))
    item_t = np.ascontiguousarray(item.T, dtype=np.float32)
    for lo in range(0, n_users, chunk):
        hi = min(lo + chunk, n_users)
        # Scores in numpy float32, as the artifact has always been computed (a different BLAS could move near-ties).
        scores = user[lo:hi].astype(np.float32) @ item_t  # (chunk, n_items)
        rows = train[starts[lo]:starts[hi]]
        seen = (torch.from_numpy(rows[:, 0] - lo), torch.from_numpy(np.ascontiguousarray(rows[:, 1])))
        values, items = masked_top_k(torch.from_numpy(scores), k_eff, [seen])
        out[lo:hi] = items.numpy()
        valid[lo:hi] = torch.isfinite(values).numpy()
    return out, valid


def from_run(run_dir: str | Path, dataset: Dataset, k: int) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Candidates from a training run's ``embeddings.safetensors`` (train items masked). Returns the frame and an
    inputs record for the manifest."""
    run_dir = Path(run_dir)
    path = embeddings_path(run_dir)
    user, item = read_run_embeddings(run_dir)
    if user.shape[0] != dataset.n_users or item.shape[0] != dataset.n_items:
        raise ArtifactError(
            f"{path}: user {user.shape} / item {item.shape} embeddings do not match the dataset's "
            f"{dataset.n_users} users / {dataset.n_items} items; the run was trained on another dataset artifact")
    items, valid = top_k_unseen(user, item, dataset.arrays().train, k)
    return candidates_frame(items, valid), {"base_run": str(run_dir), "embeddings_sha256": file_sha256(path)}


def _check_range(frame: pl.DataFrame, dataset: Dataset, source: Path) -> pl.DataFrame:
    for col in ("user", "item"):
        dataset.vocabulary(col).check_indices(frame[col].to_numpy(), where=str(source))
    return frame


def _map_ids(frame: pl.DataFrame, dataset: Dataset, entity: str, source: Path) -> pl.DataFrame:
    """`frame` with its ``<entity>_id`` column (external ids) replaced by ``<entity>`` indices, through the
    dataset's vocabulary (an unknown id is a DataError)."""
    ids = frame[f"{entity}_id"].cast(pl.String).to_list()
    index = dataset.vocabulary(entity).index(ids, where=str(source))
    return frame.with_columns(pl.Series(entity, index, dtype=pl.Int64)).drop(f"{entity}_id")


def from_file(path: str | Path, dataset: Dataset, k: int) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Import precomputed candidates.

    Accepted: a ``candidates/`` artifact; a parquet/CSV table with columns (user, rank, item) as indices or
    (user_id, rank, item_id) as external ids; a ``.npy`` array (n_users, K) of item indices in rank order;
    LLMRec's ``candidate_indices`` saved with ``torch.save`` (read with ``torch.load(weights_only=True)``).
    Imported candidates are used as given (no training-item masking): the pair parser rejects history picks.
    """
    path = Path(path)
    if path.is_dir():
        frame, fingerprint = load_candidates(path)
        return frame, {"candidates": str(path), "config_hash": fingerprint}
    if not path.exists():
        raise DataError(f"candidates file {path} does not exist")
    inputs = {"candidates_file": str(path), "sha256": file_sha256(path)}
    if path.suffix in (".parquet", ".csv", ".tsv"):
        frame = read_table(path)
        if {"user_id", "item_id"} <= set(frame.columns):
            frame = _map_ids(_map_ids(frame, dataset, "user", path), dataset, "item", path)
        if not {"user", "rank", "item"} <= set(frame.columns):
            raise DataError(f"{path}: columns {frame.columns}; expected user, rank, item (indices) or user_id, "
                            "rank, item_id (external ids)")
        frame = frame.select(pl.col("user").cast(pl.Int64), pl.col("rank").cast(pl.Int32),
                             pl.col("item").cast(pl.Int64))
        # ranks may start at 1 or have gaps; re-rank densely from 0 per user
        frame = frame.sort(["user", "rank"]).with_columns(
            (pl.col("rank").cum_count().over("user") - 1).cast(pl.Int32).alias("rank"))
        return _check_range(frame.filter(pl.col("rank") < k), dataset, path), inputs
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        try:
            array = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for foreign files
            raise DataError(
                f"{path}: not a tensor saved with torch.save ({type(exc).__name__}: {exc}). LLMRec's "
                "candidate_indices written with pickle.dump cannot be read safely (a pickled tensor can run code); "
                "convert it where you trust it: numpy.save('candidates.npy', pickle.load(f).numpy())") from exc
        array = array.numpy() if hasattr(array, "numpy") else np.asarray(array)
    if array.ndim != 2 or array.shape[0] != dataset.n_users:
        raise DataError(f"{path}: candidate array of shape {array.shape}, expected ({dataset.n_users}, K)")
    array = array[:, :k].astype(np.int64)
    return _check_range(candidates_frame(array, np.ones_like(array, dtype=bool)), dataset, path), inputs


def candidates(config: CandidatesConfig, dataset: Dataset | str | Path, out: str | Path, *,
               base_run: str | Path | None = None, imported: str | Path | None = None,
               force: bool = False) -> Path:
    """The stage's entry point: the candidates artifact for `dataset`, from exactly one source.

    `base_run`: a finished training run whose embeddings rank all items (each user's training items masked) ->
    written to `out`. `imported`: a complete candidates artifact (returned as is) or a file (see `from_file`) ->
    written to `out`. Returns the artifact's path; a complete artifact of the same inputs is reused.
    """
    if (base_run is None) == (imported is None):
        raise ConfigError("the candidates stage needs exactly one source: a base run (--base-run runs/<id>) or "
                          "precomputed candidates (--candidates FILE|DIR)")
    ds = dataset if isinstance(dataset, Dataset) else Dataset.load(dataset)
    if imported is not None:
        if Path(imported).is_dir() and is_complete(imported):
            load_candidates(imported)  # checks it is a candidates artifact
            return Path(imported)
        frame, inputs = from_file(imported, ds, config.k)
        return write_candidates(frame, out, k=config.k, source="import", masked_train=False, inputs=inputs,
                                force=force)
    frame, inputs = from_run(base_run, ds, config.k)
    return write_candidates(frame, out, k=config.k, source="base_run", masked_train=True, inputs=inputs, force=force)
