"""The augmentation-records kind: the writers of a job folder and the readers used by train, embed and the runner."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from llmrec_local.artifacts.augmentation import (
    STAGE,
    failure_schema,
    read_job_tables,
    read_pairs,
    read_records,
    read_usage,
    records_path,
    response_schema,
    write_failures,
    write_records,
    write_usage,
)
from llmrec_local.artifacts.base import ArtifactWriter
from llmrec_local.errors import ArtifactError, DataError

PAIRS = pl.DataFrame({"user": [0, 1, 2], "pos_item": [3, None, 5], "neg_item": [4, 4, 6]},
                     schema={"user": pl.Int64, "pos_item": pl.Int64, "neg_item": pl.Int64})


def _job(path: Path, records: pl.DataFrame = PAIRS, usage_indent: int | None = 2) -> Path:
    with ArtifactWriter(path, stage=STAGE, config_hash="h") as w:
        write_failures(w.dir, pl.DataFrame(schema=failure_schema()))
        write_records(w.dir, w.manifest, records, pl.DataFrame(schema=response_schema()))
        write_usage(w.dir, {"requests_sent": 0}, indent=usage_indent)
    return path


def test_round_trip(tmp_path: Path) -> None:
    job = _job(tmp_path / "pairs")
    assert read_pairs(job).tolist() == [[0, 3, 4], [2, 5, 6]]  # the row with a null is dropped
    assert read_pairs(records_path(job)).tolist() == [[0, 3, 4], [2, 5, 6]]  # the file itself also works
    assert read_usage(job) == {"requests_sent": 0} and read_usage(tmp_path) == {}
    tables = read_job_tables(job)
    assert tables["records"].equals(PAIRS) and tables["failures"].schema == pl.Schema(failure_schema())
    assert read_records(job, key="user", n=3).height == 3


def test_usage_layout_is_kept_byte_for_byte(tmp_path: Path) -> None:
    compact = _job(tmp_path / "imported", usage_indent=None)
    assert (compact / "usage.json").read_text() == '{"requests_sent": 0}\n'


def test_missing_and_foreign_records_are_named(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"LLM pairs: .*records.parquet does not exist"):
        read_pairs(tmp_path)
    with pytest.raises(DataError, match=r"records.parquet does not exist"):
        read_records(tmp_path)
    with pytest.raises(DataError, match=r"missing column\(s\) \['pos_item'\]"):
        read_pairs(_job(tmp_path / "bad", PAIRS.drop("pos_item")))
    job = _job(tmp_path / "pairs")
    with pytest.raises(DataError, match=r"user 2 is outside this dataset's \[0, 2\)"):
        read_records(job, key="user", n=2)
    with pytest.raises(DataError, match="column 'item' is missing"):
        read_records(job, key="item", n=9)
