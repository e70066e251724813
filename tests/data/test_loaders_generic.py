"""Generic CSV/TSV/parquet tables: configurable columns, dates, list genres, image paths, single-file sources."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.data.loaders import detect_format
from llmrec_local.data.loaders.generic import load_generic
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare


def test_parquet_tables_with_custom_columns(tmp_path: Path) -> None:
    src = tmp_path / "shop"
    src.mkdir()
    (src / "img").mkdir()
    (src / "img" / "a.png").write_bytes(b"\x89PNG")
    pl.DataFrame({
        "uid": [10, 10, 10, 20, 20, 3],
        "sku": ["a", "b", "c", "a", "c", "b"],
        "when": [dt.datetime(2020, 1, d) for d in range(1, 7)],
    }).write_parquet(src / "events.parquet")
    pl.DataFrame({
        "sku": ["a", "b", "c", "z"], "name": ["Alpha", "Beta", None, "Zed"],
        "tags": [["x", "y"], [], None, ["z"]], "pic": ["img/a.png", "img/missing.png", None, None],
        "price": [1.5, 2.0, 3.0, 4.0],
    }).write_parquet(src / "catalog.parquet")
    pl.DataFrame({"uid": [3, 10, 20], "age": [31, 45, 22], "country": ["FR", "US", "JP"]}).write_parquet(
        src / "people.parquet")
    config = PrepareConfig(source=src, interactions_file="events", items_file="catalog", users_file="people",
                           user_col="uid", item_col="sku", timestamp_col="when", title_col="name", genres_col="tags",
                           image_col="pic", split="leave_one_out", val_ratio=0.0, item_catalog="all")
    assert detect_format(src, "events") == "generic"
    raw = load_generic(config)
    assert raw.interactions["timestamp"][0] == int(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    assert raw.interactions["rating"].null_count() == 6
    assert any("missing.png" in n for n in raw.notes)
    ds = Dataset.load(prepare(config, tmp_path / "ds"))
    # Integer user ids are ordered numerically (3 < 10 < 20), not as text.
    assert ds.users()["user_id"].to_list() == ["3", "10", "20"] and ds.users()["age"].dtype == pl.Int32
    items = {r["item_id"]: r for r in ds.items().to_dicts()}
    assert items["a"]["image_path"] == str((src / "img" / "a.png").resolve()) and items["b"]["image_path"] is None
    assert items["a"]["genres"] == ["x", "y"] and items["c"]["genres"] == [] and items["z"]["title"] == "Zed"
    assert items["a"]["price"] == "1.5"  # other item columns become text
    test = ds.split().filter(pl.col("split") == "test").join(ds.users(), on="user").join(ds.items(), on="item")
    assert sorted(zip(test["user_id"], test["item_id"])) == [("10", "c"), ("20", "c")]  # the latest of each user


def test_single_tsv_file_with_dates_and_ratings(tmp_path: Path) -> None:
    path = tmp_path / "ratings.tsv"
    path.write_text("user_id\titem_id\trating\ttimestamp\n"
                    "x\t1\t5\t2021-03-01\nx\t2\t2\t2021-03-02\nx\t3\t4.5\t2021-03-03\ny\t1\t5\t2021-03-04 10:00:00\n"
                    "y\t3\t4\t2021-03-05\n")
    ds = Dataset.load(prepare(PrepareConfig(source=path, split="temporal", test_ratio=0.25, val_ratio=0.0),
                              tmp_path / "ds"))
    assert ds.manifest["format"] == "generic" and len(ds.interactions()) == 4
    assert ds.interactions()["timestamp"].min() == int(dt.datetime(2021, 3, 1, tzinfo=dt.timezone.utc).timestamp())
    assert ds.split().filter(pl.col("split") == "test").height == 1


def test_user_attributes_keep_numbers(synthetic_generic: Path) -> None:
    raw = load_generic(PrepareConfig(source=synthetic_generic))
    assert raw.users is not None and raw.users["member_since"].dtype == pl.Int64
    assert raw.items is not None and raw.items["description"].dtype == pl.String
