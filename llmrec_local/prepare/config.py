"""`PrepareConfig`: the ``[prepare]`` table of a recipe (source, format, filters, split, generic column names)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..config import ADDED_SETTING
from ..data.split import val_from_train_mode


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of the prepare stage (the ``[prepare]`` table of a recipe).

    Attributes:
        source: raw dataset folder (or a single generic interactions file).
        format: "auto" detects from the files; or "llmrec" | "movielens" | "generic".
        min_rating: interactions with rating >= this are positives; None keeps all. Ignored without ratings.
        user_min, item_min: k-core thresholds (0 = off), applied iteratively after the threshold.
        split: "random" (per user, validation carved from train), "leave_one_out" (latest -> test, previous -> val),
            "temporal" (global time cut), "given" (the source's own train/val/test files; LLMRec's release).
        test_ratio, val_ratio: fractions of each user's interactions (random), of all interactions (temporal); for
            leave_one_out val_ratio > 0 only switches the validation item on. Not used by "given" (set at their
            defaults; a different value is an error: carve validation with `val_from_train`).
        val_from_train: "given" split only: replace the source's validation set (if any) by pairs carved from its
            training pairs. 0 = off (the source's own validation set is kept). An integer N >= 2: one training pair
            (drawn at random, seeded by `seed`) of every user with at least N training pairs moves to validation;
            users with fewer keep all theirs. A ratio in (0, 1): round(n * ratio) of each user's n training pairs,
            at least 1 and at most n - 1, for users with n >= 2. Validation drawn from train cannot hold a test pair;
            every user keeps a training pair. Recorded in the manifest (``validation``).
        seed: seed of the random and leave-one-out tie-breaking keys.
        item_catalog: which items get an index: "interacted" (items with a positive interaction after
            filtering), "all" (every item of the item file / feature matrices, even without interactions), "auto"
            ("all" for LLMRec's release, whose feature matrices define the items; "interacted" otherwise).
        encoding: text encoding of the source files: "auto" (strict UTF-8, a byte-order mark allowed; files whose
            official release is latin-1, MovieLens' .dat/u.* files and LLMRec's Netflix item_attribute.csv, fall
            back to latin-1) or a Python codec name used strictly (e.g. "latin-1", "cp1252"). Undecodable bytes are
            an error, never replaced.
        on_bad_rating: a blank, NaN or infinite rating in a rated source is an "error" (default), or "drop" the row
            (counted in the manifest and the summary).
        on_leak: for the "given" split, "error" on a val/test pair that is also in train (or a val/test user without
            training data), or "drop" such val/test pairs (counted in the manifest).
        interactions_file, items_file, users_file: generic tables (a name without suffix matches .csv/.tsv/.parquet).
        user_col, item_col, rating_col, timestamp_col: generic id/rating/time column names.
        split_col: generic: the column holding a fixed split (train | val | test; "valid", "validation" accepted),
            used by split "given" and pooled by the other splits.
        title_col, year_col, genres_col, image_col, genre_sep: generic item columns; genres split on genre_sep.
    """

    source: Path
    format: Literal["auto", "llmrec", "movielens", "generic"] = "auto"
    min_rating: float | None = 4.0
    user_min: int = 0
    item_min: int = 0
    split: Literal["random", "leave_one_out", "temporal", "given"] = "random"
    test_ratio: float = 0.2
    val_ratio: float = 0.1
    seed: int = 0
    item_catalog: Literal["auto", "interacted", "all"] = "auto"
    on_leak: Literal["error", "drop"] = "error"
    # Added after datasets were first hashed: at their defaults they leave existing datasets' hashes (and reuse) alone.
    encoding: str = field(default="auto", metadata=ADDED_SETTING)
    on_bad_rating: Literal["error", "drop"] = field(default="error", metadata=ADDED_SETTING)
    val_from_train: float = field(default=0.0, metadata=ADDED_SETTING)
    split_col: str = field(default="split", metadata=ADDED_SETTING)
    interactions_file: str = "interactions"
    items_file: str = "items"
    users_file: str = "users"
    user_col: str = "user_id"
    item_col: str = "item_id"
    rating_col: str = "rating"
    timestamp_col: str = "timestamp"
    title_col: str = "title"
    year_col: str = "year"
    genres_col: str = "genres"
    image_col: str = "image_path"
    genre_sep: str = "|"

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Path(self.source))
        if self.user_min < 0 or self.item_min < 0:
            raise ValueError(f"user_min and item_min must be >= 0 (0 = no k-core), got {self.user_min}, "
                             f"{self.item_min}")
        for name in ("test_ratio", "val_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.test_ratio + self.val_ratio >= 1.0:
            raise ValueError(f"test_ratio + val_ratio must be < 1 so that training data remains, got "
                             f"{self.test_ratio} + {self.val_ratio}")
        val_from_train_mode(self.val_from_train)  # its ValueError documents the accepted values
        if self.split == "given":
            ignored = [f"{name}={getattr(self, name)}" for name, default in (("test_ratio", 0.2), ("val_ratio", 0.1))
                       if getattr(self, name) != default]
            if ignored:
                raise ValueError(
                    f"split 'given' keeps the source's own test set and does not use {', '.join(ignored)}; to carve "
                    f"validation from the training pairs set val_from_train (a ratio such as 0.1, or an integer N "
                    f"for one pair of each user with at least N; CLI --val-from-train), and remove the ratio")
        elif self.val_from_train:
            raise ValueError(f"val_from_train applies to split 'given' only; split {self.split!r} carves validation "
                             f"itself (val_ratio)")
        if self.split in ("random", "temporal", "leave_one_out") and self.test_ratio == 0.0:
            raise ValueError(f"split {self.split!r} needs test_ratio > 0")
        if self.min_rating is not None and not np.isfinite(self.min_rating):
            raise ValueError(f"min_rating must be a finite number or omitted, got {self.min_rating}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.encoding != "auto":
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise ValueError(f"encoding {self.encoding!r} is not a known codec; use 'auto' or a Python codec name "
                                 f"such as 'utf-8', 'latin-1' or 'cp1252'") from None
        if not self.genre_sep:
            raise ValueError("genre_sep must not be empty")
