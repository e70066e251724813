"""Rating threshold, k-core, the four split kinds and the leakage checks, on small hand-made tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from llmrec_local.config import from_mapping
from llmrec_local.data.filters import apply_threshold, deduplicate, k_core
from llmrec_local.data.split import check_leakage, split_leave_one_out, split_random, split_temporal
from llmrec_local.errors import ConfigError, DataError
from llmrec_local.prepare.config import PrepareConfig


def _table(rows: list[tuple[str, str, float | None, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "rating": pl.Float64,
                                      "timestamp": pl.Int64}, orient="row")


def _users(n_users: int, per_user: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{i}", 5.0, int(rng.integers(0, 10**6)))
            for u in range(n_users) for i in rng.choice(200, per_user, replace=False)]
    return _table(rows)


def test_threshold_keeps_unrated_rows_and_ignores_implicit_data() -> None:
    df = _table([("a", "1", 5.0, 1), ("a", "2", 3.5, 2), ("a", "3", None, 3), ("b", "1", 4.0, 4)])
    assert apply_threshold(df, 4.0)["item_id"].to_list() == ["1", "3", "1"]
    assert len(apply_threshold(df, None)) == 4
    implicit = df.with_columns(pl.lit(None, pl.Float64).alias("rating"))
    assert len(apply_threshold(implicit, 4.0)) == 4


def test_deduplicate_keeps_the_latest() -> None:
    df = _table([("a", "1", 2.0, 10), ("a", "1", 5.0, 20), ("a", "2", 4.0, 5)])
    out = deduplicate(df).sort("item_id")
    assert out.rows() == [("a", "1", 5.0, 20), ("a", "2", 4.0, 5)]


def test_k_core_is_iterated_to_a_fixed_point() -> None:
    # User c (1 interaction) goes in round 1, which leaves item 9 with one user (b) -> item 9 goes too, which
    # leaves b with one interaction -> b goes in round 2; round 3 changes nothing.
    df = _table([("a", "1", 5, 1), ("a", "2", 5, 1), ("b", "1", 5, 1), ("b", "9", 5, 1), ("c", "9", 5, 1),
                 ("d", "1", 5, 1), ("d", "2", 5, 1)])
    out, rounds = k_core(df, user_min=2, item_min=2)
    assert sorted(out.select("user_id", "item_id").rows()) == [("a", "1"), ("a", "2"), ("d", "1"), ("d", "2")]
    assert out.group_by("user_id").len()["len"].min() >= 2 and out.group_by("item_id").len()["len"].min() >= 2
    assert rounds == 3
    assert k_core(df, 0, 1) == (df, 0)


def test_random_split_sizes_determinism_and_small_users() -> None:
    df = pl.concat([_users(50, 10), _table([("solo", "i1", 5.0, 1), ("pair", "i1", 5.0, 1),
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
    df = _table([("a", "1", 5, 30), ("a", "2", 5, 10), ("a", "3", 5, 20), ("b", "1", 5, 5), ("b", "2", 5, 6),
                 ("c", "1", 5, 1)])
    out = split_leave_one_out(df, with_val=True, seed=0)
    labels = {(r["user_id"], r["item_id"]): r["split"] for r in out.to_dicts()}
    assert labels == {("a", "1"): "test", ("a", "3"): "val", ("a", "2"): "train", ("b", "2"): "test",
                      ("b", "1"): "train", ("c", "1"): "train"}
    no_val = split_leave_one_out(df, with_val=False, seed=0)
    assert "val" not in no_val["split"].to_list()


def test_temporal_split_cuts_globally_and_drops_cold_users() -> None:
    df = _table([("a", str(i), 5, i) for i in range(8)] + [("late", "x", 5, 100)])
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


@pytest.mark.parametrize("bad, message", [
    ({"test_ratio": 1.2}, "test_ratio must be in"), ({"test_ratio": 0.6, "val_ratio": 0.5}, "must be < 1"),
    ({"user_min": -1}, "user_min and item_min must be >= 0"), ({"split": "random", "test_ratio": 0.0},
                                                                "needs test_ratio > 0"),
    ({"split": "kfold"}, "is not one of"), ({"colour": 1}, "unknown key"), ({"min_rating": "high"}, "matches none"),
])
def test_config_validation(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping(PrepareConfig, {"source": "x", **bad}, "prepare")


def test_config_is_toml_friendly() -> None:
    cfg = from_mapping(PrepareConfig, {"source": "data/x", "min_rating": 3, "user_min": 5, "split": "temporal"})
    assert cfg.min_rating == 3.0 and str(cfg.source) == "data/x"
