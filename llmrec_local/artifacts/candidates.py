"""The candidates artifact (stage ``candidates``): per user, the K items shown to the pair job, best first.

Folder layout: ``candidates.parquet`` with columns user (Int64 index), rank (Int32, 0 = best), item (Int64 index),
sorted by (user, rank); ``summary.md``; ``manifest.json`` with k, source (``base_run`` | ``import``), masked_train
(whether each user's training items were excluded), inputs and counts. The manifest's config hash is the
artifact's fingerprint: the pair job keys its records on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..hashing import stable_hash
from .base import ArtifactWriter, require_stage, reusable

STAGE = "candidates"
FILE = "candidates.parquet"
SCHEMA = {"user": pl.Int64, "rank": pl.Int32, "item": pl.Int64}


def candidates_frame(items: np.ndarray, valid: np.ndarray) -> pl.DataFrame:
    """The (user, rank, item) frame of an (n_users, K) item-index array; entries where `valid` (same shape, bool)
    is False are left out (users with fewer than K candidates)."""
    users, ranks = np.nonzero(valid)
    return pl.DataFrame({"user": users.astype(np.int64), "rank": ranks.astype(np.int32),
                         "item": items[users, ranks]}, schema=SCHEMA)


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


def candidates_k(path: str | Path) -> int:
    """K of a candidates artifact: the most candidates any user has (from its manifest)."""
    return int(require_stage(path, STAGE)["k"])
