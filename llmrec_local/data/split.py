"""Deterministic, seeded train/validation/test splits and leakage checks.

Every function takes the deduplicated positive interactions (user_id, item_id, rating, timestamp) and returns them
with a ``split`` column ("train" | "val" | "test"). Randomness comes from ``numpy_rng(seed, "split")`` applied to
rows sorted by (user_id, item_id), so a split depends only on the data and the seed, not on file order.

Per-user sizes for the random split, with n a user's interaction count and r_t, r_v the ratios:
    n_test = clip(round(n * r_t), 1, n - 1)   if r_t > 0 and n >= 2, else 0
    n_val  = clip(round(n * r_v), 1, m - 1)   if r_v > 0 and m = n - n_test >= 2, else 0
so every user keeps at least one training interaction, and users with a single interaction are train-only.

Validation carved from a given split's training pairs (:func:`carve_validation`, ``val_from_train``), with n a
user's training pair count:
    ratio mode (0 < v < 1):   n_val = clip(round(n * v), 1, n - 1) if n >= 2, else 0
    minimum-history mode (integer v = N >= 2):   n_val = 1 if n >= N, else 0
The n_val pairs (at most the user's eligible pairs: those not listed as test by the source) are drawn at random
(seeded) among them and move from train to val.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from ..artifacts.dataset import ITEM_ID, SPLIT, TIMESTAMP, USER_ID
from ..errors import DataError
from ..seeding import numpy_rng

SplitKind = Literal["random", "leave_one_out", "temporal", "given"]

_POS = "_pos"
_KEY = "_key"


def _with_random_key(df: pl.DataFrame, seed: int, stream: str = "split") -> pl.DataFrame:
    df = df.sort([USER_ID, ITEM_ID])
    rng = numpy_rng(seed, stream)
    return df.with_columns(pl.Series(_KEY, rng.random(len(df)), dtype=pl.Float64))


def _label(n_test: pl.Expr, n_val: pl.Expr) -> pl.Expr:
    pos = pl.col(_POS)
    return (
        pl.when(pos < n_test).then(pl.lit("test"))
        .when(pos < n_test + n_val).then(pl.lit("val"))
        .otherwise(pl.lit("train")).alias(SPLIT)
    )


def split_random(df: pl.DataFrame, test_ratio: float, val_ratio: float, seed: int) -> pl.DataFrame:
    """Per-user random split: a user's interactions are shuffled; the first n_test go to test, the next n_val to
    validation (carved from what would otherwise be train), the rest to train (sizes in the module docstring)."""
    df = _with_random_key(df, seed)
    n = pl.len().over(USER_ID)
    n_test = (
        pl.when((test_ratio > 0) & (n >= 2))
        .then((n.cast(pl.Float64) * test_ratio).round(0).cast(pl.Int64).clip(1, n - 1))
        .otherwise(0)
    )
    rest = n - n_test
    n_val = (
        pl.when((val_ratio > 0) & (rest >= 2))
        .then((n.cast(pl.Float64) * val_ratio).round(0).cast(pl.Int64).clip(pl.lit(1), rest - 1))
        .otherwise(0)
    )
    df = df.with_columns((pl.col(_KEY).rank("ordinal").over(USER_ID) - 1).alias(_POS))
    return df.with_columns(_label(n_test, n_val)).drop(_KEY, _POS)


def split_leave_one_out(df: pl.DataFrame, with_val: bool, seed: int) -> pl.DataFrame:
    """Leave-one-out: each user's latest interaction is test, the one before is validation (when `with_val` and the
    user has >= 3), the rest train. Ties in time, or a source without timestamps, are broken by the seeded key."""
    df = _with_random_key(df, seed)
    n = pl.len().over(USER_ID)
    # Newest first: descending timestamp, then descending key so that ties break deterministically.
    order = pl.struct(pl.col(TIMESTAMP).fill_null(0), pl.col(_KEY))
    df = df.with_columns((order.rank("ordinal", descending=True).over(USER_ID) - 1).alias(_POS))
    n_test = pl.when(n >= 2).then(1).otherwise(0)
    n_val = pl.when(pl.lit(with_val) & (n >= 3)).then(1).otherwise(0)
    return df.with_columns(_label(n_test, n_val)).drop(_KEY, _POS)


def split_temporal(df: pl.DataFrame, test_ratio: float, val_ratio: float, file: str) -> pl.DataFrame:
    """Global time split: the latest `test_ratio` of all interactions are test, the `val_ratio` before them
    validation, everything earlier train (ties ordered by user, item). Test/val interactions of users with no
    training interaction are removed afterwards by :func:`check_leakage` (temporal splits create cold users)."""
    if df[TIMESTAMP].null_count():
        example = df.filter(pl.col(TIMESTAMP).is_null()).row(0, named=True)
        raise DataError(
            f"{file}: split 'temporal' needs a timestamp on every interaction, but ({example[USER_ID]!r}, "
            f"{example[ITEM_ID]!r}) has none; choose split 'random' or 'leave_one_out'"
        )
    df = df.sort([TIMESTAMP, USER_ID, ITEM_ID])
    total = len(df)
    n_test = int(np.ceil(total * test_ratio))
    n_val = int(np.ceil(total * val_ratio))
    # Position counted from the newest interaction, so the same _label rule applies.
    df = df.with_columns((pl.lit(total - 1) - pl.int_range(0, total, dtype=pl.Int64)).alias(_POS))
    return df.with_columns(_label(pl.lit(n_test), pl.lit(n_val))).drop(_POS)


def val_from_train_mode(value: float) -> str | None:
    """The mode of a ``val_from_train`` setting: None (0, off), "ratio" (0 < value < 1) or "min_history" (an
    integer >= 2); ValueError for anything else (the message is the setting's documentation)."""
    if value == 0:
        return None
    if 0 < value < 1:
        return "ratio"
    if value >= 2 and float(value).is_integer():
        return "min_history"
    raise ValueError(
        f"val_from_train must be 0 (off), a ratio in (0, 1) (that fraction of each user's training pairs, at least "
        f"one, for users with >= 2), or an integer N >= 2 (one training pair of every user with at least N training "
        f"pairs), got {value}"
    )


def carve_validation(
    df: pl.DataFrame, value: float, seed: int, exclude: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Move validation pairs out of the training pairs of `df` (a split table whose validation set is empty).

    Sizes per user follow ``value`` (module docstring: a ratio, or one pair for users with at least N training
    pairs), capped by the user's eligible pairs: training pairs not in `exclude` (user_id, item_id; the source's test
    pairs, including those that on_leak='drop' kept in train only). Which pairs move is drawn with
    ``numpy_rng(seed, "val_from_train")`` over rows sorted by (user, item), so the result depends only on the data
    and the seed. Validation comes from eligible training pairs only and every user keeps at least one training
    pair: it cannot contain a test pair or create a cold user (the caller re-checks both).

    Returns:
        (`df` with some "train" rows relabelled "val", {"pairs": moved pairs, "users": users with one}).
    """
    mode = val_from_train_mode(value)
    if mode is None:
        return df, {"pairs": 0, "users": 0}
    if not df.filter(pl.col(SPLIT) == "val").is_empty():
        raise ValueError("carve_validation needs a table without validation pairs")  # the caller drops them first
    train = _with_random_key(df.filter(pl.col(SPLIT) == "train").drop(SPLIT), seed, "val_from_train")
    eligible = pl.lit(True)
    if exclude is not None:
        eligible = ~pl.struct(USER_ID, ITEM_ID).is_in(exclude.select(pl.struct(USER_ID, ITEM_ID)).to_series().implode())
    # Ineligible pairs get keys beyond [0, 1): ranked after every eligible pair of their user, never drawn.
    train = train.with_columns(pl.when(eligible).then(pl.col(_KEY)).otherwise(pl.col(_KEY) + 2.0).alias(_KEY),
                               eligible.cast(pl.Int64).sum().over(USER_ID).alias("_eligible"))
    n = pl.len().over(USER_ID)
    if mode == "ratio":
        n_val = (pl.when(n >= 2).then((n.cast(pl.Float64) * value).round(0).cast(pl.Int64).clip(pl.lit(1), n - 1))
                 .otherwise(0))
    else:
        n_val = pl.when(n >= int(value)).then(1).otherwise(0)
    n_val = pl.min_horizontal(n_val, pl.col("_eligible"))
    train = train.with_columns((pl.col(_KEY).rank("ordinal").over(USER_ID) - 1).alias(_POS))
    train = train.with_columns(_label(pl.lit(0), n_val)).drop(_KEY, _POS, "_eligible")
    carved = train.filter(pl.col(SPLIT) == "val")
    out = pl.concat([train.select(df.columns), df.filter(pl.col(SPLIT) != "train")])
    return out, {"pairs": len(carved), "users": carved[USER_ID].n_unique()}


def check_leakage(
    df: pl.DataFrame, *, on_leak: Literal["error", "drop"], source: str
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Enforce: no validation/test pair also in train, no pair in both validation and test, every user evaluated
    (with a validation or test pair) has training data.

    With ``on_leak="error"`` the first violation raises DataError quoting the pair/user; with "drop" the offending
    validation/test rows are removed and counted (returned as a dict for the manifest).
    """
    counts = {"leak_train_overlap": 0, "leak_val_test_overlap": 0, "cold_eval_pairs": 0}
    train = df.filter(pl.col(SPLIT) == "train").select(USER_ID, ITEM_ID).unique()
    evaluated = df.filter(pl.col(SPLIT) != "train")
    overlap = evaluated.join(train, on=[USER_ID, ITEM_ID], how="semi")
    test_pairs = df.filter(pl.col(SPLIT) == "test").select(USER_ID, ITEM_ID)
    val_test = df.filter(pl.col(SPLIT) == "val").join(test_pairs, on=[USER_ID, ITEM_ID], how="semi")
    train_users = train.select(USER_ID).unique()
    cold = evaluated.join(train_users, on=USER_ID, how="anti")
    problems = [
        ("leak_train_overlap", overlap, "is in {split} and also in train",
         "remove it from one of the files"),
        ("leak_val_test_overlap", val_test, "is in both val and test",
         "remove it from one of the files (a release whose validation file repeats its test file: set val_from_train, "
         "e.g. --val-from-train 5, to replace that validation set with one carved from train)"),
        ("cold_eval_pairs", cold, "is in {split}, but user {user!r} has no training interaction",
         "give the user training data or remove the user's val/test entries"),
    ]
    for name, rows, what, fix in problems:
        if rows.is_empty():
            continue
        if on_leak == "error":
            r = rows.row(0, named=True)
            pair = (r[USER_ID], r[ITEM_ID])
            raise DataError(
                f"{source}: pair (user, item) {pair!r} " + what.format(split=r[SPLIT], user=r[USER_ID])
                + f" ({len(rows)} such pair(s)); {fix}, or set on_leak='drop' to drop them from val/test"
            )
        counts[name] = len(rows)
    if on_leak == "drop":
        bad = pl.concat([
            overlap.select(USER_ID, ITEM_ID, SPLIT),
            val_test.select(USER_ID, ITEM_ID, SPLIT),
            cold.select(USER_ID, ITEM_ID, SPLIT),
        ]).unique()
        df = df.join(bad, on=[USER_ID, ITEM_ID, SPLIT], how="anti")
    return df, counts


def split_sizes(df: pl.DataFrame) -> dict[str, int]:
    """Pairs per split plus users with at least one pair in each split (for the manifest and summary)."""
    out: dict[str, int] = {}
    for name in ("train", "val", "test"):
        part = df.filter(pl.col(SPLIT) == name)
        out[f"{name}_pairs"] = len(part)
        out[f"{name}_users"] = part[USER_ID].n_unique()
    return out
