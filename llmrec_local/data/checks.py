"""Checks of a table's columns that name the bad value: used by the source loaders on raw input and by the dataset
artifact (`llmrec_local.artifacts.dataset`, which owns the canonical column names and dtypes) on its own tables.

Every check here raises :class:`DataError` with the file, the column, an example of the offending value and a fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from ..errors import DataError


def example_value(values: pl.Series) -> str:
    """The first value of `values` as it would be written in code (``"<none>"`` when empty), for error messages."""
    return repr(values[0]) if len(values) else "<none>"


def require_columns(df: pl.DataFrame, columns: Iterable[str], *, file: str | Path, fix: str) -> None:
    """DataError naming the first missing column, the columns that are present, and `fix`."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{file}: column {missing[0]!r} is missing (columns present: {df.columns}); {fix}"
        )


def cast_column(
    df: pl.DataFrame, column: str, dtype: pl.DataType, *, file: str | Path, fix: str
) -> pl.DataFrame:
    """`df` with `column` cast to `dtype`; a value that does not convert raises DataError quoting it.

    Strings are stripped first so that ``" 5"`` reads as 5. Nulls stay null (the caller decides if they are allowed).
    """
    col = pl.col(column)
    source = df[column].dtype
    if source == dtype:
        return df
    expr = col.str.strip_chars() if source == pl.String else col
    if source == pl.String and dtype in (pl.Int64, pl.Int32):
        # "5.0" is a valid integer id or timestamp in CSVs written by pandas; "5.5" is not.
        as_float = expr.cast(pl.Float64, strict=False)
        expr = pl.when(as_float == as_float.round(0)).then(as_float).otherwise(None)
    converted = df.select(expr.cast(dtype, strict=False).alias("_converted"))["_converted"]
    bad = df[column].filter(converted.is_null() & df[column].is_not_null())
    if len(bad):
        raise DataError(
            f"{file}: column {column!r} must hold {dtype} values, but {example_value(bad)} is not one "
            f"({len(bad)} bad value(s)); {fix}"
        )
    return df.with_columns(converted.alias(column))


def check_unique(df: pl.DataFrame, column: str | list[str], *, file: str | Path, fix: str) -> None:
    """DataError quoting a duplicated id (or id tuple) of `column` in `file`."""
    cols = [column] if isinstance(column, str) else column
    dup = df.select(cols).filter(pl.struct(cols).is_duplicated())
    if len(dup):
        example = dup.row(0) if len(cols) > 1 else dup[cols[0]][0]
        raise DataError(
            f"{file}: column {column!r} has duplicate id {example!r} ({dup.n_unique()} duplicated id(s)); {fix}"
        )


def check_not_null(df: pl.DataFrame, column: str, *, file: str | Path, fix: str) -> None:
    """DataError when `column` has nulls (e.g. an empty user id cell), naming the first offending row number."""
    nulls = df[column].is_null()
    if nulls.any():
        row = int(nulls.arg_true()[0])
        raise DataError(f"{file}: column {column!r} is empty in row {row + 1} ({int(nulls.sum())} empty); {fix}")
