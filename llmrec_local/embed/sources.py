"""What gets embedded: one :class:`SourceInputs` (row ids + one input per row) per embedding artifact.

Sources (``EmbedConfig.sources``):

* ``item_text``: per item, a rendering of dataset columns, by default
  ``"Toy Story (1995). Genres: Adventure, Animation. Tags: pixar, toys"`` (title, year, genres, then every other
  configured text column as ``"<Column>: <value>"``).
* ``item_attributes``: the LLM-generated attributes (``augment/item_attributes/records.parquet``). ``per_field``
  (as LLMRec did) gives one source per field, ``item_attributes:<field>``, whose text is the bare value
  (``"Christopher Nolan"``); ``concat`` gives one source ``item_attributes`` with ``"director: X. country: Y"``.
* ``user_profiles``: the ``profile_text`` column of ``augment/user_profiles/records.parquet``.
* ``item_text`` / ``user_text`` from a file (``embed.item_text_file`` / ``embed.user_text_file``): free text written
  elsewhere (descriptions, LLM-written profiles), one row per external id, mapped onto the dataset's entities
  through its id vocabulary (:func:`text_table_inputs`, with alignment counts in the manifest).
* ``item_image``: the poster file of each item, from ``items.image_path`` (absolute or relative to the dataset
  folder) or from an image folder holding ``<item_id>.<ext>``.

Every source covers *all* entities of the dataset (items 0..n_items-1 or users 0..n_users-1) in index order; an
entity without input (no record, null or empty text, no poster) has input None and becomes a zero row with mask
False in the artifact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from ..artifacts.augmentation import read_records, records_path
from ..artifacts.dataset import ITEMS_FILE
from ..data.tables import read_table
from ..errors import DataError
from ..hashing import file_sha256

if TYPE_CHECKING:
    from ..ids import IdVocabulary
    from .config import TextTable

log = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("item_text", "item_attributes", "user_profiles", "user_text", "item_image")
AUGMENT_SOURCES = ("item_attributes", "user_profiles")
DEFAULT_ITEM_TEXT_FIELDS: tuple[str, ...] = ("title", "year", "genres", "tags")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
#: folder (under the embed output) of the concatenated attribute source; field names may not collide with it
CONCAT_FOLDER = "_concat"
#: columns of the attribute records that are bookkeeping, not attribute fields
_RECORD_META = frozenset({"item", "cache_key", "attempt", "raw", "raw_text", "reason", "error"})
#: unmatched ids listed in the manifest and in messages
UNMATCHED_EXAMPLES = 5


@dataclass(frozen=True)
class SourceInputs:
    """Inputs of one embedding artifact.

    Attributes:
        source: ``item_text``, ``item_image``, ``item_attributes:<field>``, ``item_attributes``, ``user_profiles`` or
            ``user_text``.
        entity: ``item`` or ``user``.
        kind: ``text`` (inputs are strings) or ``image`` (inputs are file paths).
        ids: int64 (n,) contiguous indices of the rows, 0..n-1 in order.
        inputs: per row, the text / file path, or None when the entity has no input.
        folder: artifact folder relative to the embed output (``item_attributes/director``).
        details: what was used (fields, record file), recorded in the manifest.
    """

    source: str
    entity: Literal["item", "user"]
    kind: Literal["text", "image"]
    ids: np.ndarray
    inputs: list[Any]
    folder: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_present(self) -> int:
        return sum(x is not None for x in self.inputs)


def _clean(value: Any) -> str | None:
    """A non-empty stripped string, or None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _as_text(value: Any) -> str | None:
    """Lists become ``"a, b"``; scalars their string form; empty -> None."""
    if isinstance(value, (list, tuple, pl.Series)):
        parts = [p for p in (_clean(v) for v in value) if p]
        return ", ".join(parts) or None
    return _clean(value)


def render_item_text(row: dict[str, Any], fields: Sequence[str]) -> str | None:
    """One item's text from the given columns of its row, or None when all of them are empty.

    ``title`` and ``year`` form ``"Title (1995)"``; ``genres`` becomes ``"Genres: a, b"``; any other column
    ``"<Column>: <value>"`` (lists joined by ", "). Parts are joined by ". ".
    """
    title = _as_text(row.get("title")) if "title" in fields else None
    year = _as_text(row.get("year")) if "year" in fields else None
    parts: list[str] = []
    if title and year:
        parts.append(f"{title} ({year})")
    elif title or year:
        parts.append(title or f"Year: {year}")
    for name in fields:
        if name in ("title", "year"):
            continue
        value = _as_text(row.get(name))
        if value:
            parts.append(f"{name.replace('_', ' ').capitalize()}: {value}")
    return ". ".join(parts) or None


def item_text_inputs(items: pl.DataFrame, fields: Sequence[str]) -> SourceInputs:
    """``item_text`` inputs from the dataset's items table (columns absent from the table are skipped)."""
    used = [f for f in fields if f in items.columns]
    skipped = [f for f in fields if f not in items.columns]
    if not used:
        raise DataError(f"items.parquet has none of the item text fields {list(fields)} (columns: {items.columns}); "
                        f"set embed.item_text_fields to some of these columns")
    if skipped:
        log.info("item_text: columns %s are not in items.parquet, using %s", skipped, used)
    texts = [render_item_text(row, used) for row in items.select(used).iter_rows(named=True)]
    return SourceInputs("item_text", "item", "text", _index(items, "item"), texts, "item_text",
                        {"fields": used, "skipped_fields": skipped, "text_lengths": text_lengths(texts)})


def text_lengths(texts: Sequence[str | None]) -> dict[str, float | int]:
    """Distribution of the lengths (characters) of the present texts: ``{"texts", "min", "p10", "p50", "p90",
    "max", "mean"}`` (only ``texts`` when there is none). Free text is described by its lengths: value counts of
    texts that are nearly all distinct say nothing."""
    lengths = np.array([len(t) for t in texts if t is not None], dtype=np.int64)
    if not len(lengths):
        return {"texts": 0}
    p10, p50, p90 = (int(v) for v in np.percentile(lengths, [10, 50, 90], method="nearest"))
    return {"texts": int(len(lengths)), "min": int(lengths.min()), "p10": p10, "p50": p50, "p90": p90,
            "max": int(lengths.max()), "mean": round(float(lengths.mean()), 1)}


def text_table_inputs(table: TextTable, vocabulary: IdVocabulary, source: str) -> SourceInputs:
    """Free-text inputs of `source` (``item_text`` / ``user_text``) from a file of (external id, text) rows.

    Each row's id is looked up in the dataset's `vocabulary` (ids compared as text). Rows whose id is unknown are
    left out and counted; an entity the file does not mention (or whose text is empty) has no input. Alignment
    checks: an id listed twice with different texts is an error; no entity with a text, or fewer than
    ``table.min_coverage`` of the dataset's entities, is an error naming examples of both id forms and the fix;
    any unmatched row or uncovered entity otherwise is a warning. The counts, examples of unmatched ids and the text lengths go to
    `details` (the artifact manifest's ``inputs``).
    """
    path = Path(table.path)
    entity = vocabulary.entity
    where = f"embed.{source}_file ({path})"
    if not path.is_file():
        raise DataError(f"{where}: the file does not exist; fix the path (relative paths are relative to the "
                        f"directory you run from)")
    frame = read_table(path)
    for column, key in ((table.id_column, "id_column"), (table.text_column, "text_column")):
        if column not in frame.columns:
            raise DataError(f"{where}: no column {column!r} (columns: {frame.columns}); set {key} to one of them")
    ids = ["" if v is None else str(v).strip() for v in frame[table.id_column].to_list()]
    texts = [_as_text(v) for v in frame[table.text_column].to_list()]
    by_id: dict[str, str | None] = {}
    for external, text in zip(ids, texts):
        if external in by_id and by_id[external] != text:
            raise DataError(f"{where}: {entity} id {external!r} is listed twice with different texts; keep one row "
                            f"per id")
        by_id[external] = text
    known = [i for i in by_id if i in vocabulary]
    unknown = [i for i in by_id if i not in vocabulary]
    inputs: list[str | None] = [None] * len(vocabulary)
    for external, index in zip(known, vocabulary.index(known).tolist()):
        inputs[index] = by_id[external]
    covered = sum(t is not None for t in inputs)
    coverage = covered / len(vocabulary) if len(vocabulary) else 0.0
    details: dict[str, Any] = {
        "file": str(path.resolve()), "file_sha256": file_sha256(path), "id_column": table.id_column,
        "text_column": table.text_column, "rows": frame.height, "ids": len(by_id), "matched_ids": len(known),
        "unmatched_ids": len(unknown), "unmatched_examples": unknown[:UNMATCHED_EXAMPLES],
        "empty_texts": sum(by_id[i] is None for i in known), "entities": len(vocabulary),
        "entities_with_text": covered, "coverage": round(coverage, 4), "min_coverage": table.min_coverage,
        "text_lengths": text_lengths(inputs)}
    if coverage < table.min_coverage or not covered:
        raise DataError(
            f"{where}: only {covered} of the dataset's {len(vocabulary)} {entity}s got a text ({coverage:.1%}, "
            f"min_coverage {table.min_coverage:.0%}); {len(unknown)} of the file's {len(by_id)} ids are not "
            f"{entity} ids of the dataset (e.g. {unknown[:3]}; the dataset's look like {vocabulary.ids[:3]}). Point "
            f"id_column at the column holding the dataset's {entity} ids, convert the ids to the dataset's form, "
            f"or lower min_coverage if the file really covers only part of the {entity}s")
    if unknown or covered < len(vocabulary):
        log.warning("%s: %d of %d %ss got a text (%.1f%%); %d ids of the file are not in the dataset (e.g. %s)",
                    where, covered, len(vocabulary), entity, 100 * coverage, len(unknown),
                    unknown[:UNMATCHED_EXAMPLES])
    return SourceInputs(source, entity, "text", np.arange(len(vocabulary), dtype=np.int64), inputs, source,
                        details)


def _index(frame: pl.DataFrame, entity: str) -> np.ndarray:
    ids = frame[entity].to_numpy().astype(np.int64)
    if not np.array_equal(ids, np.arange(len(ids))):
        raise DataError(f"the dataset's {entity} column is not 0..{len(ids) - 1} in order; rebuild the dataset with "
                        f"`python -m llmrec_local.prepare ... --force`")
    return ids


def _records(path: Path, key: str, n: int, what: str) -> pl.DataFrame:
    """An augmentation job's records, with its `key` column checked against the dataset's 0..n-1."""
    file = records_path(path)
    if not file.is_file():
        raise DataError(f"{file} does not exist: the {what} augmentation has not been run (or --augment points "
                        f"elsewhere); run `python -m llmrec_local.augment` or drop {what} from embed.sources")
    return read_records(path, key=key, n=n)


def _scatter(n: int, keys: np.ndarray, values: Sequence[str | None]) -> list[str | None]:
    out: list[str | None] = [None] * n
    for k, v in zip(keys.tolist(), values):
        out[k] = v
    return out


def attribute_inputs(augment: Path, n_items: int, *, mode: Literal["per_field", "concat"],
                     fields: Sequence[str] = (), unknown_as_missing: bool = False) -> list[SourceInputs]:
    """``item_attributes`` inputs from ``<augment>/item_attributes/records.parquet``.

    `fields` empty = every String column of the records except bookkeeping ones. With `unknown_as_missing`, the
    value "unknown" (any case) counts as no input; by default it is embedded like any value, as LLMRec did.
    """
    job = augment / "item_attributes"
    frame = _records(job, "item", n_items, "item_attributes")
    available = [c for c, dt in frame.schema.items() if dt == pl.String and c not in _RECORD_META]
    chosen = list(fields) or available
    missing = [f for f in chosen if f not in available]
    if missing:
        raise DataError(f"{records_path(job)}: attribute field {missing[0]!r} is not a text column (text "
                        f"columns: {available}); fix embed.attribute_fields")
    if not chosen:
        raise DataError(f"{records_path(job)} has no attribute text columns (columns: {frame.columns})")
    if CONCAT_FOLDER in chosen:
        raise DataError(f"{records_path(job)}: a field may not be named {CONCAT_FOLDER!r}; rename the column")
    keys = frame["item"].to_numpy().astype(np.int64)
    ids = np.arange(n_items, dtype=np.int64)

    def value(v: Any) -> str | None:
        text = _clean(v)
        if unknown_as_missing and text is not None and text.lower() == "unknown":
            return None
        return text

    columns = {f: [value(v) for v in frame[f].to_list()] for f in chosen}
    details = {"records": str(records_path(job)), "records_rows": frame.height,
               "unknown_as_missing": unknown_as_missing}
    if mode == "per_field":
        return [SourceInputs(f"item_attributes:{f}", "item", "text", ids, _scatter(n_items, keys, columns[f]),
                             f"item_attributes/{f}", {**details, "fields": [f]}) for f in chosen]
    joined = []
    for row in zip(*(columns[f] for f in chosen)):
        parts = [f"{f}: {v}" for f, v in zip(chosen, row) if v is not None]
        joined.append(". ".join(parts) or None)
    return [SourceInputs("item_attributes", "item", "text", ids, _scatter(n_items, keys, joined),
                         f"item_attributes/{CONCAT_FOLDER}", {**details, "fields": chosen})]


def profile_inputs(augment: Path, n_users: int) -> SourceInputs:
    """``user_profiles`` inputs: the ``profile_text`` column of ``<augment>/user_profiles/records.parquet``."""
    job = augment / "user_profiles"
    frame = _records(job, "user", n_users, "user_profiles")
    if "profile_text" not in frame.columns:
        raise DataError(f"{records_path(job)}: column 'profile_text' is missing (columns: {frame.columns}); "
                        f"the records must carry the rendered profile text")
    keys = frame["user"].to_numpy().astype(np.int64)
    texts = [_clean(v) for v in frame["profile_text"].to_list()]
    return SourceInputs("user_profiles", "user", "text", np.arange(n_users, dtype=np.int64),
                        _scatter(n_users, keys, texts), "user_profiles",
                        {"records": str(records_path(job)), "records_rows": frame.height,
                         "text_lengths": text_lengths(texts)})


def image_inputs(items: pl.DataFrame, dataset_dir: Path, image_dir: Path | None = None) -> SourceInputs:
    """``item_image`` inputs: poster paths from `image_dir` (``<item_id>.<ext>``) or ``items.image_path``.

    Paths are only located here; whether a file exists and decodes is decided when it is encoded.
    """
    ids = _index(items, "item")
    if image_dir is not None:
        if not image_dir.is_dir():
            raise DataError(f"image folder {image_dir} does not exist; fix embed.image_dir (--image-dir)")
        by_stem: dict[str, Path] = {}
        for p in sorted(image_dir.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                by_stem.setdefault(p.stem, p)
        paths: list[Path | None] = [by_stem.get(str(i)) for i in items["item_id"].to_list()]
        origin = {"image_dir": str(image_dir)}
    else:
        if "image_path" not in items.columns:
            raise DataError(f"{dataset_dir / ITEMS_FILE} has no image_path column; pass an image folder "
                            f"(embed.image_dir / --image-dir, files named <item_id>.jpg) or drop item_image "
                            f"from embed.sources")
        paths = [None if _clean(v) is None else (dataset_dir / str(v).strip()) for v in items["image_path"].to_list()]
        origin = {"image_path_column": True}
    return SourceInputs("item_image", "item", "image", ids, paths, "item_image", origin)
