"""Rating threshold, deduplication and k-core (`llmrec_local.data.filters`), on small hand-made tables."""

from __future__ import annotations

import polars as pl
from testkit.tables import interactions

from llmrec_local.data.filters import apply_threshold, deduplicate, k_core


def test_threshold_keeps_unrated_rows_and_ignores_implicit_data() -> None:
    df = interactions([("a", "1", 5.0, 1), ("a", "2", 3.5, 2), ("a", "3", None, 3), ("b", "1", 4.0, 4)])
    assert apply_threshold(df, 4.0)["item_id"].to_list() == ["1", "3", "1"]
    assert len(apply_threshold(df, None)) == 4
    implicit = df.with_columns(pl.lit(None, pl.Float64).alias("rating"))
    assert len(apply_threshold(implicit, 4.0)) == 4


def test_deduplicate_keeps_the_latest() -> None:
    df = interactions([("a", "1", 2.0, 10), ("a", "1", 5.0, 20), ("a", "2", 4.0, 5)])
    out = deduplicate(df).sort("item_id")
    assert out.rows() == [("a", "1", 5.0, 20), ("a", "2", 4.0, 5)]


def test_k_core_is_iterated_to_a_fixed_point() -> None:
    # User c (1 interaction) goes in round 1, which leaves item 9 with one user (b) -> item 9 goes too, which
    # leaves b with one interaction -> b goes in round 2; round 3 changes nothing.
    df = interactions([("a", "1", 5, 1), ("a", "2", 5, 1), ("b", "1", 5, 1), ("b", "9", 5, 1), ("c", "9", 5, 1),
                 ("d", "1", 5, 1), ("d", "2", 5, 1)])
    out, rounds = k_core(df, user_min=2, item_min=2)
    assert sorted(out.select("user_id", "item_id").rows()) == [("a", "1"), ("a", "2"), ("d", "1"), ("d", "2")]
    assert out.group_by("user_id").len()["len"].min() >= 2 and out.group_by("item_id").len()["len"].min() >= 2
    assert rounds == 3
    assert k_core(df, 0, 1) == (df, 0)
