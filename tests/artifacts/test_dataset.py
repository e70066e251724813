"""The dataset kind: write_dataset + Dataset round trip, load_dataset, and clear errors for missing or foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrec_local.artifacts.base import MANIFEST_NAME, ArtifactWriter, read_manifest
from llmrec_local.artifacts.dataset import (
    INTERACTIONS_FILE,
    ITEMS_FILE,
    STAGE,
    Dataset,
    load_dataset,
    table_schema,
    write_dataset,
)
from llmrec_local.data.arrays import InteractionArrays
from llmrec_local.errors import ArtifactError, DataError


def _tables() -> dict[str, pl.DataFrame]:
    """Two users, three items; user 0: train item 0, test item 1; user 1: train item 2, val item 0."""
    pairs = pl.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 0, 2], "split": ["train", "test", "val", "train"]},
                         schema={"user": pl.Int64, "item": pl.Int64, "split": pl.String})
    interactions = pairs.select("user", "item").with_columns(pl.lit(None, dtype=pl.Float64).alias("rating"),
                                                             pl.lit(None, dtype=pl.Int64).alias("timestamp"))
    items = pl.DataFrame({"item": [0, 1, 2], "item_id": ["a", "b", "c"], "title": ["A", "B", None],
                          "year": [2000, None, 1999], "genres": [["x"], [], ["y", "x"]],
                          "image_path": [None, None, None]}, schema=table_schema(ITEMS_FILE))
    users = pl.DataFrame({"user": [0, 1], "user_id": ["u0", "u1"]}, schema={"user": pl.Int64, "user_id": pl.String})
    return {"interactions": interactions, "split": pairs, "items": items, "users": users}


def _write(path: Path, features: dict | None = None, **tables: pl.DataFrame) -> Path:
    with ArtifactWriter(path, stage=STAGE, config_hash="h") as w:
        shapes = write_dataset(w.dir, w.manifest, features=features or {}, **{**_tables(), **tables})
        w.manifest.update(n_users=2, n_items=3, features=shapes)
    return path


def test_round_trip(tmp_path: Path) -> None:
    feat = tmp_path / "feat.npy"
    np.save(feat, np.arange(6, dtype=np.float32).reshape(3, 2))
    ds = Dataset.load(_write(tmp_path / "ds", {"text_feat": (feat, np.array([2, 1, 0]))}))
    assert ds.items()["item_id"].to_list() == ["a", "b", "c"]
    assert ds.vocabulary("user").index(["u1"]).tolist() == [1]
    arrays = ds.arrays()
    assert arrays.train.tolist() == [[0, 0], [1, 2]] and arrays.val.tolist() == [[1, 0]]
    assert arrays.test.tolist() == [[0, 1]]
    assert ds.genre_vocabulary() == ["x", "y"]
    assert np.load(ds.feature_path("text_feat")).tolist() == [[4, 5], [2, 3], [0, 1]]  # rows gathered
    assert read_manifest(ds.path)["kind_schema"] == {"kind": "dataset", "version": 1}
    got, path, info = load_dataset(ds.path)
    assert path == ds.path and info["config_hash"] == "h" and got.test.tolist() == arrays.test.tolist()


def test_load_dataset_of_arrays_hashes_the_contents() -> None:
    pairs = np.array([[0, 0], [1, 1]])
    a = InteractionArrays.from_pairs(2, 2, pairs, pairs[:0], pairs[:1])
    b = InteractionArrays.from_pairs(2, 2, pairs, pairs[:0], pairs[1:])
    (_, path, info_a), (_, _, info_b) = load_dataset(a), load_dataset(b)
    assert path is None and info_a["path"] is None and info_a["config_hash"] != info_b["config_hash"]


def test_writer_refuses_a_table_with_a_wrong_dtype(tmp_path: Path) -> None:
    bad = _tables()["interactions"].with_columns(pl.col("item").cast(pl.Int32))
    with pytest.raises(DataError, match=r"interactions.parquet: column 'item' has dtype Int32"):
        _write(tmp_path / "ds", interactions=bad)
    assert not (tmp_path / "ds").exists()  # nothing published


def test_missing_or_foreign_files_are_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "ds")
    (path / INTERACTIONS_FILE).unlink()
    # the manifest lists every file its stage wrote, so a removed table is named before any table is read
    with pytest.raises(ArtifactError, match=r"interactions.parquet is missing from the prepare artifact .* --force"):
        Dataset.load(path)
    other = _write(tmp_path / "other")
    manifest = json.loads((other / MANIFEST_NAME).read_text())
    (other / MANIFEST_NAME).write_text(json.dumps({**manifest, "kind_schema": {"kind": "dataset", "version": 9}}))
    with pytest.raises(ArtifactError, match="layout version 9"):
        Dataset.load(other)
    with ArtifactWriter(tmp_path / "run", stage="train", config_hash="h"):
        pass
    with pytest.raises(ArtifactError, match="expected a 'prepare' artifact"):
        Dataset.load(tmp_path / "run")
