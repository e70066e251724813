"""The candidates artifact: schema, writer (reuse by config hash), reader and K."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.candidates import (
    FILE,
    SCHEMA,
    candidates_frame,
    candidates_k,
    load_candidates,
    write_candidates,
)
from llmrec_local.errors import ArtifactError


def _frame() -> pl.DataFrame:
    items = np.array([[4, 2, 7], [1, 0, 3]])
    valid = np.array([[True, True, True], [True, True, False]])
    return candidates_frame(items, valid)


def test_frame_drops_invalid_entries_and_has_the_schema() -> None:
    frame = _frame()
    assert dict(frame.schema) == SCHEMA
    assert frame.rows() == [(0, 0, 4), (0, 1, 2), (0, 2, 7), (1, 0, 1), (1, 1, 0)]


def test_write_load_and_reuse(tmp_path: Path) -> None:
    out = tmp_path / "candidates"
    inputs = {"base_run": "runs/x", "embeddings_sha256": "0" * 64}
    path = write_candidates(_frame().reverse(), out, k=3, source="base_run", masked_train=True, inputs=inputs)
    frame, fingerprint = load_candidates(path)
    assert frame.equals(_frame()), "rows are stored sorted by (user, rank)"
    assert (path / FILE).is_file() and candidates_k(path) == 3 and len(fingerprint) == 16
    manifest = read_manifest(path)
    assert manifest["counts"] == {"rows": 5, "users": 2, "items": 5, "min_per_user": 2}
    assert manifest["config_hash"] == fingerprint
    mtime = (path / FILE).stat().st_mtime_ns
    write_candidates(_frame(), out, k=3, source="base_run", masked_train=True, inputs=inputs)
    assert (path / FILE).stat().st_mtime_ns == mtime, "the same inputs reuse the complete artifact"


def test_reader_rejects_other_artifacts(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        load_candidates(tmp_path / "missing")
