"""Reading user-supplied tables (candidate lists, augmentations made elsewhere) as typed frames.

Column types are inferred here, unlike the dataset loaders (``loaders/generic.py`` reads every column as text and
checks types itself): the callers map columns by name and cast them where they need a type.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..errors import DataError


def read_table(path: Path) -> pl.DataFrame:
    """A parquet, CSV or TSV file as a frame (DataError for other suffixes)."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix in (".csv", ".tsv"):
        return pl.read_csv(path, separator="\t" if path.suffix == ".tsv" else ",", infer_schema_length=10000)
    raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .parquet or .csv")
