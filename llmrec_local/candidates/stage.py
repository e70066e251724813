"""Candidate lists for the pair job: top-K unseen items per user, from a trained base model or imported.

Scores come from a training run's ``embeddings.safetensors`` (tensors ``user`` (n_users, d) and ``item``
(n_items, d)): ``score(u, i) = user[u] · item[i]``. Each user's *training* items are masked before the top-K, so
candidates are items the user has not interacted with in training. **This deviates from the original**: LLMRec's
README recipe took the top-10 without masking, so candidates could repeat history items and the prompt asked the
LLM to avoid them (`docs/llmrec-original.md` O7). Validation and test items are not masked (masking them would
leak the held-out data into the augmentation).

Artifact (stage ``candidates``): ``candidates.parquet`` with user (Int64), rank (Int32, 0 = highest score), item
(Int64); manifest with k, source, masked_train and counts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..artifacts.base import ArtifactWriter, read_manifest, require_stage, reusable
from ..artifacts.run import embeddings_path, read_run_embeddings
from ..errors import ArtifactError, DataError
from ..hashing import file_sha256, stable_hash

log = logging.getLogger(__name__)

STAGE = "candidates"
FILE = "candidates.parquet"
SCHEMA = {"user": pl.Int64, "rank": pl.Int32, "item": pl.Int64}


def top_k_unseen(user: np.ndarray, item: np.ndarray, train: np.ndarray, k: int,
                 chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` items per user by ``user @ item.T`` with each user's training items excluded.

    Args:
        user: (n_users, d) float; item: (n_items, d) float; train: (n, 2) int [user, item] training pairs.
    Returns:
        items (n_users, k) int64 and valid (n_users, k) bool; ``valid`` is False where a user has fewer than k
        unseen items. Within a row, items are in descending score order; ties go to the lower item index.
    """
    n_users, n_items = len(user), len(item)
    k_eff = min(k, n_items)
    out = np.zeros((n_users, k_eff), dtype=np.int64)
    valid = np.zeros((n_users, k_eff), dtype=bool)
    order = np.argsort(train[:, 0], kind="stable")
    train = train[order]
    starts = np.searchsorted(train[:, 0], np.arange(n_users + 1))
    item_t = np.ascontiguousarray(item.T, dtype=np.float32)
    for lo in range(0, n_users, chunk):
        hi = min(lo + chunk, n_users)
        scores = user[lo:hi].astype(np.float32) @ item_t  # (chunk, n_items)
        rows = train[starts[lo]:starts[hi]]
        scores[rows[:, 0] - lo, rows[:, 1]] = -np.inf
        # argpartition finds the k-th best score in O(n_items); every item scoring at least that much is then
        # sorted by (-score, item), which keeps the tie rule exact without sorting whole rows.
        part = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
        part_scores = np.take_along_axis(scores, part, axis=1)
        thresh = part_scores.min(axis=1, keepdims=True)
        for r in range(hi - lo):
            cand = np.flatnonzero(scores[r] >= thresh[r]) if np.isfinite(thresh[r, 0]) else part[r]
            s = scores[r, cand]
            best = cand[np.lexsort((cand, -s))][:k_eff]
            ok = np.isfinite(scores[r, best])
            out[lo + r, : len(best)] = best
            valid[lo + r, : len(best)] = ok
    return out, valid


def _frame(items: np.ndarray, valid: np.ndarray) -> pl.DataFrame:
    users, ranks = np.nonzero(valid)
    return pl.DataFrame({"user": users.astype(np.int64), "rank": ranks.astype(np.int32),
                         "item": items[users, ranks]}, schema=SCHEMA)


def from_run(run_dir: str | Path, dataset: Any, k: int) -> tuple[pl.DataFrame, dict[str, Any]]:
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
    return _frame(items, valid), {"base_run": str(run_dir), "embeddings_sha256": file_sha256(path)}


def _check_range(frame: pl.DataFrame, dataset: Any, source: Path) -> pl.DataFrame:
    for col, n in (("user", dataset.n_users), ("item", dataset.n_items)):
        bad = frame.filter((pl.col(col) < 0) | (pl.col(col) >= n))
        if bad.height:
            raise DataError(f"{source}: {col} index {bad[col][0]} is outside [0, {n}) of the dataset; the "
                            "candidates were built for another dataset (or hold external ids: name the columns "
                            "user_id/item_id instead)")
    return frame


def _map_ids(frame: pl.DataFrame, vocab: pl.DataFrame, id_col: str, idx_col: str, source: Path) -> pl.DataFrame:
    joined = frame.with_columns(pl.col(id_col).cast(pl.String)).join(vocab, on=id_col, how="left")
    missing = joined.filter(pl.col(idx_col).is_null())
    if missing.height:
        raise DataError(f"{source}: {id_col} {missing[id_col][0]!r} is not in the dataset's vocabulary "
                        f"({missing.height} rows); the file belongs to another dataset")
    return joined.drop(id_col)


def read_table(path: Path) -> pl.DataFrame:
    """A parquet or CSV file as a frame (DataError for other suffixes)."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix in (".csv", ".tsv"):
        return pl.read_csv(path, separator="\t" if path.suffix == ".tsv" else ",", infer_schema_length=10000)
    raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .parquet or .csv")


def from_file(path: str | Path, dataset: Any, k: int) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Import precomputed candidates.

    Accepted: a ``candidates/`` artifact; a parquet/CSV table with columns (user, rank, item) as indices or
    (user_id, rank, item_id) as external ids; a ``.npy`` array (n_users, K) of item indices in rank order;
    LLMRec's ``candidate_indices`` saved with ``torch.save`` (read with ``torch.load(weights_only=True)``).
    Imported candidates are used as given (no training-item masking): the pair parser rejects history picks.
    """
    path = Path(path)
    if path.is_dir():
        require_stage(path, STAGE)
        return pl.read_parquet(path / FILE), {"candidates": str(path), "config_hash": read_manifest(path)["config_hash"]}
    if not path.exists():
        raise DataError(f"candidates file {path} does not exist")
    inputs = {"candidates_file": str(path), "sha256": file_sha256(path)}
    if path.suffix in (".parquet", ".csv", ".tsv"):
        frame = read_table(path)
        if {"user_id", "item_id"} <= set(frame.columns):
            frame = _map_ids(frame, dataset.users().select("user_id", "user"), "user_id", "user", path)
            frame = _map_ids(frame, dataset.items().select("item_id", "item"), "item_id", "item", path)
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
        import torch

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
    return _check_range(_frame(array, np.ones_like(array, dtype=bool)), dataset, path), inputs


def write_candidates(frame: pl.DataFrame, out: str | Path, *, k: int, source: str, masked_train: bool,
                     inputs: dict[str, Any], force: bool = False) -> Path:
    """Write (or reuse) a ``candidates/`` artifact from a (user, rank, item) frame."""
    out = Path(out)
    chash = stable_hash({"k": k, "source": source, "masked_train": masked_train, "inputs": inputs})
    if reusable(out, STAGE, chash, force=force):
        return out
    frame = frame.select(list(SCHEMA)).cast(SCHEMA).sort(["user", "rank"])
    with ArtifactWriter(out, stage=STAGE, config_hash=chash) as w:
        frame.write_parquet(w.dir / FILE)
        per_user = frame.group_by("user").len()["len"]
        w.manifest.update({
            "k": k, "source": source, "masked_train": masked_train, "inputs": inputs,
            "counts": {"rows": frame.height, "users": frame["user"].n_unique(),
                       "items": frame["item"].n_unique(), "min_per_user": int(per_user.min() or 0)},
        })
        (w.dir / "summary.md").write_text(
            f"# Candidates\n\n- source: {source}\n- k: {k}\n- training items masked: {masked_train}\n"
            f"- users: {frame['user'].n_unique()}, distinct items: {frame['item'].n_unique()}, rows: "
            f"{frame.height}\n")
    return out


def load_candidates(path: str | Path) -> tuple[pl.DataFrame, str]:
    """The (user, rank, item) frame of a candidates artifact and its config hash (its fingerprint)."""
    manifest = require_stage(path, STAGE)
    return pl.read_parquet(Path(path) / FILE), manifest["config_hash"]
