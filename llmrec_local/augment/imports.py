"""Import augmentations made elsewhere into this project's artifact formats, so training can use them without
running our LLM stage.

Accepted inputs:

- pairs: a parquet/CSV table (user, pos_item, neg_item as indices, or user_id, pos_item_id, neg_item_id as external
  ids) or LLMRec's pickle ``augmented_sample_dict`` ``{uid: {0: pos_iid, 1: neg_iid}}``
  -> ``<out>/augment/pairs/``;
- item attributes: a table (item or item_id + one column per field) or LLMRec's ``augmented_attribute_dict``
  ``{iid: {0: director, 1: country, 2: language}}`` -> ``<out>/augment/item_attributes/`` (values canonicalised
  exactly as our own job's answers are);
- user profiles: a table (user or user_id + age, gender, liked_genres, disliked_genres, liked_directors, country,
  language and/or profile_text; list columns may be lists or strings split on ``|`` or ``,``) or LLMRec's
  ``augmented_user_profiling_dict`` ``{uid: raw profile string}`` (kept as profile_text; the structured
  fields stay "unknown") -> ``<out>/augment/user_profiles/``;
- LLMRec's embedding pickles: ``augmented_user_init_embedding`` ``{uid: ndarray(1536)}`` -> embedding artifact
  ``<out>/embed/user_profiles/``; ``augmented_atttribute_embedding_dict`` ``{field: {iid: vector}}`` -> one
  embedding artifact per field ``<out>/embed/item_attributes/<field>/`` (the layout of `llmrec_local.embed`).

LLMRec's ids are its contiguous indices; they are matched to this dataset through its vocabulary (``user_id`` /
``item_id`` equal to ``str(uid)``, as the LLMRec loader writes them), so a file for another dataset fails loudly.
Pickles are read only through the restricted unpickler `llmrec_local.data.safe_pickle` (numpy/scipy objects and
plain containers; nothing executable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..artifacts.augmentation import STAGE as AUGMENT_STAGE
from ..artifacts.augmentation import failure_schema, write_failures, write_records, write_usage
from ..artifacts.base import ArtifactWriter, reusable, write_summary
from ..artifacts.embeddings import STAGE as EMBED_STAGE
from ..artifacts.embeddings import write_embedding
from ..data.tables import read_table
from ..errors import DataError
from ..hashing import file_sha256, stable_hash
from .canonical import canonical_field, canonical_name
from .jobs import DatasetLike
from .parse import profile_text
from .schemas import AGE_BUCKETS, GENDERS, UNKNOWN

PICKLE_NAMES = {
    "pairs": "augmented_sample_dict", "attributes": "augmented_attribute_dict",
    "profiles": "augmented_user_profiling_dict", "user_embedding": "augmented_user_init_embedding",
    "attribute_embedding": "augmented_atttribute_embedding_dict",
}
_PROFILE_LISTS = ("liked_genres", "disliked_genres", "liked_directors")


def _is_table(path: Path) -> bool:
    return path.suffix in (".parquet", ".csv", ".tsv")


def _load_pickle(path: Path) -> Any:
    from ..data.safe_pickle import safe_load

    return safe_load(path)


def _index(values: Sequence[Any], dataset: DatasetLike, entity: str, source: Path) -> list[int]:
    """External ids (LLMRec's integer keys or strings) -> this dataset's indices, through its id vocabulary;
    DataError naming the first unknown id and `source`."""
    return dataset.vocabulary(entity).index(values, where=str(source)).tolist()


def _entity_column(frame: pl.DataFrame, entity: str, dataset: DatasetLike, source: Path,
                   id_cols: Sequence[str] = ()) -> pl.DataFrame:
    """Make sure `frame` has the int index column `entity` (mapping ``<entity>_id`` through the vocabulary)."""
    if entity in frame.columns:
        frame = frame.with_columns(pl.col(entity).cast(pl.Int64))
        n = dataset.n_users if entity == "user" else dataset.n_items
        bad = frame.filter((pl.col(entity) < 0) | (pl.col(entity) >= n))
        if bad.height:
            raise DataError(f"{source}: {entity} index {bad[entity][0]} is outside [0, {n}); use {entity}_id "
                            "columns for external ids")
        return frame
    id_col = f"{entity}_id"
    if id_col not in frame.columns:
        raise DataError(f"{source}: needs a column {entity!r} (index) or {id_col!r} (external id); columns are "
                        f"{frame.columns}")
    return frame.with_columns(pl.Series(entity, _index(frame[id_col].to_list(), dataset, entity, source),
                                        dtype=pl.Int64)).drop(id_col)


def _write(out: Path, artifact: str, job: str, entity: str, records: pl.DataFrame, source: Path,
           force: bool, extra: Mapping[str, Any] | None = None) -> Path:
    target = out / "augment" / artifact
    chash = stable_hash({"import": job, "sha256": file_sha256(source), "rows": records.height})
    if reusable(target, AUGMENT_STAGE, chash, force=force):
        return target
    dup = records.filter(pl.col(entity).is_duplicated())
    if dup.height:
        raise DataError(f"{source}: {entity} {dup[entity][0]} has more than one row; keep one per {entity}")
    with ArtifactWriter(target, stage=AUGMENT_STAGE, config_hash=chash) as w:
        write_records(w.dir, w.manifest, records.sort(entity))
        write_failures(w.dir, pl.DataFrame(schema=failure_schema()))
        write_usage(w.dir, {"requests_sent": 0, "imported_from": str(source)}, indent=None)
        write_summary(w.dir, f"# Imported `{job}` ({artifact})\n\n- source: `{source}`\n- records: {records.height}\n")
        w.manifest.update({"job": job, "artifact": artifact, "entity": entity, "imported": True,
                           "model": {"alias": "external", "model_id": "external", "backend": "import"},
                           "inputs": {"source": str(source), "sha256": file_sha256(source)},
                           "counts": {"valid": records.height, "tasks": records.height}, **(extra or {})})
    return target


def import_pairs(source: str | Path, dataset: DatasetLike, out: str | Path, *, force: bool = False) -> Path:
    """Pairs from a table or LLMRec's ``augmented_sample_dict`` -> ``<out>/augment/pairs``."""
    source = Path(source)
    if _is_table(source):
        frame = read_table(source)
        frame = _entity_column(frame, "user", dataset, source)
        for col in ("pos_item", "neg_item"):
            if col not in frame.columns and f"{col}_id" in frame.columns:
                frame = frame.with_columns(pl.Series(col, _index(frame[f"{col}_id"].to_list(), dataset, "item",
                                                                 source), dtype=pl.Int64))
            if col not in frame.columns:
                raise DataError(f"{source}: needs column {col!r} or {col + '_id'!r}; columns are {frame.columns}")
        users, pos, neg = frame["user"].to_list(), frame["pos_item"].to_list(), frame["neg_item"].to_list()
    else:
        data = _load_pickle(source)
        if not isinstance(data, Mapping):
            raise DataError(f"{source}: expected LLMRec's augmented_sample_dict {{uid: {{0: pos, 1: neg}}}}, found "
                            f"a {type(data).__name__}")
        keys = list(data)
        try:
            pairs = [(data[k][0], data[k][1]) for k in keys]
        except (KeyError, TypeError, IndexError) as exc:
            raise DataError(f"{source}: an entry is not {{0: pos, 1: neg}} ({exc!r}); not an augmented_sample_dict") \
                from exc
        users = _index(keys, dataset, "user", source)
        pos = _index([p for p, _ in pairs], dataset, "item", source)
        neg = _index([n for _, n in pairs], dataset, "item", source)
    n = dataset.n_items
    bad = [i for i in (*pos, *neg) if not 0 <= int(i) < n]
    if bad:
        raise DataError(f"{source}: item index {bad[0]} is outside [0, {n})")
    records = pl.DataFrame({"user": users, "pos_item": pos, "neg_item": neg}, schema={
        "user": pl.Int64, "pos_item": pl.Int64, "neg_item": pl.Int64}).with_columns(
        pl.lit(None, dtype=pl.Int32).alias("pos_position"), pl.lit(None, dtype=pl.Int32).alias("neg_position"),
        pl.lit(0, dtype=pl.Int32).alias("attempt"), pl.lit(None, dtype=pl.String).alias("cache_key"))
    same = records.filter(pl.col("pos_item") == pl.col("neg_item")).height
    return _write(Path(out), "pairs", "pairs", "user", records, source, force,
                  {"notes": {"pos_equals_neg_rows": same}})


def import_attributes(source: str | Path, dataset: DatasetLike, out: str | Path, *,
                      fields: Sequence[str] = ("director", "country", "language"), force: bool = False) -> Path:
    """Item attributes from a table or LLMRec's ``augmented_attribute_dict`` -> ``<out>/augment/item_attributes``
    (country/language canonicalised, placeholders -> "unknown")."""
    source = Path(source)
    if _is_table(source):
        frame = _entity_column(read_table(source), "item", dataset, source)
        missing = [f for f in fields if f not in frame.columns]
        if missing:
            raise DataError(f"{source}: attribute column(s) {missing} missing; columns are {frame.columns} "
                            "(choose the fields with --fields)")
        items = frame["item"].to_list()
        values = {f: [None if v is None else str(v) for v in frame[f].to_list()] for f in fields}
    else:
        data = _load_pickle(source)
        if not isinstance(data, Mapping):
            raise DataError(f"{source}: expected LLMRec's augmented_attribute_dict {{iid: {{0: director, 1: "
                            f"country, 2: language}}}}, found a {type(data).__name__}")
        keys = list(data)
        items = _index(keys, dataset, "item", source)
        values = {f: [None if data[k].get(j) is None else str(data[k].get(j)) for k in keys]
                  for j, f in enumerate(fields)}
    titles = dict(zip(dataset.items()["item"].to_list(), dataset.items()["title"].to_list())) \
        if "title" in dataset.items().columns else {}
    columns = {f: [canonical_field(f, v, echoes=(titles.get(i) or "",)) for i, v in zip(items, values[f])]
               for f in fields}
    records = pl.DataFrame({"item": items, **columns}, schema={"item": pl.Int64, **{f: pl.String for f in fields}})
    records = records.with_columns(pl.lit(0, dtype=pl.Int32).alias("attempt"),
                                   pl.lit(None, dtype=pl.String).alias("cache_key"))
    return _write(Path(out), "item_attributes", "attributes", "item", records, source, force,
                  {"settings": {"fields": list(fields)}})


def _split_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, pl.Series)):
        parts = [str(v) for v in value]
    else:
        text = str(value)
        parts = text.split("|") if "|" in text else text.split(",")
    return [p for p in (canonical_name(p) for p in parts) if p != UNKNOWN]


def import_profiles(source: str | Path, dataset: DatasetLike, out: str | Path, *, force: bool = False) -> Path:
    """User profiles from a table or LLMRec's ``augmented_user_profiling_dict`` -> ``<out>/augment/user_profiles``.

    Structured values are normalised like our own job's (age bucket or "unknown", canonical country/language);
    a missing profile_text is rendered from the fields; LLMRec's raw strings become profile_text as-is."""
    source = Path(source)
    rows: list[dict[str, Any]] = []
    if _is_table(source):
        frame = _entity_column(read_table(source), "user", dataset, source)
        known = {"age", "gender", *_PROFILE_LISTS, "country", "language", "profile_text"}
        if not known & set(frame.columns):
            raise DataError(f"{source}: no profile column among {sorted(known)}; columns are {frame.columns}")
        for row in frame.iter_rows(named=True):
            age = str(row.get("age") or UNKNOWN).strip().lower()
            gender = str(row.get("gender") or UNKNOWN).strip().lower()
            rec = {"user": row["user"], "age": age if age in AGE_BUCKETS else UNKNOWN,
                   "gender": gender if gender in GENDERS else UNKNOWN,
                   **{c: _split_list(row.get(c)) for c in _PROFILE_LISTS},
                   "country": canonical_field("country", row.get("country")),
                   "language": canonical_field("language", row.get("language"))}
            rec["profile_text"] = row.get("profile_text") or profile_text(rec)
            rows.append(rec)
    else:
        data = _load_pickle(source)
        if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
            raise DataError(f"{source}: expected LLMRec's augmented_user_profiling_dict {{uid: profile string}}")
        keys = list(data)
        for user, key in zip(_index(keys, dataset, "user", source), keys):
            rows.append({"user": user, "age": UNKNOWN, "gender": UNKNOWN, "liked_genres": [],
                         "disliked_genres": [], "liked_directors": [], "country": UNKNOWN, "language": UNKNOWN,
                         "profile_text": data[key]})
    lst = pl.List(pl.String)
    records = pl.DataFrame(rows, schema={
        "user": pl.Int64, "age": pl.String, "gender": pl.String, "liked_genres": lst, "disliked_genres": lst,
        "liked_directors": lst, "country": pl.String, "language": pl.String, "profile_text": pl.String})
    records = records.with_columns(pl.lit(0, dtype=pl.Int32).alias("attempt"),
                                   pl.lit(None, dtype=pl.String).alias("cache_key"))
    return _write(Path(out), "user_profiles", "profiles", "user", records, source, force)


def _write_embedding(target: Path, ids: list[int], vectors: np.ndarray, *, entity: str, source_name: str,
                     source: Path, force: bool) -> Path:
    chash = stable_hash({"import": source_name, "sha256": file_sha256(source)})
    if reusable(target, EMBED_STAGE, chash, force=force):
        return target
    order = np.argsort(ids, kind="stable")
    with ArtifactWriter(target, stage=EMBED_STAGE, config_hash=chash) as w:
        # No mask: every imported row has a vector.
        write_embedding(w.dir, w.manifest, entity, np.asarray(ids, dtype=np.int64)[order], vectors[order])
        w.manifest.update({"source": source_name, "entity": entity, "dim": int(vectors.shape[1]),
                           "model": "text-embedding-ada-002 (LLMRec release, imported)",
                           "inputs": {"file": str(source), "sha256": file_sha256(source)},
                           "counts": {"rows": len(ids)}})
    return target


def _stack(vectors: Sequence[Any], source: Path, what: str) -> np.ndarray:
    try:
        array = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for v in vectors])
    except ValueError as exc:
        raise DataError(f"{source}: {what} vectors have different lengths ({exc})") from exc
    if not np.isfinite(array).all():
        raise DataError(f"{source}: {what} vectors contain NaN or inf")
    return array


def import_llmrec_embeddings(folder: str | Path, dataset: DatasetLike, out: str | Path, *,
                             force: bool = False) -> dict[str, Path]:
    """LLMRec's ``augmented_user_init_embedding`` and ``augmented_atttribute_embedding_dict`` found in `folder`
    -> embedding artifacts under ``<out>/embed/`` (``user_profiles``, ``item_attributes/<field>``)."""
    folder, out = Path(folder), Path(out)
    written: dict[str, Path] = {}
    user_file = folder / PICKLE_NAMES["user_embedding"]
    if user_file.is_file():
        data = _load_pickle(user_file)
        if not isinstance(data, Mapping):
            raise DataError(f"{user_file}: expected {{uid: vector}}, found a {type(data).__name__}")
        keys = list(data)
        ids = _index(keys, dataset, "user", user_file)
        written["user_profiles"] = _write_embedding(
            out / "embed" / "user_profiles", ids, _stack([data[k] for k in keys], user_file, "user"),
            entity="user", source_name="user_profiles", source=user_file, force=force)
    attr_file = folder / PICKLE_NAMES["attribute_embedding"]
    if attr_file.is_file():
        data = _load_pickle(attr_file)
        if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
            raise DataError(f"{attr_file}: expected {{field: {{iid: vector}}}}")
        for field in data:
            keys = list(data[field])
            ids = _index(keys, dataset, "item", attr_file)
            name = f"item_attributes:{field}"
            written[name] = _write_embedding(
                out / "embed" / "item_attributes" / str(field), ids,
                _stack([data[field][k] for k in keys], attr_file, name), entity="item", source_name=name,
                source=attr_file, force=force)
    if not written:
        raise DataError(f"{folder} holds neither {PICKLE_NAMES['user_embedding']} nor "
                        f"{PICKLE_NAMES['attribute_embedding']}; point to the folder of LLMRec's released files")
    return written


def import_llmrec_release(folder: str | Path, dataset: DatasetLike, out: str | Path, *,
                          force: bool = False) -> dict[str, Path]:
    """Every LLMRec release file present in `folder`: augmented pairs, attributes and profiles (raw strings), and
    the two embedding pickles."""
    folder = Path(folder)
    written: dict[str, Path] = {}
    steps = (("pairs", import_pairs), ("attributes", import_attributes), ("profiles", import_profiles))
    for job, fn in steps:
        path = folder / PICKLE_NAMES[job]
        if path.is_file():
            written[job] = fn(path, dataset, out, force=force)
    if any((folder / PICKLE_NAMES[k]).is_file() for k in ("user_embedding", "attribute_embedding")):
        written.update(import_llmrec_embeddings(folder, dataset, out, force=force))
    if not written:
        raise DataError(f"{folder} holds none of LLMRec's release files {sorted(PICKLE_NAMES.values())}")
    return written
