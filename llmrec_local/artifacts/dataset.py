"""Read access to a prepared dataset artifact (stage ``prepare``); the only way other stages read datasets."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..data.arrays import InteractionArrays
from ..data.schema import (
    FEATURES_DIR,
    GENRES,
    INTERACTIONS_FILE,
    INTERACTIONS_SCHEMA,
    ITEM,
    ITEM_ID,
    ITEMS_FILE,
    ITEMS_SCHEMA,
    SPLIT,
    SPLIT_FILE,
    SPLIT_NAMES,
    SPLIT_SCHEMA,
    TIMESTAMP,
    USER,
    USER_ID,
    USERS_FILE,
    USERS_SCHEMA,
    check_dense_index,
    validate,
)
from ..errors import DataError
from ..ids import IdVocabulary
from .base import require_stage


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
        manifest = require_stage(path, "prepare")
        for name in (INTERACTIONS_FILE, SPLIT_FILE, ITEMS_FILE, USERS_FILE):
            if not (path / name).is_file():
                raise DataError(f"{path / name}: missing from the dataset artifact; rebuild it with "
                                f"`python -m llmrec_local.prepare ... --force`")
        return cls(path, manifest)

    def _read(self, name: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
        frame = pl.read_parquet(self.path / name)
        validate(frame, schema, file=self.path / name)
        return frame

    @cached_property
    def _interactions(self) -> pl.DataFrame:
        return self._read(INTERACTIONS_FILE, INTERACTIONS_SCHEMA)

    @cached_property
    def _split(self) -> pl.DataFrame:
        return self._read(SPLIT_FILE, SPLIT_SCHEMA)

    @cached_property
    def _items(self) -> pl.DataFrame:
        items = self._read(ITEMS_FILE, ITEMS_SCHEMA)
        check_dense_index(items, ITEM, file=self.path / ITEMS_FILE)
        if len(items) != self.n_items:
            raise DataError(f"{self.path / ITEMS_FILE}: {len(items)} rows but the manifest says n_items="
                            f"{self.n_items}; rebuild the dataset with --force")
        return items

    @cached_property
    def _users(self) -> pl.DataFrame:
        users = self._read(USERS_FILE, USERS_SCHEMA)
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
        genres = self._items.select(pl.col(GENRES).explode().drop_nulls().unique().sort())
        return genres[GENRES].to_list()

    def train_history(self) -> pl.DataFrame:
        """Training interactions with time: user, item (Int64), timestamp (Int64 or null), sorted by user, then
        timestamp (oldest first, nulls first), then item."""
        train = self._split.filter(pl.col(SPLIT) == "train").select(USER, ITEM)
        times = self._interactions.select(USER, ITEM, TIMESTAMP)
        return train.join(times, on=[USER, ITEM], how="left").sort([USER, TIMESTAMP, ITEM], nulls_last=False)

    def feature_path(self, name: str) -> Path | None:
        """Path of ``features/<name>.npy`` (e.g. "text_feat", row i = item i) when the artifact has it, else None."""
        path = self.path / FEATURES_DIR / f"{name}.npy"
        return path if path.is_file() else None

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, n_users={self.n_users}, n_items={self.n_items})"
