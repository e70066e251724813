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
  elsewhere (descriptions, LLM-written profiles), one row per external id (the dataset's, or another id translated by
  a separate id map file), mapped onto the dataset's entities through its id vocabulary (:func:`text_table_inputs`,
  with alignment counts in the manifest).
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
    from .config import IdMap, TextTable

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


def _read_columns(path: Path, columns: Sequence[tuple[str, str]], where: str) -> pl.DataFrame:
    """The table at `path`, checked to exist and to hold each ``(column, setting)`` of `columns`; id columns of a
    CSV/TSV are read as written (``0114709`` stays ``"0114709"``), since ids are compared as text."""
    if not path.is_file():
        raise DataError(f"{where}: the file does not exist; fix the path (relative paths are relative to the "
                        f"directory you run from)")
    frame = read_table(path, text_columns=[c for c, key in columns if key != "text_column"])
    for column, key in columns:
        if column not in frame.columns:
            raise DataError(f"{where}: no column {column!r} (columns: {frame.columns}); set {key} to one of them")
    return frame


def _id_text(value: Any) -> str:
    """An id as compared across files: its stripped text form ("" for null)."""
    return "" if value is None else str(value).strip()


def read_id_map(id_map: IdMap, where: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The map ``from id -> dataset id`` of `id_map` and its manifest record.

    Rows with an empty key or target are skipped (a links file leaves some targets blank) and counted; a row
    repeated verbatim is harmless; a key listed with two different targets is a DataError naming the key.
    """
    path = Path(id_map.path)
    where = f"{where} id_map ({path})"
    frame = _read_columns(path, ((id_map.from_column, "from_column"), (id_map.to_column, "to_column")), where)
    mapping: dict[str, str] = {}
    skipped = 0
    for key, target in zip(map(_id_text, frame[id_map.from_column].to_list()),
                           map(_id_text, frame[id_map.to_column].to_list())):
        if not key or not target:
            skipped += 1
            continue
        if mapping.setdefault(key, target) != target:
            raise DataError(f"{where}: {id_map.from_column} {key!r} is listed twice, mapped to {mapping[key]!r} "
                            f"and to {target!r}; keep one row per {id_map.from_column} (a map sends each id to one "
                            f"{id_map.to_column})")
    return mapping, {"file": str(path.resolve()), "file_sha256": file_sha256(path),
                     "from_column": id_map.from_column, "to_column": id_map.to_column, "rows": frame.height,
                     "keys": len(mapping), "rows_without_key_or_target": skipped}


def text_table_inputs(table: TextTable, vocabulary: IdVocabulary, source: str) -> SourceInputs:
    """Free-text inputs of `source` (``item_text`` / ``user_text``) from a file of (id, text) rows.

    Each row's id (through ``table.id_map`` when set: text id -> the map's dataset id) is looked up in the dataset's
    `vocabulary` (ids compared as text). Rows whose id is unknown (or, with a map, absent from the map) are left out
    and counted; an entity the file does not mention (or whose text is empty) has no input. Alignment checks: an id
    listed twice with different texts is an error, and so are two text ids that the map sends to one entity with
    different texts; no entity with a text, or fewer than ``table.min_coverage`` of the dataset's entities, is an
    error naming examples of the id forms and the fix; any unmatched row or uncovered entity otherwise is a
    warning. The counts (of the text table's ids: matched ones reached a dataset entity), examples of unmatched ids
    and the text lengths go to `details` (the artifact manifest's ``inputs``; ``id_map`` has the map's own counts).
    """
    path = Path(table.path)
    entity = vocabulary.entity
    where = f"embed.{source}_file ({path})"
    frame = _read_columns(path, ((table.id_column, "id_column"), (table.text_column, "text_column")), where)
    by_id: dict[str, str | None] = {}
    for external, text in zip(map(_id_text, frame[table.id_column].to_list()),
                              map(_as_text, frame[table.text_column].to_list())):
        if external in by_id and by_id[external] != text:
            raise DataError(f"{where}: {entity} id {external!r} is listed twice with different texts; keep one row "
                            f"per id")
        by_id[external] = text
    map_details: dict[str, Any] | None = None
    if table.id_map is not None:
        mapping, map_details = read_id_map(table.id_map, where)
        not_in_map = [i for i in by_id if i not in mapping]
        target = {i: mapping[i] for i in by_id if i in mapping}
        outside = [i for i in target if target[i] not in vocabulary]
        map_details.update(not_in_map=len(not_in_map), not_in_map_examples=not_in_map[:UNMATCHED_EXAMPLES],
                           mapped_outside_dataset=len(outside),
                           mapped_outside_examples=[f"{i} -> {target[i]}" for i in outside[:UNMATCHED_EXAMPLES]])
    else:
        target = dict(zip(by_id, by_id))
    known = [i for i in target if target[i] in vocabulary]
    unknown = [i for i in by_id if i not in target or target[i] not in vocabulary]  # by_id minus known, in order
    inputs: list[str | None] = [None] * len(vocabulary)
    reached_by: dict[int, str] = {}
    for external, index in zip(known, vocabulary.index([target[i] for i in known]).tolist()):
        if index in reached_by and by_id[reached_by[index]] != by_id[external]:
            raise DataError(f"{where}: ids {reached_by[index]!r} and {external!r} of the text table both map to "
                            f"{entity} id {target[external]!r} with different texts; keep one of them in the id_map "
                            f"(or in the text table), so each {entity} gets one text")
        reached_by.setdefault(index, external)
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
    if map_details is not None:
        details["id_map"] = map_details
    if coverage < table.min_coverage or not covered:
        if map_details is not None:
            cause = (f"{map_details['not_in_map']} of the file's {len(by_id)} ids are not {table.id_map.from_column} "
                     f"values of the id_map (e.g. {map_details['not_in_map_examples'][:3]}; the map's look like "
                     f"{list(mapping)[:3]}) and {map_details['mapped_outside_dataset']} map to ids that are not "
                     f"{entity} ids of the dataset (e.g. {map_details['mapped_outside_examples'][:3]}; the dataset's "
                     f"look like {vocabulary.ids[:3]}). Point id_column at the column the map's "
                     f"{table.id_map.from_column} holds and to_column at the dataset's {entity} ids, ")
        else:
            cause = (f"{len(unknown)} of the file's {len(by_id)} ids are not {entity} ids of the dataset (e.g. "
                     f"{unknown[:3]}; the dataset's look like {vocabulary.ids[:3]}). Point id_column at the column "
                     f"holding the dataset's {entity} ids, add an id_map when the file uses other ids, ")
        raise DataError(
            f"{where}: only {covered} of the dataset's {len(vocabulary)} {entity}s got a text ({coverage:.1%}, "
            f"min_coverage {table.min_coverage:.0%}); {cause}convert the ids to the dataset's form, or lower "
            f"min_coverage if the file really covers only part of the {entity}s")
    if unknown or covered < len(vocabulary):
        log.warning("%s: %d of %d %ss got a text (%.1f%%); %d ids of the file %s (e.g. %s)",
                    where, covered, len(vocabulary), entity, 100 * coverage, len(unknown),
                    "are not in the id_map or map outside the dataset" if map_details is not None
                    else "are not in the dataset", unknown[:UNMATCHED_EXAMPLES])
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
