"""The ``prepare`` stage: a raw source folder -> the dataset artifact (see :mod:`llmrec_local.artifacts.dataset`).

Pipeline (identical for every source format):
    load (format loader) -> refuse an empty table -> check ids against the item/user files -> bad ratings (blank,
    NaN: error or counted drop) -> timestamps to seconds (millisecond etc. columns detected) -> drop duplicate pairs
    (the latest interaction wins) -> rating threshold (implicit feedback) -> k-core
    -> split (random | leave_one_out | temporal | given) -> leakage checks [-> validation carved from train: given
    split with val_from_train]
    -> contiguous indices (ids sorted numerically when all are integers, else as text) -> write the artifact.

The artifact is written through ``ArtifactWriter`` (staged, then moved into place), so a failure at any step leaves
nothing at the output path; a complete artifact for the same config hash is reused.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from ..artifacts.base import ArtifactWriter, is_complete, read_manifest, reusable, write_summary
from ..artifacts.dataset import (
    ITEM,
    ITEM_ID,
    ITEMS_FILE,
    RATING,
    SPLIT,
    STAGE,
    TIMESTAMP,
    USER,
    USER_ID,
    table_schema,
    write_dataset,
)
from ..config import config_hash, to_dict
from ..data.filters import apply_threshold, bad_ratings, deduplicate, has_ratings, k_core, timestamp_unit
from ..data.loaders import load_source
from ..data.loaders.base import FEATURE_ROW, RawData, complete_items
from ..data.split import (
    carve_validation,
    check_leakage,
    split_leave_one_out,
    split_random,
    split_sizes,
    split_temporal,
    val_from_train_mode,
)
from ..errors import DataError
from ..hashing import cached_file_sha256s
from .config import PrepareConfig

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """The tables of a dataset artifact, in memory (output of :func:`build`)."""

    interactions: pl.DataFrame
    split: pl.DataFrame
    items: pl.DataFrame
    users: pl.DataFrame
    features: dict[str, tuple[Path, np.ndarray | None]]
    counts: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    #: Where the validation pairs come from (the manifest's ``validation``): origin ("source" | "val_from_train" |
    #: the split kind), pairs, users; with val_from_train also its value, mode, seed and the discarded source pairs.
    validation: dict[str, Any] = field(default_factory=dict)


def _counts(df: pl.DataFrame) -> dict[str, int]:
    return {"users": df[USER_ID].n_unique(), "items": df[ITEM_ID].n_unique(), "interactions": len(df)}


def _ordered(ids: pl.Series) -> pl.Series:
    """Unique ids in index order: numerically when every id is an integer (so "10" follows "9"), else as text."""
    ids = ids.unique()
    as_int = ids.cast(pl.Int64, strict=False)
    if as_int.null_count() == 0:
        return ids.gather(as_int.arg_sort())
    return ids.sort()


def _check_known(raw: RawData, config: PrepareConfig) -> None:
    """Interactions must point at items (users) that the item (user) file defines."""
    checks = [(raw.items, ITEM_ID, "items", raw.item_column), (raw.users, USER_ID, "users", raw.user_column)]
    for table, key, name, column in checks:
        if table is None:
            continue
        unknown = raw.interactions.join(table.select(key), on=key, how="anti")
        if len(unknown):
            where = raw.files.get("interactions", config.source)
            raise DataError(
                f"{where}: column {column!r} refers to {name[:-1]} {unknown[key][0]!r}, which is not in "
                f"{raw.files.get(name, name)} ({unknown[key].n_unique()} unknown {name}); add the missing {name} to "
                f"that file or remove their interactions"
            )


def _check_ratings(
    df: pl.DataFrame, raw: RawData, config: PrepareConfig, notes: list[str]
) -> tuple[pl.DataFrame, int]:
    """`df` without rows whose rating is blank, NaN or infinite, and how many were dropped: an error naming the
    file, the count and an example row unless ``on_bad_rating`` is "drop" (then counted and noted)."""
    bad = bad_ratings(df)
    n_bad = int(bad.sum())
    if not n_bad:
        return df, 0
    if config.on_bad_rating == "drop":
        notes.append(f"{n_bad:,} interaction(s) with a blank, NaN or infinite rating dropped (on_bad_rating='drop')")
        return df.filter(~bad), n_bad
    row = int(bad.arg_true()[0])
    example = df.row(row, named=True)
    raise DataError(
        f"{raw.files.get('interactions', config.source)}: {n_bad:,} interaction(s) have a blank, NaN or infinite "
        f"rating, e.g. data row {row + 1} (user {example[USER_ID]!r}, item {example[ITEM_ID]!r}, rating "
        f"{example[RATING]!r}); fix or remove those rows, or pass --on-bad-rating drop (recipe key "
        f"prepare.on_bad_rating = \"drop\") to drop them (the count is recorded)"
    )


def _timestamps_in_seconds(df: pl.DataFrame, raw: RawData, config: PrepareConfig, notes: list[str]) -> pl.DataFrame:
    """`df` with timestamps in unix seconds: a column in milliseconds (micro-, nanoseconds), told apart by its
    magnitude, is divided down and noted; a column mixing units is a DataError naming a value of each."""
    unit, divisor, mixed = timestamp_unit(df)
    where = raw.files.get("interactions", config.source)
    if mixed is not None:
        raise DataError(
            f"{where}: the timestamps mix units: {mixed[0]} reads as unix seconds but {mixed[1]} only as {unit}; "
            f"write every timestamp in one unit (unix seconds, or all in milliseconds)"
        )
    if divisor == 1:
        return df
    largest = df[TIMESTAMP].abs().max()
    notes.append(f"timestamps are in {unit} (largest {largest:,} > 1e11, beyond any date in seconds): divided by "
                 f"{divisor:,} to unix seconds")
    return df.with_columns(pl.col(TIMESTAMP).floordiv(divisor))


def _given(df: pl.DataFrame, config: PrepareConfig, notes: list[str]) -> tuple[pl.DataFrame, dict, dict]:
    """The source's own split, leak-checked (``on_leak``), with validation carved from train when
    ``val_from_train`` is set (the source's validation pairs are then discarded, counted and noted)."""
    where = f"{config.source} (train/val/test files)"
    validation: dict[str, Any] = {"origin": "source"}
    if config.val_from_train:
        discarded = int((df[SPLIT] == "val").sum())
        if discarded:
            notes.append(f"the source's {discarded:,} validation pair(s) were discarded: validation is carved from "
                         f"train (val_from_train={config.val_from_train:g})")
        df = df.filter(pl.col(SPLIT) != "val")
        # Pairs the source lists as test never become validation, even those on_leak='drop' keeps in train only.
        source_test = df.filter(pl.col(SPLIT) == "test").select(USER_ID, ITEM_ID)
        validation = {"origin": "val_from_train", "val_from_train": config.val_from_train,
                      "mode": val_from_train_mode(config.val_from_train), "seed": config.seed,
                      "source_val_pairs_discarded": discarded}
    df, leakage = check_leakage(df, on_leak=config.on_leak, source=where)
    if config.val_from_train:
        df, carved = carve_validation(df, config.val_from_train, config.seed, exclude=source_test)
        # Carving moves train pairs only, so this cannot fail: checked anyway as the invariant it is.
        df, _ = check_leakage(df, on_leak="error", source=f"{where}, validation carved from train")
        notes.append(f"validation carved from train (val_from_train={config.val_from_train:g}, seed {config.seed}): "
                     f"{carved['pairs']:,} pair(s) of {carved['users']:,} user(s)")
    elif df.filter(pl.col(SPLIT) == "val").is_empty():
        notes.append("no validation pairs: a training run that selects its model on validation will refuse this "
                     "dataset; set val_from_train (--val-from-train) to carve validation from train, or train with "
                     "selection = \"last\"")
    return df, leakage, validation


def _split(df: pl.DataFrame, raw: RawData, config: PrepareConfig, notes: list[str]) -> tuple[pl.DataFrame, dict, dict]:
    """`df` with a split column, the leakage counts and the manifest's ``validation`` record (where the validation
    pairs come from)."""
    source = str(raw.files.get("interactions", config.source))
    if config.split == "given":
        if not raw.has_split:
            raise DataError(
                f"{config.source}: split 'given' needs a source with its own split (LLMRec's train/val/test.json; "
                f"generic tables with a {config.split_col!r} column or train/test[/val] files; train.txt/test.txt "
                f"'uid item item ...' files), but this {raw.format} source has none; choose split 'random', "
                f"'leave_one_out' or 'temporal'"
            )
        return _given(df, config, notes)
    validation = {"origin": config.split}
    if raw.has_split:
        notes.append(f"the source's own train/val/test split was pooled and re-split ({config.split})")
        df = deduplicate(df.drop(SPLIT))
    if config.split == "random":
        df = split_random(df, config.test_ratio, config.val_ratio, config.seed)
    elif config.split == "leave_one_out":
        if df[TIMESTAMP].null_count() == len(df):
            notes.append("no timestamps: leave-one-out picks the held-out items at random (seeded)")
        df = split_leave_one_out(df, config.val_ratio > 0, config.seed)
    else:
        df = split_temporal(df, config.test_ratio, config.val_ratio, source)
        # A global time cut leaves some users with test data only: drop those (documented, counted), never error.
        return (*check_leakage(df, on_leak="drop", source=source), validation)
    # Our own splits cannot leak (pairs are unique, each user keeps a train pair); checked anyway as an invariant.
    return (*check_leakage(df, on_leak="error", source=source), validation)


def build(raw: RawData, config: PrepareConfig) -> Prepared:
    """Filter, split and index `raw` according to `config` (pure: nothing is written).

    Users are those with at least one positive interaction left (rows of a user file without any are not indexed);
    items follow ``config.item_catalog``.
    """
    notes = list(raw.notes)
    if raw.interactions.is_empty():
        raise DataError(
            f"{raw.files.get('interactions', config.source)}: the interactions table has no rows (a header without "
            f"data, a 0-row parquet, or only empty lists); put the interactions in it, or point prepare at the file "
            f"that holds them"
        )
    _check_known(raw, config)
    df = raw.interactions
    raw_counts = _counts(df)
    raw_counts["catalog_items"] = len(raw.items) if raw.items is not None else raw_counts["items"]
    counts: dict[str, Any] = {"raw": raw_counts}
    df, counts["bad_ratings_dropped"] = _check_ratings(df, raw, config, notes)
    df = _timestamps_in_seconds(df, raw, config, notes)
    rated = has_ratings(df)
    if not rated:
        notes.append("no ratings: every interaction is a positive (min_rating ignored)")
    # Duplicates go first so that the latest interaction of a pair is the one the threshold judges.
    df = deduplicate(df)
    counts["after_dedup"] = _counts(df)
    df = apply_threshold(df, config.min_rating)
    counts["after_threshold"] = _counts(df)
    df, rounds = k_core(df, config.user_min, config.item_min)
    counts["after_kcore"] = {**_counts(df), "rounds": rounds}
    if df.is_empty():
        raise DataError(
            f"{config.source}: no interactions left after filtering (min_rating={config.min_rating}, "
            f"user_min={config.user_min}, item_min={config.item_min}; {raw_counts['interactions']} before, e.g. "
            f"user {raw.interactions[USER_ID][0]!r} has none left); lower min_rating or the k-core thresholds"
        )
    df, leakage, validation = _split(df, raw, config, notes)
    if df.filter(pl.col(SPLIT) == "train").is_empty():
        raise DataError(f"{config.source}: no training interactions remain after the split; check the split settings")
    counts["leakage"] = leakage

    user_ids = _ordered(df[USER_ID])
    catalog = config.item_catalog
    if catalog == "auto":
        catalog = "all" if raw.all_items_by_default else "interacted"
    if catalog == "all" and raw.items is not None:
        item_ids = _ordered(raw.items[ITEM_ID])
    else:
        if catalog == "all":
            notes.append("item_catalog 'all' without an item file: only items with interactions are indexed")
        item_ids = _ordered(df[ITEM_ID])
    user_vocab = pl.DataFrame({USER_ID: user_ids, USER: pl.int_range(0, len(user_ids), eager=True, dtype=pl.Int64)})
    item_vocab = pl.DataFrame({ITEM_ID: item_ids, ITEM: pl.int_range(0, len(item_ids), eager=True, dtype=pl.Int64)})

    indexed = df.join(user_vocab, on=USER_ID).join(item_vocab, on=ITEM_ID).sort([USER, ITEM, SPLIT])
    interactions = indexed.select(USER, ITEM, RATING, TIMESTAMP).unique([USER, ITEM], keep="first",
                                                                         maintain_order=True)
    split = indexed.select(USER, ITEM, SPLIT)

    items = item_vocab.select(ITEM, ITEM_ID)
    if raw.items is not None:
        items = items.join(raw.items, on=ITEM_ID, how="left")
    items = complete_items(items).sort(ITEM)
    columns = table_schema(ITEMS_FILE)
    items = items.select(*columns, *(c for c in items.columns if c not in columns))
    users = user_vocab.select(USER, USER_ID)
    if raw.users is not None:
        users = users.join(raw.users, on=USER_ID, how="left")
    users = users.sort(USER)

    features: dict[str, tuple[Path, np.ndarray | None]] = {}
    if raw.features:
        rows = items[FEATURE_ROW].to_numpy()
        for name, path in raw.features.items():
            n_rows = np.load(path, mmap_mode="r").shape[0]
            identity = len(rows) == n_rows and bool(np.array_equal(rows, np.arange(n_rows)))
            features[name] = (path, None if identity else rows)
    if FEATURE_ROW in items.columns:
        items = items.drop(FEATURE_ROW)

    n_users, n_items, n_pairs = len(users), len(items), len(interactions)
    counts["final"] = {
        "users": n_users, "items": n_items, "interactions": n_pairs,
        "items_with_interactions": interactions[ITEM].n_unique(),
        "density": n_pairs / (n_users * n_items), "sparsity": 1.0 - n_pairs / (n_users * n_items),
        **split_sizes(indexed),
    }
    counts["had_ratings"] = rated
    validation.update(pairs=counts["final"]["val_pairs"], users=counts["final"]["val_users"])
    return Prepared(interactions, split, items, users, features, counts, notes, validation)


def format_summary(manifest: dict[str, Any]) -> str:
    """Markdown summary of a dataset manifest (also what the CLI prints)."""
    c = manifest["counts"]
    raw, final = c["raw"], c["final"]
    lines = [
        f"# Dataset summary: {manifest['source']}",
        "",
        f"format: {manifest['format']} ({manifest['variant']}); split: {manifest['config']['split']}; "
        f"seed: {manifest['config']['seed']}; config hash: {manifest['config_hash']}",
        "",
        "| step | users | items | interactions |",
        "|---|---:|---:|---:|",
        f"| raw (before filtering) | {raw['users']:,} | {raw['items']:,} {'rated' if c.get('had_ratings') else 'used'} "
        f"of {raw['catalog_items']:,} | {raw['interactions']:,} |",
    ]
    if c.get("bad_ratings_dropped"):
        lines.append(f"| blank/NaN ratings dropped | | | -{c['bad_ratings_dropped']:,} |")
    thr = manifest["config"]["min_rating"] if c.get("had_ratings") else None
    for key, label in (("after_dedup", "duplicates removed (latest kept)"),
                       ("after_threshold", f"rating >= {thr}" if thr is not None else "no threshold"),
                       ("after_kcore", f"k-core (users >= {manifest['config']['user_min']}, items >= "
                                       f"{manifest['config']['item_min']})")):
        s = c[key]
        lines.append(f"| {label} | {s['users']:,} | {s['items']:,} | {s['interactions']:,} |")
    lines.append(f"| final | {final['users']:,} | {final['items']:,} ({final['items_with_interactions']:,} with "
                 f"interactions) | {final['interactions']:,} |")
    lines += [
        "",
        f"sparsity: {100 * final['sparsity']:.3f}% (density {final['density']:.6f})",
        "",
        "| split | pairs | users |",
        "|---|---:|---:|",
    ]
    for name in ("train", "val", "test"):
        lines.append(f"| {name} | {final[f'{name}_pairs']:,} | {final[f'{name}_users']:,} |")
    validation = manifest.get("validation") or {}
    if validation.get("origin") == "val_from_train":
        lines += ["", f"validation: carved from train (val_from_train={validation['val_from_train']:g}, "
                      f"{validation['mode']}, seed {validation['seed']})"]
    leak = {k: v for k, v in c.get("leakage", {}).items() if v}
    if leak:
        lines += ["", "dropped val/test pairs: " + ", ".join(f"{k}={v:,}" for k, v in leak.items())]
    if manifest.get("features"):
        lines += ["", "features: " + ", ".join(f"{k} {tuple(v)}" for k, v in manifest["features"].items())]
    if manifest.get("notes"):
        lines += ["", "notes:"] + [f"- {n}" for n in manifest["notes"]]
    return "\n".join(lines) + "\n"


def _source_digests(input_hashes: dict[str, dict[str, str]]) -> dict[str, str]:
    """The provenance record of the source files read: ``{"source:<name>": sha256}``."""
    return {f"source:{name}": rec["sha256"] for name, rec in input_hashes.items()}


def _current_sources(out: Path) -> dict[str, str] | None:
    """The source files a complete dataset at `out` was built from, hashed as they are *now* (hashes cached by
    size, mtime and inode, so a rerun costs a stat per file); None when there is no complete dataset there.
    A file that has gone is reported as such, so that the reuse check names it."""
    if not is_complete(out):
        return None
    recorded = read_manifest(out).get("inputs") or {}
    present = [Path(rec["path"]) for rec in recorded.values() if Path(rec["path"]).is_file()]
    now = cached_file_sha256s(present)
    return {f"source:{name}": now.get(Path(rec["path"]).resolve(), "missing") for name, rec in recorded.items()}


def _write(prepared: Prepared, raw: RawData, config: PrepareConfig, out: Path, chash: str,
           input_hashes: dict[str, dict[str, str]]) -> None:
    with ArtifactWriter(out, stage=STAGE, config_hash=chash, inputs=_source_digests(input_hashes)) as w:
        feature_shapes = write_dataset(w.dir, w.manifest, interactions=prepared.interactions, split=prepared.split,
                                       items=prepared.items, users=prepared.users, features=prepared.features)
        w.manifest.update({
            "source": str(config.source), "format": raw.format, "variant": raw.variant, "config": to_dict(config),
            "seed": config.seed, "counts": prepared.counts, "inputs": input_hashes, "notes": prepared.notes,
            "features": feature_shapes, "n_users": len(prepared.users), "n_items": len(prepared.items),
            "validation": prepared.validation,
        })
        write_summary(w.dir, format_summary({**w.manifest, "config_hash": chash}))


def prepare(config: PrepareConfig, out: Path, *, force: bool = False) -> Path:
    """Build the dataset artifact for `config` at `out` (skipped when a complete one for the same config exists).

    Raises DataError for bad input (naming file, column, example value and fix) and ArtifactError when `out` holds a
    dataset of another config or built from source files whose content has changed since (pass ``force=True`` to
    rebuild). Returns `out`.
    """
    out = Path(out)
    chash = config_hash(config)
    # Reuse needs the same config *and* the same source files: an edited ratings file must not be served stale.
    if reusable(out, STAGE, chash, force=force, inputs=_current_sources(out)):
        log.info("dataset %s is complete for config %s; skipping (use --force to rebuild)", out, chash)
        return out
    with tqdm(total=4, desc="prepare", unit="step", file=sys.stderr, disable=None) as bar:
        bar.set_postfix_str("load")
        raw = load_source(config)
        bar.update()
        bar.set_postfix_str("filter+split")
        prepared = build(raw, config)
        bar.update()
        bar.set_postfix_str("hash inputs")
        digests = cached_file_sha256s(list(raw.files.values()))
        input_hashes = {name: {"path": str(p), "sha256": digests[Path(p).resolve()]}
                        for name, p in sorted(raw.files.items())}
        bar.update()
        bar.set_postfix_str("write")
        _write(prepared, raw, config, out, chash, input_hashes)
        bar.update()
    log.info("wrote dataset %s: %d users, %d items, %d interactions", out, len(prepared.users),
             len(prepared.items), len(prepared.interactions))
    return out
