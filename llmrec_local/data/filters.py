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


def bad_ratings(interactions: pl.DataFrame) -> pl.Series:
    """Rows whose rating is missing (blank, null) or not finite (NaN, Inf) in a table that has ratings.

    A table without any rating is implicit feedback (nothing is bad); in a rated table such a row cannot be judged
    against the threshold (polars would even count ``NaN >= 4`` as a positive), so the caller errors or drops it.
    """
    if not has_ratings(interactions):
        return pl.Series(RATING, [False] * len(interactions), pl.Boolean)
    rating = interactions[RATING]
    return rating.is_null() | ~rating.fill_null(0.0).is_finite()


#: Timestamp units by magnitude: a value above the limit cannot be unix seconds (1e11 s is the year 5138), so it is
#: milliseconds; likewise microseconds and nanoseconds (pandas' datetime64 as an integer).
_TIME_UNITS = ((1e11, "seconds", 1), (1e14, "milliseconds", 1_000), (1e17, "microseconds", 1_000_000),
               (float("inf"), "nanoseconds", 1_000_000_000))


def timestamp_unit(interactions: pl.DataFrame) -> tuple[str, int, tuple[int, int] | None]:
    """The unit of the timestamp column by magnitude: (name, divisor to seconds, mixed).

    `mixed` is (smallest, largest) value when they lie in different units (e.g. seconds and milliseconds in one
    column): ambiguous, the caller refuses it. ("seconds", 1, None) without timestamps.
    """
    if TIMESTAMP not in interactions.columns or interactions[TIMESTAMP].null_count() == len(interactions):
        return "seconds", 1, None
    magnitude = interactions[TIMESTAMP].drop_nulls().abs()
    low, high = int(magnitude.min()), int(magnitude.max())  # type: ignore[arg-type]

    def unit_of(value: int) -> int:
        return next(i for i, (limit, _, _) in enumerate(_TIME_UNITS) if value < limit)

    _, name, divisor = _TIME_UNITS[unit_of(high)]
    return name, divisor, ((low, high) if unit_of(low) != unit_of(high) else None)


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

    Latest = largest timestamp; among equal or missing timestamps, the last row in file order. Repeated ratings of one
    item (re-watches, re-rates) would otherwise count twice in k-core and could put the same pair in train and test.
    The prepare stage runs this *before* the rating threshold, so that a later low re-rating replaces an earlier
    positive instead of being filtered away first.
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
