"""What every loader returns (`RawData`), and parsing helpers the loaders share.

Loaders only read and normalise: ids stay external strings, ratings stay raw. Filtering, indexing and splitting
happen in :mod:`llmrec_local.prepare.stage`, identically for every format.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ...artifacts.dataset import (
    GENRES,
    IMAGE_PATH,
    ITEM_ID,
    RATING,
    SPLIT,
    TIMESTAMP,
    TITLE,
    USER_ID,
    YEAR,
)
from ...errors import DataError

#: Hidden items column: row of each item in the feature matrices of ``RawData.features``.
FEATURE_ROW = "_feature_row"

# "Toy Story (1995)", "Babylon 5 (1994-1998)", "Title (2007) " -> title + first year; no match keeps the title.
_TITLE_YEAR = r"^(.*?)\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$"


@dataclass
class RawData:
    """A source dataset in canonical columns, before filtering and indexing.

    Attributes:
        interactions: user_id (String), item_id (String), rating (Float64, null if implicit), timestamp (Int64 unix
            seconds or null), and ``split`` (String train/val/test) only when the source ships its own split.
        items: item_id (String, unique) + title (String), year (Int32), genres (List[String]), image_path (String)
            + any other String columns; ``_feature_row`` (Int64) when `features` are given. None: no item file.
        users: user_id (String, unique) + attribute columns; None when the source has no user file.
        files: every input file read, by a short name (hashed into the manifest).
        features: dense per-item matrices to copy into the artifact (``text_feat`` -> .npy path), row r belongs
            to the item whose ``_feature_row`` is r.
        format, variant: what was detected (e.g. "movielens", "ml-latest-small").
        notes: human-readable facts found while loading (reported in the summary).
        all_items_by_default: keep items without interactions unless the config says otherwise (LLMRec's release:
            its feature matrices define the item set).
        user_column, item_column: the id columns' names in the source files (for error messages).
    """

    interactions: pl.DataFrame
    items: pl.DataFrame | None
    users: pl.DataFrame | None
    files: dict[str, Path]
    format: str
    variant: str
    features: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    all_items_by_default: bool = False
    user_column: str = USER_ID
    item_column: str = ITEM_ID

    @property
    def has_split(self) -> bool:
        return SPLIT in self.interactions.columns


def require_file(path: Path, what: str, fix: str) -> Path:
    """`path` if it is a file, else DataError naming it, what it should contain, and `fix`."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected {what}); {fix}")
    return path


def undecodable_error(path: Path, data: bytes, exc: UnicodeDecodeError, encoding: str, fix: str) -> DataError:
    """The DataError for bytes of `path` that `encoding` cannot decode: byte offset, line, the bytes, and `fix`."""
    line = data.count(b"\n", 0, exc.start) + 1
    return DataError(
        f"{path}: byte {data[exc.start:exc.end]!r} at offset {exc.start} (line {line}) is not valid {encoding}; "
        f"{fix}"
    )


def decode_bytes(path: Path, data: bytes, encoding: str = "auto", *, latin1_release: bool = False) -> str:
    """`data` (the bytes of `path`) as text, by the one encoding rule of every loader; nothing is ever replaced.

    ``"auto"``: strict UTF-8 (a leading byte-order mark is dropped); only for formats whose official releases are
    latin-1 (`latin1_release`: MovieLens ``.dat``/``u.*`` files, LLMRec's Netflix ``item_attribute.csv``) does a
    file that is not UTF-8 fall back to latin-1. Any other name is a codec used strictly. Undecodable bytes are a
    DataError naming the file, the byte offset and line, and the ``--encoding`` fix.
    """
    codec = "utf-8-sig" if encoding == "auto" else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        if encoding == "auto" and latin1_release:
            return data.decode("latin-1")  # every byte is a latin-1 character: this cannot fail
        shown = "UTF-8" if encoding == "auto" else encoding
        raise undecodable_error(
            path, data, exc, shown, "set the file's encoding with --encoding (recipe key prepare.encoding), e.g. "
            "--encoding latin-1 for a file saved by older Windows or Excel, or re-save the file as UTF-8") from exc


def read_text(path: Path, encoding: str = "auto", *, latin1_release: bool = False) -> str:
    """The text of `path` by :func:`decode_bytes`'s rule."""
    return decode_bytes(path, path.read_bytes(), encoding, latin1_release=latin1_release)


def utf8_bytes(path: Path, encoding: str = "auto", *, latin1_release: bool = False) -> bytes:
    """The bytes of `path` as UTF-8 for polars, decoded by :func:`decode_bytes`'s rule.

    A file that already is UTF-8 is passed on as read (polars skips a byte-order mark), so the common case costs one
    validation pass and no copy.
    """
    data = path.read_bytes()
    if encoding == "auto":
        try:
            data.decode("utf-8")
            return data
        except UnicodeDecodeError:
            pass
    return decode_bytes(path, data, encoding, latin1_release=latin1_release).encode("utf-8")


def read_separated(
    path: Path, separator: str, columns: list[str], *, schema: dict[str, pl.DataType] | None = None,
    encoding: str = "auto", latin1_release: bool = False,
) -> pl.DataFrame:
    """A header-less, quote-free separated file (MovieLens ``::``, ``|`` or tab) as a DataFrame of `columns`.

    Multi-character separators are rewritten to the unit separator byte first (polars needs one byte); the text is
    decoded by :func:`decode_bytes` (`latin1_release`: this file's official release is latin-1).
    """
    raw = utf8_bytes(path, encoding, latin1_release=latin1_release)
    if len(separator) > 1:
        raw = raw.replace(separator.encode(), b"\x1f")
        separator = "\x1f"
    try:
        df = pl.read_csv(
            io.BytesIO(raw), separator=separator, has_header=False, quote_char=None, new_columns=columns,
            schema_overrides=schema, infer_schema=schema is None or len(schema) < len(columns),
            truncate_ragged_lines=False,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError) as exc:
        raise DataError(
            f"{path}: cannot parse as {separator!r}-separated columns {columns} ({exc}); check the file is the "
            f"original, unmodified release file"
        ) from exc
    if df.width != len(columns):
        raise DataError(f"{path}: expected {len(columns)} columns {columns}, found {df.width}; check the file")
    return df


def split_title_year(df: pl.DataFrame, column: str = TITLE) -> pl.DataFrame:
    """Move a trailing "(YYYY)" of `column` into ``year`` (Int32) and strip it from the title.

    A title without a year keeps the existing ``year`` column's value (e.g. ml-100k's release date), if any.
    """
    parsed = pl.col(column).str.extract_groups(_TITLE_YEAR)
    title = pl.coalesce(parsed.struct.field("1"), pl.col(column).str.strip_chars())
    year = parsed.struct.field("2").cast(pl.Int32)
    if YEAR in df.columns:
        year = pl.coalesce(year, pl.col(YEAR).cast(pl.Int32, strict=False))
    return df.with_columns(title.alias(column), year.alias(YEAR))


def split_genres(expr: pl.Expr, separator: str = "|") -> pl.Expr:
    """A String genre field ("A|B", "(no genres listed)", "") as a List[String] of trimmed, non-empty names."""
    return (
        expr.fill_null("").str.split(separator)
        .list.eval(pl.element().str.strip_chars().filter(
            (pl.element().str.len_chars() > 0) & (pl.element() != "(no genres listed)")))
    )


def complete_items(items: pl.DataFrame) -> pl.DataFrame:
    """Add the canonical item columns that a source lacks (null title/year/image, empty genres), typed; items that
    a left join left without attributes get empty genre lists rather than null."""
    defaults = {
        TITLE: pl.lit(None, pl.String), YEAR: pl.lit(None, pl.Int32),
        GENRES: pl.lit([], pl.List(pl.String)), IMAGE_PATH: pl.lit(None, pl.String),
    }
    items = items.with_columns([expr.alias(name) for name, expr in defaults.items() if name not in items.columns])
    return items.with_columns(
        pl.col(ITEM_ID).cast(pl.String), pl.col(TITLE).cast(pl.String), pl.col(YEAR).cast(pl.Int32),
        pl.col(IMAGE_PATH).cast(pl.String), pl.col(GENRES).fill_null(pl.lit([], pl.List(pl.String))),
    )


def canonical_interactions(df: pl.DataFrame) -> pl.DataFrame:
    """Select and type the raw interaction columns (user_id, item_id, rating, timestamp[, split])."""
    cols = [
        pl.col(USER_ID).cast(pl.String), pl.col(ITEM_ID).cast(pl.String),
        (pl.col(RATING) if RATING in df.columns else pl.lit(None)).cast(pl.Float64).alias(RATING),
        (pl.col(TIMESTAMP) if TIMESTAMP in df.columns else pl.lit(None)).cast(pl.Int64).alias(TIMESTAMP),
    ]
    if SPLIT in df.columns:
        cols.append(pl.col(SPLIT).cast(pl.String))
    return df.select(cols)
