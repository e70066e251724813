"""LLMRec's release layout (``data/<dataset>/`` of the original code; see docs/llmrec-original.md §4).

- ``train.json``, ``val.json``, ``test.json``: ``{"<uid>": [item, ...]}``; users with empty lists are skipped.
- ``train_mat`` (optional): pickled scipy CSR (n_users, n_items) of the training pairs. Read with the restricted
  unpickler, then checked against train.json: both must list the same pairs (the original code trusts both).
- ``text_feat.npy`` / ``image_feat.npy`` (optional): (n_items, d) item features, row i = item i. n_items is the row
  count of text_feat.npy (else image_feat.npy, else the largest item id + 1, refused when that id lies far beyond
  the others), so items without any interaction still exist. NaN or Inf in a matrix is an error naming the row. The
  matrices are copied into the artifact's ``features/``.
- ``item_attribute.csv`` (optional, no header): Netflix ``id,year,title`` or MovieLens ``id,title,genre``. Titles
  contain commas, so the line is parsed as: first field = id; the layout is Netflix when the second field is a year
  (or empty/NaN) on most lines; then Netflix title = everything after the year, MovieLens genre = the last field
  and title = everything between.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ...artifacts.dataset import GENRES, ITEM_ID, SPLIT, TITLE, USER_ID, YEAR
from ...errors import DataError
from ..checks import cast_column, check_unique
from ..safe_pickle import load_sparse_matrix
from .base import (
    FEATURE_ROW,
    RawData,
    canonical_interactions,
    complete_items,
    read_text,
    require_file,
    split_genres,
    split_title_year,
)

_YEAR_FIELD = r"^\s*(?:\d{4}(?:\.0)?|NULL|NaN|nan|)\s*$"
_FIX_RELEASE = "use the files of one LLMRec release folder (they must agree with each other)"


def _read_split(path: Path, split: str, encoding: str) -> pl.DataFrame:
    """One ``{"uid": [item, ...]}`` file as (user_id String, item Int64, split) rows; empty lists vanish."""
    try:
        mapping: Any = json.loads(read_text(path, encoding))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); re-download the file") from exc
    if not isinstance(mapping, dict):
        raise DataError(f"{path}: expected a JSON object {{\"uid\": [item, ...]}}, found a {type(mapping).__name__}; "
                        f"re-download the file")
    try:
        frame = pl.DataFrame({USER_ID: list(mapping.keys()), "item": list(mapping.values())},
                             schema={USER_ID: pl.String, "item": pl.List(pl.Int64)}, strict=True)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise _bad_value_error(path, mapping) from exc
    return (
        frame.explode("item").drop_nulls("item")
        .select(USER_ID, pl.col("item").alias("item_int"), pl.lit(split).alias(SPLIT))
    )


def _bad_value_error(path: Path, mapping: dict[str, Any]) -> DataError:
    """The DataError for the first value of `mapping` that is not a list of integers (error path only)."""
    for uid, items in mapping.items():
        bad = items if not isinstance(items, list) else next(
            (x for x in items if isinstance(x, bool) or not isinstance(x, int)), None)
        if bad is not None:
            return DataError(
                f"{path}: user {uid!r} must map to a list of integer item ids, but holds {bad!r}; fix the value "
                f"(LLMRec item ids are row numbers of text_feat.npy)"
            )
    return DataError(f"{path}: values must be lists of integer item ids; re-download the file")


def _parse_attributes(path: Path, encoding: str) -> tuple[pl.DataFrame, str]:
    """item_attribute.csv -> (item_int, title, year, genres) and the detected layout ("netflix" | "movielens")."""
    # The Netflix release's titles are latin-1: the one loader file allowed to fall back to it.
    text = read_text(path, encoding, latin1_release=True)
    lines = pl.Series("line", text.splitlines(), dtype=pl.String).str.strip_chars_end("\r")
    lines = lines.filter(lines.str.strip_chars().str.len_chars() > 0)
    parts = lines.str.extract_groups(r"^([^,]*),(.*)$").struct.unnest()
    if parts["1"].null_count():
        bad = lines.filter(parts["1"].is_null())[0]
        raise DataError(f"{path}: line {bad!r} has no comma; each line must be id,year,title (Netflix) or "
                        f"id,title,genre (MovieLens) without a header")
    frame = pl.DataFrame({"id": parts["1"], "rest": parts["2"]})
    frame = cast_column(frame, "id", pl.Int64(), file=f"{path} (field 1)", fix="item_attribute.csv has no header "
                        "line in LLMRec's release: remove any header, and each line must start with the item id")
    check_unique(frame, "id", file=path, fix="each item must appear on one line; remove the duplicate line")
    second = frame["rest"].str.extract(r"^([^,]*)")
    netflix = second.str.contains(_YEAR_FIELD).mean() >= 0.9
    unquote = lambda e: (  # noqa: E731 -- titles written by pandas are quoted when they contain commas
        pl.when(e.str.starts_with('"') & e.str.ends_with('"') & (e.str.len_chars() >= 2))
        .then(e.str.slice(1, e.str.len_chars() - 2).str.replace_all('""', '"', literal=True))
        .otherwise(e).str.strip_chars()
    )
    if netflix:
        rest = frame["rest"].str.extract_groups(r"^([^,]*),?(.*)$").struct.unnest()
        out = frame.select(
            pl.col("id").alias("item_int"),
            unquote(pl.lit(rest["2"])).alias(TITLE),
            pl.lit(rest["1"]).str.extract(r"(\d{4})").cast(pl.Int32).alias(YEAR),
            pl.lit([], pl.List(pl.String)).alias(GENRES),
        )
        return out, "netflix"
    rest = frame["rest"].str.extract_groups(r"^(.*),([^,]*)$").struct.unnest()
    out = frame.select(
        pl.col("id").alias("item_int"),
        unquote(pl.coalesce(pl.lit(rest["1"]), pl.col("rest"))).alias(TITLE),
        split_genres(pl.lit(rest["2"])).alias(GENRES),
    )
    return split_title_year(out), "movielens"


def _check_finite(path: Path, matrix: np.ndarray) -> None:
    """DataError naming the first row (item) of a feature matrix that holds NaN or Inf, or a non-numeric dtype.

    Checked here, at prepare time, because a non-finite feature only surfaces epochs later as a diverged training
    run. The memory-mapped matrix is scanned in blocks of about 64 MiB, so a large one is never loaded whole.
    """
    if not (np.issubdtype(matrix.dtype, np.floating) or np.issubdtype(matrix.dtype, np.integer)):
        raise DataError(f"{path}: expected a numeric (float) feature matrix, found dtype {matrix.dtype}; re-create it")
    if np.issubdtype(matrix.dtype, np.integer):
        return  # integers cannot be NaN or Inf
    row_bytes = max(1, matrix.shape[1] * matrix.itemsize)
    block = max(1, (64 << 20) // row_bytes)
    for start in range(0, matrix.shape[0], block):
        finite = np.isfinite(matrix[start:start + block]).all(axis=1)
        if not finite.all():
            row = start + int(np.argmin(finite))
            values = np.asarray(matrix[row])
            bad = values[~np.isfinite(values)]
            raise DataError(
                f"{path}: row {row} (item {row}) holds {bad[0]} ({len(bad)} non-finite value(s) in that row); "
                f"feature matrices must be finite: re-create the row's features (re-run the encoder for item {row}) "
                f"or re-download the file"
            )


#: Without feature matrices the item count is the largest id + 1; a largest id beyond this many times the number of
#: distinct ids (plus a margin for releases with a few unused ids) is a stray value, not a catalogue.
_ID_SPREAD = 2
_ID_MARGIN = 1000


def _item_count_from_ids(pairs: pl.DataFrame, attributes: pl.DataFrame | None, folder: Path) -> int:
    """Largest item id + 1 of the JSON files and item_attribute.csv, refused before any per-item allocation when
    that id lies far beyond the data (one stray id of 10^9 would otherwise allocate gigabytes)."""
    sources = [(pairs.select("item_int", USER_ID, SPLIT), None)]
    if attributes is not None:
        sources.append((attributes.select("item_int"), folder / "item_attribute.csv"))
    ids = pl.concat([frame["item_int"] for frame, _ in sources])
    if ids.is_empty():
        return 0
    distinct = ids.n_unique()
    largest = int(ids.max())  # type: ignore[arg-type]
    limit = _ID_SPREAD * distinct + _ID_MARGIN
    if largest + 1 <= limit:
        return largest + 1
    following = ids.filter(ids < largest).max()
    where = f"{folder}: item {largest}"
    for frame, file in sources:
        hit = frame.filter(pl.col("item_int") == largest)
        if len(hit):
            r = hit.row(0, named=True)
            where = (f"{file}: item {largest}" if file is not None else
                     f"{folder / (r[SPLIT] + '.json')}: user {r[USER_ID]!r} lists item {largest}")
            break
    raise DataError(
        f"{where}, far beyond the data ({distinct - 1:,} other distinct item ids, the largest of them "
        f"{following}); without text_feat.npy/image_feat.npy the item count is the largest id + 1, which would make "
        f"{largest + 1:,} items. LLMRec item ids are rows 0..n_items-1: fix or remove this id, or add the release's "
        f"text_feat.npy"
    )


def _check_train_mat(path: Path, train: pl.DataFrame, n_items: int, notes: list[str]) -> None:
    """train_mat must list exactly the pairs of train.json; DataError naming an example pair that differs."""
    # Rows are users: bounded like item ids, so that a stray shape is refused before the CSR index is allocated.
    max_users = _ID_SPREAD * train[USER_ID].n_unique() + _ID_MARGIN
    matrix = load_sparse_matrix(path, max_shape=(max_users, n_items))
    if matrix.shape[1] != n_items:
        raise DataError(
            f"{path}: matrix has {matrix.shape[1]} item columns, but the dataset has {n_items} items (rows of "
            f"text_feat.npy / largest item id + 1); {_FIX_RELEASE}, or delete train_mat (train.json is enough)"
        )
    uids = train[USER_ID].cast(pl.Int64, strict=False)
    if uids.null_count():
        notes.append(f"{path.name}: not compared with train.json (user ids are not integers)")
        return
    coo = matrix.tocoo()
    nonzero = coo.data != 0
    mat_pairs = pl.DataFrame({"u": coo.row[nonzero].astype(np.int64), "i": coo.col[nonzero].astype(np.int64)}).unique()
    json_pairs = pl.DataFrame({"u": uids, "i": train["item_int"]}).unique()
    only_mat = mat_pairs.join(json_pairs, on=["u", "i"], how="anti")
    only_json = json_pairs.join(mat_pairs, on=["u", "i"], how="anti")
    if len(only_mat) or len(only_json):
        example = (only_mat if len(only_mat) else only_json).row(0)
        raise DataError(
            f"{path}: train_mat does not agree with train.json: {len(only_mat)} pair(s) only in train_mat, "
            f"{len(only_json)} only in train.json (e.g. (user, item) {example}); {_FIX_RELEASE}, or delete train_mat "
            f"to use train.json alone"
        )
    notes.append(f"train_mat agrees with train.json ({len(json_pairs):,} pairs, shape {matrix.shape})")


def load_llmrec(folder: Path, encoding: str = "auto") -> RawData:
    """Load an LLMRec release folder (see the module docstring); `encoding` as in :func:`~.base.decode_bytes`."""
    fix = "an LLMRec dataset folder holds train.json, val.json and test.json (val.json may be {})"
    files: dict[str, Path] = {}
    parts = []
    for split in ("train", "val", "test"):
        path = require_file(folder / f"{split}.json", f'{{"uid": [item, ...]}} for the {split} split', fix)
        files[split if split != "train" else "interactions"] = path
        parts.append(_read_split(path, split, encoding))
    pairs = pl.concat(parts)
    notes: list[str] = []

    features = {name: folder / f"{name}.npy" for name in ("text_feat", "image_feat")
                if (folder / f"{name}.npy").is_file()}
    shapes = {}
    for name, path in features.items():
        try:
            matrix = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a readable .npy array ({exc}); re-download it") from exc
        shapes[name] = matrix.shape
        if len(shapes[name]) != 2:
            raise DataError(f"{path}: expected a 2-d (n_items, dim) array, found shape {shapes[name]}; re-download it")
        _check_finite(path, matrix)
        files[name] = path
    attributes, layout = None, "no item_attribute.csv"
    if (attr_path := folder / "item_attribute.csv").is_file():
        attributes, layout = _parse_attributes(attr_path, encoding)
        files["items"] = attr_path
    if "text_feat" in shapes:
        n_items, n_from = shapes["text_feat"][0], "rows of text_feat.npy"
    elif "image_feat" in shapes:
        n_items, n_from = shapes["image_feat"][0], "rows of image_feat.npy"
    else:
        n_items, n_from = _item_count_from_ids(pairs, attributes, folder), "largest item id + 1 (no feature files)"
    for name, shape in shapes.items():
        if shape[0] != n_items:
            raise DataError(f"{features[name]}: {shape[0]} rows, but text_feat.npy has {n_items}; {_FIX_RELEASE}")

    outside = pairs.filter((pl.col("item_int") < 0) | (pl.col("item_int") >= n_items))
    if len(outside):
        r = outside.row(0, named=True)
        raise DataError(
            f"{folder / (r[SPLIT] + '.json')}: user {r[USER_ID]!r} lists item {r['item_int']}, outside the "
            f"{n_items} items ({n_from}); {_FIX_RELEASE}"
        )
    items = pl.DataFrame({"item_int": np.arange(n_items, dtype=np.int64)})
    if attributes is not None:
        unknown = attributes.filter((pl.col("item_int") < 0) | (pl.col("item_int") >= n_items))
        if len(unknown):
            raise DataError(
                f"{attr_path}: column 'id (field 1)' refers to item {unknown['item_int'][0]}, outside the {n_items} "
                f"items ({n_from}); {_FIX_RELEASE}"
            )
        items = items.join(attributes, on="item_int", how="left")
        missing = n_items - len(attributes)
        if missing:
            notes.append(f"item_attribute.csv describes {len(attributes):,} of {n_items:,} items; the rest have no "
                         f"title")
    items = complete_items(items.with_columns(
        pl.col("item_int").cast(pl.String).alias(ITEM_ID), pl.col("item_int").alias(FEATURE_ROW)).drop("item_int"))

    if (mat_path := folder / "train_mat").is_file():
        files["train_mat"] = mat_path
        _check_train_mat(mat_path, pairs.filter(pl.col(SPLIT) == "train"), n_items, notes)
    else:
        notes.append("no train_mat: training pairs come from train.json alone")
    interactions = canonical_interactions(pairs.with_columns(pl.col("item_int").cast(pl.String).alias(ITEM_ID)))
    notes.append(f"n_items = {n_items:,} ({n_from}); item_attribute.csv layout: {layout}")
    return RawData(interactions, items, None, files, format="llmrec", variant=layout, features=features,
                   notes=notes, all_items_by_default=True, user_column="uid (JSON key)",
                   item_column="item id (JSON list)")
