"""The split kinds and the leakage checks (`llmrec_local.data.split`), on small hand-made tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from testkit.tables import interactions

from llmrec_local.data.split import check_leakage, split_leave_one_out, split_random, split_temporal
from llmrec_local.errors import DataError


def _users(n_users: int, per_user: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{i}", 5.0, int(rng.integers(0, 10**6)))
            for u in range(n_users) for i in rng.choice(200, per_user, replace=False)]
    return interactions(rows)


def test_random_split_sizes_determinism_and_small_users() -> None:
    df = pl.concat([_users(50, 10), interactions([("solo", "i1", 5.0, 1), ("pair", "i1", 5.0, 1),
                                             ("pair", "i2", 5.0, 2)])])
    out = split_random(df, 0.2, 0.1, seed=7)
    sizes = out.filter(pl.col("user_id").str.starts_with("u")).group_by("user_id", "split").len()
    assert set(sizes.filter(pl.col("split") == "test")["len"]) == {2}
    assert set(sizes.filter(pl.col("split") == "val")["len"]) == {1}
    assert set(sizes.filter(pl.col("split") == "train")["len"]) == {7}
    assert out.filter(pl.col("user_id") == "solo")["split"].to_list() == ["train"]
    assert sorted(out.filter(pl.col("user_id") == "pair")["split"].to_list()) == ["test", "train"]
    assert out.sort("user_id", "item_id").equals(split_random(df.reverse(), 0.2, 0.1, seed=7).sort("user_id",
                                                                                                      "item_id"))
    assert not out.sort("user_id", "item_id").equals(split_random(df, 0.2, 0.1, seed=8).sort("user_id", "item_id"))
    assert check_leakage(out, on_leak="error", source="t")[1] == {"leak_train_overlap": 0,
                                                                  "leak_val_test_overlap": 0, "cold_eval_pairs": 0}


def test_leave_one_out_holds_out_the_latest() -> None:
    df = interactions([("a", "1", 5, 30), ("a", "2", 5, 10), ("a", "3", 5, 20), ("b", "1", 5, 5), ("b", "2", 5, 6),
                 ("c", "1", 5, 1)])
    out = split_leave_one_out(df, with_val=True, seed=0)
    labels = {(r["user_id"], r["item_id"]): r["split"] for r in out.to_dicts()}
    assert labels == {("a", "1"): "test", ("a", "3"): "val", ("a", "2"): "train", ("b", "2"): "test",
                      ("b", "1"): "train", ("c", "1"): "train"}
    no_val = split_leave_one_out(df, with_val=False, seed=0)
    assert "val" not in no_val["split"].to_list()


def test_temporal_split_cuts_globally_and_drops_cold_users() -> None:
    df = interactions([("a", str(i), 5, i) for i in range(8)] + [("late", "x", 5, 100)])
    out = split_temporal(df, 0.2, 0.1, file="t")
    train_max = out.filter(pl.col("split") == "train")["timestamp"].max()
    assert out.filter(pl.col("split") != "train")["timestamp"].min() > train_max
    assert out.filter(pl.col("split") == "test")["timestamp"].sort().to_list() == [7, 100]
    kept, counts = check_leakage(out, on_leak="drop", source="t")
    assert counts["cold_eval_pairs"] == 1 and "late" not in kept["user_id"].to_list()
    with pytest.raises(DataError, match=r"split 'temporal' needs a timestamp.*\('a', '0'\)"):
        split_temporal(df.with_columns(pl.lit(None, pl.Int64).alias("timestamp")), 0.2, 0.1, file="t")


def test_leakage_check_errors_name_the_pair() -> None:
    df = pl.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["1", "1", "2"], "split": ["train", "val", "test"]})
    with pytest.raises(DataError, match=r"\('a', '1'\) is in val and also in train"):
        check_leakage(df, on_leak="error", source="s")
    with pytest.raises(DataError, match=r"user 'b' has no training interaction"):
        check_leakage(df.filter(pl.col("user_id") == "b"), on_leak="error", source="s")
    kept, counts = check_leakage(df, on_leak="drop", source="s")
    assert kept.rows() == [("a", "1", "train")] and counts["leak_train_overlap"] == 1
    assert counts["cold_eval_pairs"] == 1
