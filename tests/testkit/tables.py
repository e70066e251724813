"""Small hand-made tables for the dataset-layer tests."""

from __future__ import annotations

import polars as pl


def interactions(rows: list[tuple[str, str, float | None, int | None]]) -> pl.DataFrame:
    """Raw interactions from (user_id, item_id, rating, timestamp) rows."""
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "rating": pl.Float64,
                                      "timestamp": pl.Int64}, orient="row")
