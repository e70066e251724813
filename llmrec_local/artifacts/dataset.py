"""Dataset artifacts (stage ``prepare``): file names, canonical columns and dtypes, the writer and the readers.

The only module that names a dataset artifact's files; every other stage reads datasets through :class:`Dataset`
or :func:`load_dataset`. Layout (items and users may carry extra columns: item text such as ``tags``, user
attributes such as ``age``):

- ``interactions.parquet``: user (Int64), item (Int64), rating (Float64, null if implicit), timestamp (Int64 unix
  seconds, null if absent): the positive interactions after preparation.
- ``split.parquet``: user, item (Int64), split (String: "train" | "val" | "test").
- ``items.parquet``: item (Int64, 0..n_items-1, sorted), item_id (String), title (String), year (Int32),
  genres (List[String]), image_path (String).
- ``users.parquet``: user (Int64, 0..n_users-1, sorted), user_id (String).
- ``features/<name>.npy`` (optional): dense item features shipped by the source (LLMRec's ``text_feat``), row i =
  item i.
- ``summary.md``: the prepare stage's human-readable counts.

polars is imported inside the functions that read or check tables, never at module level: `load_dataset` with
in-memory arrays (and so training and evaluation) must work on hosts without polars.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.arrays import InteractionArrays
from ..errors import DataError
from ..hashing import stable_hash
from ..ids import IdVocabulary
from .base import artifact_digest, check_kind, require_stage, stamp_kind

if TYPE_CHECKING:
    import polars as pl

STAGE = "prepare"
KIND = "dataset"
SCHEMA_VERSION = 1

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
TABLES = (INTERACTIONS_FILE, SPLIT_FILE, ITEMS_FILE, USERS_FILE)

REBUILD_FIX = "rebuild the dataset with `python -m llmrec_local.prepare ... --force`"


def table_schema(table: str) -> dict[str, pl.DataType]:
    """Required columns and dtypes of the dataset table `table` (one of `TABLES`), in column order."""
    import polars as pl

    schemas: dict[str, dict[str, pl.DataType]] = {
        INTERACTIONS_FILE: {USER: pl.Int64(), ITEM: pl.Int64(), RATING: pl.Float64(), TIMESTAMP: pl.Int64()},
        SPLIT_FILE: {USER: pl.Int64(), ITEM: pl.Int64(), SPLIT: pl.String()},
        ITEMS_FILE: {ITEM: pl.Int64(), ITEM_ID: pl.String(), TITLE: pl.String(), YEAR: pl.Int32(),
                     GENRES: pl.List(pl.String()), IMAGE_PATH: pl.String()},
        USERS_FILE: {USER: pl.Int64(), USER_ID: pl.String()},
    }
    return schemas[table]


def validate(
    df: pl.DataFrame, schema: Mapping[str, pl.DataType], *, file: str | Path, fix: str = REBUILD_FIX
) -> None:
    """Check that `df` has every column of `schema` with exactly that dtype (extra columns are allowed)."""
    from ..data.checks import example_value, require_columns  # imports polars

    require_columns(df, schema, file=file, fix=fix)
    for name, dtype in schema.items():
        if df[name].dtype != dtype:
            sample = df[name].drop_nulls()
            raise DataError(
                f"{file}: column {name!r} has dtype {df[name].dtype} (example value {example_value(sample)}), "
                f"expected {dtype}; {fix}"
            )


def check_dense_index(df: pl.DataFrame, column: str, *, file: str | Path, fix: str = REBUILD_FIX) -> None:
    """Check that `column` is exactly 0..len(df)-1 in order (the contiguous index the arrays rely on)."""
    import polars as pl

    values = df[column]
    expected = pl.int_range(0, len(df), eager=True, dtype=pl.Int64)
    wrong = values.ne_missing(expected)
    if wrong.any():
        row = int(wrong.arg_true()[0])
        raise DataError(
            f"{file}: column {column!r} must be 0..{len(df) - 1} in order, but row {row} holds {values[row]!r}; {fix}"
        )


def write_dataset(folder: Path, manifest: dict[str, Any], *, interactions: pl.DataFrame, split: pl.DataFrame,
                  items: pl.DataFrame, users: pl.DataFrame,
                  features: Mapping[str, tuple[Path, np.ndarray | None]]) -> dict[str, list[int]]:
    """Write the tables and feature files of a dataset into `folder` (an ArtifactWriter's staging folder).

    Args:
        manifest: the ArtifactWriter's manifest (stamped with this kind's layout version).
        interactions, split, items, users: the tables, in the dtypes of `table_schema`.
        features: name -> (source .npy file, rows): ``rows`` None copies the file as is (its row i is already item
            i), else row i of the written file is row ``rows[i]`` of the source.
    Returns:
        name -> shape of every written feature file.
    Raises:
        DataError when a table misses a column or has a wrong dtype (a loader bug: the loaders own the cast).
    """
    for frame, table in ((interactions, INTERACTIONS_FILE), (split, SPLIT_FILE), (items, ITEMS_FILE),
                         (users, USERS_FILE)):
        # users.parquet is written unchecked: its two index columns come from the vocabulary frame that prepare
        # builds itself (the dtypes are checked again when the artifact is read).
        schema = {} if table == USERS_FILE else table_schema(table)
        validate(frame, schema, file=table, fix="this is a bug in the loader; please report it")
        frame.write_parquet(folder / table)
    shapes = {}
    if features:
        (folder / FEATURES_DIR).mkdir()
        for name, (path, rows) in features.items():
            target = folder / FEATURES_DIR / f"{name}.npy"
            if rows is None:
                shutil.copyfile(path, target)
            else:
                np.save(target, np.asarray(np.load(path, mmap_mode="r")[rows]))
            shapes[name] = list(np.load(target, mmap_mode="r").shape)
    stamp_kind(manifest, KIND, SCHEMA_VERSION)
    return shapes


def load_dataset(dataset: str | Path | InteractionArrays) -> tuple[InteractionArrays, Path | None, dict[str, Any]]:
    """The arrays of a dataset for training and evaluation: from an artifact folder, or in-memory arrays (tests).

    Returns:
        (arrays, artifact path or None, ``{"path", "config_hash", "content_digest"}`` identifying the dataset in run
        manifests, config hashes and provenance; for arrays both hashes cover their sizes and contents).
    """
    if isinstance(dataset, InteractionArrays):
        digest = stable_hash([dataset.n_users, dataset.n_items] + [
            hashlib.sha256(np.ascontiguousarray(getattr(dataset, s)).tobytes()).hexdigest()
            for s in ("train", "val", "test")])
        return dataset, None, {"path": None, "config_hash": digest, "content_digest": digest}
    ds = Dataset.load(Path(dataset))
    return ds.arrays(), Path(dataset), {"path": str(Path(dataset).resolve()),
                                        "config_hash": ds.manifest.get("config_hash"),
                                        "content_digest": artifact_digest(dataset)}


class Dataset:
    """A prepared dataset: canonical tables plus the index-level arrays used for training and evaluation.

    Users are indexed 0..n_users-1 and items 0..n_items-1 (``users().user_id`` / ``items().item_id`` map back to the
    source's ids). Tables are read lazily and cached; the returned DataFrames are polars values (immutable), so
    callers cannot corrupt the cache.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.n_users = int(manifest["n_users"])
        self.n_items = int(manifest["n_items"])

    @classmethod
    def load(cls, path: str | Path) -> "Dataset":
        """Open the dataset artifact at `path`; ArtifactError if it is missing, unfinished or not a dataset,
        DataError if a table is missing or has the wrong columns."""
        path = Path(path)
        manifest = require_stage(path, STAGE)
        check_kind(path, manifest, KIND, SCHEMA_VERSION)
        for name in TABLES:
            if not (path / name).is_file():
                raise DataError(f"{path / name}: missing from the dataset artifact; rebuild it with "
                                f"`python -m llmrec_local.prepare ... --force`")
        return cls(path, manifest)

    def _read(self, table: str) -> pl.DataFrame:
        import polars as pl

        frame = pl.read_parquet(self.path / table)
        validate(frame, table_schema(table), file=self.path / table)
        return frame

    @cached_property
    def _interactions(self) -> pl.DataFrame:
        return self._read(INTERACTIONS_FILE)

    @cached_property
    def _split(self) -> pl.DataFrame:
        return self._read(SPLIT_FILE)

    @cached_property
    def _items(self) -> pl.DataFrame:
        items = self._read(ITEMS_FILE)
        check_dense_index(items, ITEM, file=self.path / ITEMS_FILE)
        if len(items) != self.n_items:
            raise DataError(f"{self.path / ITEMS_FILE}: {len(items)} rows but the manifest says n_items="
                            f"{self.n_items}; rebuild the dataset with --force")
        return items

    @cached_property
    def _users(self) -> pl.DataFrame:
        users = self._read(USERS_FILE)
        check_dense_index(users, USER, file=self.path / USERS_FILE)
        if len(users) != self.n_users:
            raise DataError(f"{self.path / USERS_FILE}: {len(users)} rows but the manifest says n_users="
                            f"{self.n_users}; rebuild the dataset with --force")
        return users

    def interactions(self) -> pl.DataFrame:
        """Positive interactions: user, item (Int64), rating (Float64 or null), timestamp (Int64 or null)."""
        return self._interactions

    def split(self) -> pl.DataFrame:
        """user, item (Int64), split (String "train" | "val" | "test"), one row per positive pair."""
        return self._split

    def items(self) -> pl.DataFrame:
        """item (0..n_items-1), item_id, title, year, genres (List[String]), image_path, + extra text columns."""
        return self._items

    def users(self) -> pl.DataFrame:
        """user (0..n_users-1), user_id, + attribute columns present in the source (age, gender, ...)."""
        return self._users

    @cached_property
    def _arrays(self) -> InteractionArrays:
        import polars as pl

        split = self._split
        parts = {}
        for name in SPLIT_NAMES:
            part = split.filter(pl.col(SPLIT) == name).select(USER, ITEM)
            parts[name] = part.to_numpy().astype(np.int64, copy=False).reshape(-1, 2)
        return InteractionArrays.from_pairs(self.n_users, self.n_items, parts["train"], parts["val"], parts["test"])

    def arrays(self) -> InteractionArrays:
        """(user, item) int64 pairs per split, shape (n_pairs, 2) each, sorted by user then item."""
        return self._arrays

    @cached_property
    def _vocabularies(self) -> dict[str, IdVocabulary]:
        return {USER: IdVocabulary(USER, self.users()[USER_ID].to_list()),
                ITEM: IdVocabulary(ITEM, self.items()[ITEM_ID].to_list())}

    def vocabulary(self, entity: str) -> IdVocabulary:
        """The external-id vocabulary of ``"user"`` or ``"item"``: ``vocabulary("item").ids[i]`` is item i's id."""
        if entity not in (USER, ITEM):
            raise ValueError(f"entity must be 'user' or 'item', got {entity!r}")
        return self._vocabularies[entity]

    def genre_vocabulary(self) -> list[str]:
        """Distinct genre names over all items, sorted alphabetically (empty when the source has no genres)."""
        import polars as pl

        genres = self._items.select(pl.col(GENRES).explode().drop_nulls().unique().sort())
        return genres[GENRES].to_list()

    def train_history(self) -> pl.DataFrame:
        """Training interactions with time: user, item (Int64), timestamp (Int64 or null), sorted by user, then
        timestamp (oldest first, nulls first), then item."""
        import polars as pl

        train = self._split.filter(pl.col(SPLIT) == "train").select(USER, ITEM)
        times = self._interactions.select(USER, ITEM, TIMESTAMP)
        return train.join(times, on=[USER, ITEM], how="left").sort([USER, TIMESTAMP, ITEM], nulls_last=False)

    def feature_path(self, name: str) -> Path | None:
        """Path of ``features/<name>.npy`` (e.g. "text_feat", row i = item i) when the artifact has it, else None."""
        path = self.path / FEATURES_DIR / f"{name}.npy"
        return path if path.is_file() else None

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, n_users={self.n_users}, n_items={self.n_items})"
