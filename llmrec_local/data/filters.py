"""Interaction filters: implicit-feedback conversion by rating threshold, duplicate removal, iterative k-core.

All functions take and return the raw interaction table (user_id, item_id, rating, timestamp[, split]) and are
vectorised polars expressions (no Python loop over rows).
"""

from __future__ import annotations

import polars as pl

from ..artifacts.dataset import ITEM_ID, RATING, SPLIT, TIMESTAMP, USER_ID


def has_ratings(interactions: pl.DataFrame) -> bool:
    """Whether the table carries explicit ratings (at least one non-null rating)."""
    return RATING in interactions.columns and interactions[RATING].null_count() < len(interactions)


def apply_threshold(interactions: pl.DataFrame, min_rating: float | None) -> pl.DataFrame:
    """Keep positive interactions: rating >= `min_rating`.

    Rows without a rating are implicit positives and kept; with `min_rating` None (or no ratings at all) nothing is
    removed.
    """
    if min_rating is None or not has_ratings(interactions):
        return interactions
    return interactions.filter(pl.col(RATING).is_null() | (pl.col(RATING) >= min_rating))


def deduplicate(interactions: pl.DataFrame) -> pl.DataFrame:
    """One row per (user, item) [per split when the source ships one], keeping the latest interaction.

    Repeated ratings of one item (re-watches, re-rates) would otherwise count twice in k-core and could put the same
    pair in train and test.
    """
    keys = [USER_ID, ITEM_ID] + ([SPLIT] if SPLIT in interactions.columns else [])
    return (
        interactions.sort([*keys, TIMESTAMP], nulls_last=False, maintain_order=True)
        .unique(subset=keys, keep="last", maintain_order=True)
    )


def k_core(interactions: pl.DataFrame, user_min: int, item_min: int) -> tuple[pl.DataFrame, int]:
    """Iteratively drop users with < `user_min` and items with < `item_min` interactions until both hold.

    Removing an item can push a user below its threshold and vice versa, hence the fixed-point loop (it converges:
    each round removes rows or stops). A threshold of 0 or 1 is a no-op. Returns (filtered table, rounds run).
    """
    if user_min <= 1 and item_min <= 1:
        return interactions, 0
    rounds = 0
    while True:
        rounds += 1
        before = len(interactions)
        if user_min > 1:
            interactions = interactions.filter(pl.len().over(USER_ID) >= user_min)
        if item_min > 1:
            interactions = interactions.filter(pl.len().over(ITEM_ID) >= item_min)
        if len(interactions) == before:
            return interactions, rounds
