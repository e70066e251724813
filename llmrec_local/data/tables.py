"""Reading user-supplied tables (candidate lists, augmentations made elsewhere) as typed frames.

Column types are inferred here, unlike the dataset loaders (``loaders/generic.py`` reads every column as text and
checks types itself): the callers map columns by name and cast them where they need a type.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from ..errors import DataError
from .loaders.base import undecodable_error


def read_table(path: Path, text_columns: Sequence[str] = ()) -> pl.DataFrame:
    """A parquet, CSV, TSV, JSON (an array of objects) or JSON-lines file as a frame (DataError for other suffixes).

    `text_columns` (ids, mostly) are read from CSV/TSV as written, not as the reader's guess of a type: ``0114709``
    stays ``"0114709"``, not the integer 114709 (other formats store their types).

    CSV/TSV text must be UTF-8 (a byte-order mark is allowed): bytes that do not decode are a DataError naming the
    offset, never replaced, as in the dataset loaders; a damaged file is a DataError naming it, not a polars error.
    """
    if path.suffix not in (".parquet", ".csv", ".tsv", ".json", ".jsonl"):
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .parquet, .csv, .tsv, .json or .jsonl")
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        if path.suffix == ".jsonl":
            return pl.read_ndjson(path, infer_schema_length=10000)
        if path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8-sig"))
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise DataError(f"{path}: expected a JSON array of objects (one per row), got a "
                                f"{type(rows).__name__}; write it as [{{\"id\": ..., \"text\": ...}}, ...]")
            return pl.DataFrame(rows, infer_schema_length=10000)
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise undecodable_error(path, data, exc, "UTF-8", "re-save the file as UTF-8 (e.g. in Python: "
                                    "open(f, encoding='latin-1').read() written back with encoding='utf-8')") from exc
        return pl.read_csv(io.BytesIO(data), separator="\t" if path.suffix == ".tsv" else ",",
                           infer_schema_length=10000, schema_overrides={c: pl.String for c in text_columns})
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read this table ({type(exc).__name__}: {exc}); check it is a complete, "
                        f"valid {path.suffix.lstrip('.')} file") from exc
