"""Generic tables (CSV, TSV or parquet): interactions, and optionally items and users.

Layout (names configurable through ``PrepareConfig``; a bare name like ``interactions`` matches ``.csv``, ``.tsv``
and ``.parquet``):

- interactions: user and item id columns (any type, read as strings), optional rating (number) and timestamp (unix
  seconds, or a date/datetime that polars can parse; millisecond columns are detected by the prepare stage);
- items (optional): the item id column, optional title, year, genres ("A|B" strings or a list column), image path
  (relative paths are resolved against the items file's folder), and any other columns as text;
- users (optional): the user id column plus attribute columns (``age`` becomes Int32, others keep their type).

`source` may also be a single interactions file.

A fixed split (used by split "given"; pooled and re-split by the other splits) comes in any of three forms:

- a ``split`` column (``split_col``) in the interactions table: train | val | test ("valid", "validation" also read
  as val; case and surrounding spaces ignored);
- separate tables instead of one interactions table: ``train`` and ``test`` (.csv/.tsv/.parquet, the columns of an
  interactions table), optionally ``val`` (or ``valid``);
- the text layout of LightGCN-family releases: ``train.txt`` and ``test.txt``, optionally ``val.txt`` (or
  ``valid.txt``), one line per user ``uid item item ...`` (separated by spaces or tabs; a line with a uid alone is a
  user without items there). No ratings or timestamps: every pair is a positive.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ...artifacts.dataset import (
    GENRES,
    IMAGE_PATH,
    ITEM_ID,
    RATING,
    SPLIT,
    SPLIT_NAMES,
    TIMESTAMP,
    TITLE,
    USER_ID,
    YEAR,
)
from ...errors import DataError
from ..checks import cast_column, check_not_null, check_unique, require_columns
from .base import RawData, canonical_interactions, complete_items, read_text, split_genres, utf8_bytes

if TYPE_CHECKING:
    from ...prepare.config import PrepareConfig

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
#: Accepted spellings of the split names (after lower-casing and stripping) in a split column or a file name.
SPLIT_SPELLINGS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def find_table(folder: Path, name: str) -> Path | None:
    """`folder/name` if it exists, else the first of name.csv / name.tsv / name.parquet that does."""
    direct = folder / name
    if direct.is_file():
        return direct
    for suffix in TABLE_SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_table(path: Path, encoding: str = "auto") -> pl.DataFrame:
    """A CSV/TSV file with every column as String (types are checked later, with clear errors), or a parquet file.

    Text is decoded by :func:`~.base.decode_bytes` without a latin-1 fallback (generic tables have no release
    encoding to assume): bytes that do not decode are an error, never replaced, so that ``josé`` and ``josè`` stay two
    users.
    """
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(
            io.BytesIO(utf8_bytes(path, encoding)), separator="\t" if path.suffix == ".tsv" else ",",
            infer_schema=False,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read this table ({exc}); check it is valid CSV/TSV/parquet") from exc


def split_files(folder: Path) -> tuple[str, dict[str, Path]] | None:
    """The per-split files of `folder`: ("table", {split: path}) for train/test[/val] tables, ("text", ...) for
    train.txt/test.txt[/val.txt] in the ``uid item item ...`` layout, or None when `folder` has neither pair."""
    tables = {name: find_table(folder, name) for name in ("train", "val", "valid", "test")}
    texts = {name: folder / f"{name}.txt" for name in ("train", "val", "valid", "test")}
    for kind, found in (("table", tables), ("text", {k: v if v.is_file() else None for k, v in texts.items()})):
        if found["train"] is not None and found["test"] is not None:
            files = {"train": found["train"], "test": found["test"]}
            if (val := found["val"] or found["valid"]) is not None:
                files["val"] = val
            return kind, files  # type: ignore[return-value]
    return None


def _split_column(df: pl.DataFrame, column: str, file: Path) -> pl.Series:
    """The split column `column` as canonical names (train | val | test); DataError quoting an unknown value."""
    check_not_null(df, column, file=file, fix="every interaction of a fixed split needs train, val or test")
    canonical = df[column].cast(pl.String).str.strip_chars().str.to_lowercase().replace_strict(
        SPLIT_SPELLINGS, default=None)
    bad = df[column].filter(canonical.is_null())
    if len(bad):
        raise DataError(
            f"{file}: column {column!r} must hold train, val or test (also read: valid, validation), but "
            f"{bad[0]!r} is none of them ({len(bad)} row(s)); fix the values, or set split_col to another column"
        )
    return canonical.alias(SPLIT)


def _read_text_layout(path: Path, split: str, encoding: str) -> pl.DataFrame:
    """One ``uid item item ...`` file as (user_id, item_id, split) rows (String ids; a uid alone gives no row)."""
    lines = pl.Series("line", read_text(path, encoding).splitlines(), dtype=pl.String).str.strip_chars()
    lines = lines.filter(lines.str.len_chars() > 0)
    tokens = lines.str.replace_all(r"\s+", " ").str.split(" ")
    if len(tokens) and tokens.list.len().max() == 1 and lines.str.contains(",").any():
        raise DataError(
            f"{path}: lines must be 'uid item item ...' separated by spaces or tabs, but they hold commas (e.g. "
            f"{lines[0]!r}); a comma-separated table belongs in {path.stem}.csv with user and item columns"
        )
    frame = pl.DataFrame({USER_ID: tokens.list.first(), ITEM_ID: tokens.list.slice(1)})
    return frame.explode(ITEM_ID).drop_nulls(ITEM_ID).with_columns(pl.lit(split).alias(SPLIT))


def _load_split_files(kind: str, files: dict[str, Path], config: "PrepareConfig") -> pl.DataFrame:
    """The interactions of per-split files, with the split of each file in the ``split`` column."""
    parts = []
    for split in SPLIT_NAMES:
        if split not in files:
            continue
        if kind == "text":
            parts.append(_read_text_layout(files[split], split, config.encoding))
        else:
            part = _load_interactions(files[split], config, with_split=False)
            parts.append(part.with_columns(pl.lit(split).alias(SPLIT)))
    return canonical_interactions(pl.concat(parts, how="diagonal_relaxed"))


def _timestamps(df: pl.DataFrame, column: str, file: Path) -> pl.DataFrame:
    """Turn `column` into Int64 unix seconds: integers pass, datetimes/dates and parseable strings convert."""
    dtype = df[column].dtype
    if dtype.is_temporal():
        return df.with_columns(pl.col(column).cast(pl.Datetime("us")).dt.epoch("s").alias(column))
    if dtype == pl.String:
        as_int = df[column].str.strip_chars().cast(pl.Float64, strict=False)
        if as_int.is_null().sum() == df[column].is_null().sum():
            return cast_column(df, column, pl.Int64(), file=file, fix="timestamps must be unix seconds or dates")
        parsed = df[column].str.strip_chars().str.to_datetime(strict=False, time_unit="us")
        numbers = df[column].filter(as_int.is_not_null())
        if len(numbers) and parsed.null_count() < len(parsed):
            dates = df[column].filter(parsed.is_not_null())
            raise DataError(
                f"{file}: column {column!r} mixes unix timestamps (e.g. {numbers[0]!r}, {len(numbers)} row(s)) and "
                f"dates (e.g. {dates[0]!r}, {len(dates)} row(s)); write every value in one form (all unix seconds "
                f"or all dates)"
            )
        bad = df[column].filter(parsed.is_null() & df[column].is_not_null())
        if len(bad):
            raise DataError(
                f"{file}: column {column!r} must hold unix seconds or dates, but {bad[0]!r} is neither; fix the "
                f"value or set timestamp_col to another column"
            )
        return df.with_columns(parsed.dt.epoch("s").alias(column))
    return cast_column(df, column, pl.Int64(), file=file, fix="timestamps must be unix seconds or dates")


def _load_interactions(path: Path, config: "PrepareConfig", *, with_split: bool = True) -> pl.DataFrame:
    """The interactions table at `path` in canonical columns, with its split column (`with_split` and present)."""
    df = read_table(path, config.encoding)
    fix = "name the columns with --user-col/--item-col (recipe keys user_col, item_col)"
    require_columns(df, [config.user_col, config.item_col], file=path, fix=fix)
    for col in (config.user_col, config.item_col):
        check_not_null(df, col, file=path, fix="every interaction needs a user and an item id")
    out = {USER_ID: df[config.user_col].cast(pl.String), ITEM_ID: df[config.item_col].cast(pl.String)}
    if config.rating_col in df.columns:
        df = cast_column(df, config.rating_col, pl.Float64(), file=path, fix="ratings must be numbers")
        if len(df) and df[config.rating_col].null_count() == len(df):
            # Every cell blank would otherwise read as "no ratings" and make every row a positive.
            raise DataError(
                f"{path}: column {config.rating_col!r} is empty in every row; fill in the ratings, or remove the "
                f"column (or set rating_col to another name) to treat every interaction as a positive"
            )
        out[RATING] = df[config.rating_col]
    if config.timestamp_col in df.columns:
        df = _timestamps(df, config.timestamp_col, path)
        out[TIMESTAMP] = df[config.timestamp_col]
    if with_split and config.split_col in df.columns:
        out[SPLIT] = _split_column(df, config.split_col, path)
    return canonical_interactions(pl.DataFrame(out))


def _load_items(path: Path, config: "PrepareConfig", notes: list[str]) -> pl.DataFrame:
    df = read_table(path, config.encoding)
    require_columns(df, [config.item_col], file=path, fix="the items table needs the same item id column as the "
                    "interactions (item_col)")
    if df.is_empty():
        raise DataError(f"{path}: the items table has no rows; fill it or remove the file (items are optional)")
    check_not_null(df, config.item_col, file=path, fix="every item row needs an id")
    df = df.with_columns(pl.col(config.item_col).cast(pl.String))
    check_unique(df, config.item_col, file=path, fix="each item must appear once; merge or remove the duplicate rows")
    renames = {config.item_col: ITEM_ID, config.title_col: TITLE, config.year_col: YEAR,
               config.genres_col: GENRES, config.image_col: IMAGE_PATH}
    df = df.rename({k: v for k, v in renames.items() if k in df.columns and k != v})
    if YEAR in df.columns:
        df = cast_column(df, YEAR, pl.Int32(), file=path, fix="years must be whole numbers (e.g. 1995) or empty")
    if GENRES in df.columns:
        if df[GENRES].dtype == pl.String:
            df = df.with_columns(split_genres(pl.col(GENRES), config.genre_sep).alias(GENRES))
        elif isinstance(df[GENRES].dtype, pl.List):
            df = df.with_columns(pl.col(GENRES).cast(pl.List(pl.String)).list.eval(
                pl.element().filter(pl.element().is_not_null() & (pl.element() != ""))))
        else:
            raise DataError(f"{path}: column {config.genres_col!r} must be text like 'A{config.genre_sep}B' or a "
                            f"list, found {df[GENRES].dtype} (example {df[GENRES][0]!r}); fix the column type")
    if IMAGE_PATH in df.columns:
        df = _resolve_images(df, path.parent, path, notes)
    known = {ITEM_ID, TITLE, YEAR, GENRES, IMAGE_PATH}
    # Other item columns are free text for the prompts and the text embedder.
    df = df.with_columns(pl.col(c).cast(pl.String) for c in df.columns if c not in known)
    return complete_items(df)


def _resolve_images(df: pl.DataFrame, base: Path, file: Path, notes: list[str]) -> pl.DataFrame:
    """Make image paths absolute (relative ones are relative to the items file) and null out missing files."""
    paths = df[IMAGE_PATH].cast(pl.String).str.strip_chars()
    paths = paths.replace("", None)
    absolute = [None if p is None else str((base / p).resolve()) for p in paths.to_list()]
    exists = [p is not None and Path(p).is_file() for p in absolute]
    missing = [p for p, e, raw in zip(absolute, exists, paths.to_list()) if raw is not None and not e]
    if missing:
        notes.append(f"{file}: {len(missing)} image path(s) do not exist (e.g. {missing[0]}); those items have no image")
    return df.with_columns(pl.Series(IMAGE_PATH, [p if e else None for p, e in zip(absolute, exists)], pl.String))


def _load_users(path: Path, config: "PrepareConfig") -> pl.DataFrame:
    df = read_table(path, config.encoding)
    require_columns(df, [config.user_col], file=path, fix="the users table needs the same user id column as the "
                    "interactions (user_col)")
    if df.is_empty():
        raise DataError(f"{path}: the users table has no rows; fill it or remove the file (users are optional)")
    check_not_null(df, config.user_col, file=path, fix="every user row needs an id")
    df = df.with_columns(pl.col(config.user_col).cast(pl.String)).rename(
        {config.user_col: USER_ID} if config.user_col != USER_ID else {})
    check_unique(df, USER_ID, file=path, fix="each user must appear once; merge or remove the duplicate rows")
    if "age" in df.columns:
        df = cast_column(df, "age", pl.Int32(), file=path, fix="ages must be whole numbers or empty")
    return _numeric_where_possible(df, exclude={USER_ID})


def _numeric_where_possible(df: pl.DataFrame, exclude: set[str]) -> pl.DataFrame:
    """CSV columns arrive as text; a column whose every value is an integer (a number) becomes Int64 (Float64)."""
    out = []
    for name in df.columns:
        col = df[name]
        if name in exclude or col.dtype != pl.String:
            continue
        stripped = col.str.strip_chars()
        for dtype in (pl.Int64, pl.Float64):
            converted = stripped.cast(dtype, strict=False)
            if converted.null_count() == col.null_count():
                out.append(converted.alias(name))
                break
    return df.with_columns(out)


def load_generic(config: "PrepareConfig") -> RawData:
    """Read the generic tables named by `config` from ``config.source`` (a folder or an interactions file)."""
    source = Path(config.source)
    notes: list[str] = []
    variant = None
    columns = (config.user_col, config.item_col)
    if source.is_file():
        folder, inter_path = source.parent, source
        interactions = _load_interactions(inter_path, config)
        files = {"interactions": inter_path}
    elif (found := find_table(source, config.interactions_file)) is not None:
        folder, inter_path = source, found
        interactions = _load_interactions(inter_path, config)
        files = {"interactions": inter_path}
    elif (per_split := split_files(source)) is not None:
        kind, parts = per_split
        folder, inter_path = source, parts["train"]
        interactions = _load_split_files(kind, parts, config)
        # "interactions" names the training file, as for LLMRec's release (error messages and provenance).
        files = {("interactions" if k == "train" else k): v for k, v in parts.items()}
        variant = "text (uid item item ...)" if kind == "text" else f"{inter_path.suffix.lstrip('.')} per-split files"
        if kind == "text":
            columns = ("uid (first field)", "item (other fields)")
    else:
        raise DataError(
            f"{source}: no interactions table {config.interactions_file!r} (.csv/.tsv/.parquet) and no train/test "
            f"files (train.csv + test.csv, or train.txt + test.txt) found; put one there or set interactions_file "
            f"(--interactions-file)"
        )
    items = users = None
    if (items_path := find_table(folder, config.items_file)) is not None and items_path != inter_path:
        items = _load_items(items_path, config, notes)
        files["items"] = items_path
    if (users_path := find_table(folder, config.users_file)) is not None and users_path != inter_path:
        users = _load_users(users_path, config)
        files["users"] = users_path
    variant = variant or inter_path.suffix.lstrip(".") + (" with a split column" if SPLIT in interactions.columns
                                                         else "")
    return RawData(interactions, items, users, files, format="generic", variant=variant,
                   notes=notes, user_column=columns[0], item_column=columns[1])
