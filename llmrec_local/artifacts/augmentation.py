"""Augmentation records (stage ``augment``): what an LLM job (or an import, or a merge of shards) produced.

Layout of a job folder ``<out>/augment/<artifact>/`` (artifact = pairs, item_attributes, user_profiles):
    records.parquet    one valid record per entity, sorted by it: ``user`` (pairs, user_profiles) or ``item``
                       (item_attributes), the job's answer columns (pairs: pos_item, neg_item, pos_position,
                       neg_position; attributes: one String column per field; profiles: age, gender, ...,
                       profile_text), ``attempt`` (Int32) and ``cache_key`` (String, null for imports)
    failures.parquet   every failed attempt and skipped entity (`FAILURE_SCHEMA`), sorted by (entity, attempt)
    responses.parquet  the raw answers the records were parsed from (`RESPONSE_SCHEMA`), sorted by cache_key;
                       absent for imports
    usage.json         request counts, tokens and throughput of the job (per shard after a merge)
    summary.md         human-readable counts and failure reasons
    manifest.json      job, artifact, entity, model, template versions, sampling, counts, tokens
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ArtifactError, DataError
from .base import check_kind, read_manifest, require_stage, stamp_kind

if TYPE_CHECKING:
    import polars as pl

STAGE = "augment"
KIND = "augmentation"
SCHEMA_VERSION = 1
RECORDS_FILE = "records.parquet"
FAILURES_FILE = "failures.parquet"
RESPONSES_FILE = "responses.parquet"
USAGE_FILE = "usage.json"
PAIR_COLUMNS = ("user", "pos_item", "neg_item")


def failure_schema() -> dict[str, pl.DataType]:
    """Columns of failures.parquet: key, entity, attempt (-1 = skipped before asking), reason, detail, raw answer,
    cache_key."""
    import polars as pl

    return {"key": pl.String, "entity": pl.Int64, "attempt": pl.Int32, "reason": pl.String, "detail": pl.String,
            "raw": pl.String, "cache_key": pl.String}


def response_schema() -> dict[str, pl.DataType]:
    """Columns of responses.parquet: the raw answer of each request a record or failure came from."""
    import polars as pl

    return {"cache_key": pl.String, "key": pl.String, "attempt": pl.Int32, "text": pl.String,
            "finish_reason": pl.String, "prompt_tokens": pl.Int64, "completion_tokens": pl.Int64}


def failures_path(folder: str | Path) -> Path:
    """failures.parquet of a job folder (also of its staging folder, which keeps it when a job fails)."""
    return Path(folder) / FAILURES_FILE


def records_path(folder: str | Path) -> Path:
    """records.parquet of a job folder (for messages and the manifests of the stages that read it)."""
    return Path(folder) / RECORDS_FILE


def write_failures(folder: str | Path, failures: pl.DataFrame) -> None:
    """Write failures.parquet into `folder` (an ArtifactWriter's staging folder); written before the failure-rate
    check, so a job that stops on too many failures leaves them for inspection."""
    failures.write_parquet(failures_path(folder))


def write_records(folder: str | Path, manifest: dict[str, Any], records: pl.DataFrame,
                  responses: pl.DataFrame | None = None) -> None:
    """Write records.parquet (and responses.parquet when the records came from LLM answers) into `folder`."""
    records.write_parquet(records_path(folder))
    if responses is not None:
        responses.write_parquet(Path(folder) / RESPONSES_FILE)
    stamp_kind(manifest, KIND, SCHEMA_VERSION)


def write_usage(folder: str | Path, usage: dict[str, Any], *, indent: int | None = 2) -> None:
    """Write usage.json into `folder`. Imports pass ``indent=None``: their one-line file is kept byte for byte."""
    (Path(folder) / USAGE_FILE).write_text(json.dumps(usage, indent=indent) + "\n")


def read_usage(folder: str | Path) -> dict[str, Any]:
    """usage.json of a job folder ({} when the job wrote none)."""
    path = Path(folder) / USAGE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def read_job_tables(folder: str | Path) -> dict[str, pl.DataFrame]:
    """``{"records", "failures", "responses"}`` frames of a complete LLM job folder (a shard, for merging)."""
    import polars as pl

    folder = Path(folder)
    check_kind(folder, read_manifest(folder), KIND, SCHEMA_VERSION)
    return {"records": pl.read_parquet(records_path(folder)), "failures": pl.read_parquet(failures_path(folder)),
            "responses": pl.read_parquet(folder / RESPONSES_FILE)}


def read_failures(folder: str | Path) -> pl.DataFrame:
    """failures.parquet of a complete job folder (`failure_schema`, sorted by (entity, attempt)); an empty frame
    when the job wrote none. ArtifactError when `folder` is not a complete augmentation artifact (the manifest
    check also checks the size of every file its stage wrote)."""
    import polars as pl

    folder = Path(folder)
    check_kind(folder, require_stage(folder, STAGE), KIND, SCHEMA_VERSION)
    file = failures_path(folder)
    return pl.read_parquet(file) if file.is_file() else pl.DataFrame(schema=failure_schema())


def read_records(folder: str | Path, *, key: str | None = None, n: int | None = None) -> pl.DataFrame:
    """records.parquet of a job folder.

    With `key` ("user" or "item") and `n`, also checks that column `key` holds distinct indices in [0, n): records
    built for another dataset artifact, or corrupt ones, fail here with a DataError naming the bad value.
    """
    import polars as pl

    file = records_path(folder)
    if not file.is_file():
        raise DataError(f"{file} does not exist: no augmentation job was run (or imported) into {folder}; run "
                        "`python -m llmrec_local.augment`")
    frame = pl.read_parquet(file)
    if key is None:
        return frame
    if key not in frame.columns:
        raise DataError(f"{file}: column {key!r} is missing (columns: {frame.columns})")
    ids = frame[key]
    if ids.null_count() or ((ids < 0) | (ids >= n)).any():
        bad = ids.filter(ids.is_null() | (ids < 0) | (ids >= n))
        raise DataError(f"{file}: {key} {bad[0]!r} is outside this dataset's [0, {n}); the augmentation was built "
                        f"for another dataset artifact: rerun it on this one")
    if ids.is_duplicated().any():
        raise DataError(f"{file}: {key} {ids.filter(ids.is_duplicated())[0]} appears more than once; the records "
                        f"are corrupt, rerun the augmentation job")
    return frame


def read_pairs(source: str | Path) -> np.ndarray:
    """LLM pairs (m, 3) int64 rows (user, pos_item, neg_item) from a pairs job folder or a records parquet file
    itself; rows with a null in any of the three are dropped."""
    import polars as pl

    path = Path(source)
    file = records_path(path) if path.is_dir() else path
    if not file.is_file():
        raise ArtifactError(f"LLM pairs: {file} does not exist; pass the augment job's pairs folder "
                            f"(it holds {RECORDS_FILE} with user, pos_item, neg_item)")
    frame = pl.read_parquet(file, columns=None)
    missing = set(PAIR_COLUMNS) - set(frame.columns)
    if missing:
        raise DataError(f"{file}: missing column(s) {sorted(missing)}; expected user, pos_item, neg_item")
    frame = frame.drop_nulls(list(PAIR_COLUMNS))
    return frame.select(*PAIR_COLUMNS).to_numpy().astype(np.int64)
