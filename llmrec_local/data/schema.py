"""Canonical column names and dtypes of the dataset artifact, and checks that name the bad value.

The dataset artifact (stage ``prepare``) holds four tables. Their required columns and dtypes are below; items and
users may carry extra columns (item text such as ``tags``, user attributes such as ``age``).

- ``interactions.parquet``: user (Int64), item (Int64), rating (Float64, null if implicit), timestamp (Int64 unix
  seconds, null if absent): the positive interactions after preparation.
- ``split.parquet``: user, item (Int64), split (String: "train" | "val" | "test").
- ``items.parquet``: item (Int64, 0..n_items-1, sorted), item_id (String), title (String), year (Int32),
  genres (List[String]), image_path (String).
- ``users.parquet``: user (Int64, 0..n_users-1, sorted), user_id (String).

Every check here raises :class:`DataError` with the file, the column, an example of the offending value and a fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from ..errors import DataError

USER = "user"
ITEM = "item"
USER_ID = "user_id"
ITEM_ID = "item_id"
RATING = "rating"
TIMESTAMP = "timestamp"
SPLIT = "split"
TITLE = "title"
YEAR = "year"
GENRES = "genres"
IMAGE_PATH = "image_path"

SPLIT_NAMES = ("train", "val", "test")

INTERACTIONS_FILE = "interactions.parquet"
SPLIT_FILE = "split.parquet"
ITEMS_FILE = "items.parquet"
USERS_FILE = "users.parquet"
FEATURES_DIR = "features"
SUMMARY_FILE = "summary.md"

INTERACTIONS_SCHEMA: dict[str, pl.DataType] = {
    USER: pl.Int64(), ITEM: pl.Int64(), RATING: pl.Float64(), TIMESTAMP: pl.Int64(),
}
SPLIT_SCHEMA: dict[str, pl.DataType] = {USER: pl.Int64(), ITEM: pl.Int64(), SPLIT: pl.String()}
ITEMS_SCHEMA: dict[str, pl.DataType] = {
    ITEM: pl.Int64(), ITEM_ID: pl.String(), TITLE: pl.String(), YEAR: pl.Int32(),
    GENRES: pl.List(pl.String()), IMAGE_PATH: pl.String(),
}
USERS_SCHEMA: dict[str, pl.DataType] = {USER: pl.Int64(), USER_ID: pl.String()}

#: The raw (pre-index) interaction table every loader returns; ``split`` only when the source ships its own split.
RAW_INTERACTIONS_SCHEMA: dict[str, pl.DataType] = {
    USER_ID: pl.String(), ITEM_ID: pl.String(), RATING: pl.Float64(), TIMESTAMP: pl.Int64(),
}

REBUILD_FIX = "rebuild the dataset with `python -m llmrec_local.prepare ... --force`"


def _example(values: pl.Series) -> str:
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
            f"{file}: column {column!r} must hold {dtype} values, but {_example(bad)} is not one "
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


def validate(
    df: pl.DataFrame, schema: Mapping[str, pl.DataType], *, file: str | Path, fix: str = REBUILD_FIX
) -> None:
    """Check that `df` has every column of `schema` with exactly that dtype (extra columns are allowed)."""
    require_columns(df, schema, file=file, fix=fix)
    for name, dtype in schema.items():
        if df[name].dtype != dtype:
            sample = df[name].drop_nulls()
            raise DataError(
                f"{file}: column {name!r} has dtype {df[name].dtype} (example value {_example(sample)}), "
                f"expected {dtype}; {fix}"
            )


def check_dense_index(df: pl.DataFrame, column: str, *, file: str | Path, fix: str = REBUILD_FIX) -> None:
    """Check that `column` is exactly 0..len(df)-1 in order (the contiguous index the arrays rely on)."""
    values = df[column]
    expected = pl.int_range(0, len(df), eager=True, dtype=pl.Int64)
    wrong = values.ne_missing(expected)
    if wrong.any():
        row = int(wrong.arg_true()[0])
        raise DataError(
            f"{file}: column {column!r} must be 0..{len(df) - 1} in order, but row {row} holds {values[row]!r}; {fix}"
        )
