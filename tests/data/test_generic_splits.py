"""Fixed splits in the generic format: a split column, per-split tables, and the `uid item item ...` text layout."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from llmrec_local.artifacts.dataset import TABLES, Dataset
from llmrec_local.data.loaders import detect_format
from llmrec_local.errors import DataError
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare

#: (user, item, split) of a small fixed split; ids sort numerically when all are integers, so "10" is mixed in.
ROWS = [("u1", "a", "train"), ("u1", "b", "train"), ("u1", "c", "train"), ("u1", "d", "test"),
        ("u2", "a", "train"), ("u2", "c", "train"), ("u2", "e", "test"), ("u2", "b", "val"),
        ("u3", "b", "train"), ("u3", "d", "train"), ("u3", "e", "val"), ("u3", "a", "test"),
        ("10", "e", "train"), ("10", "a", "train"), ("10", "b", "test")]


def _text_layout(folder: Path) -> Path:
    folder.mkdir()
    for split, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        users = dict.fromkeys(u for u, _, _ in ROWS)  # every user on every line, as the releases write them
        lines = [" ".join([u, *(i for uu, i, s in ROWS if uu == u and s == split)]) for u in users]
        (folder / f"{name}.txt").write_text("\n".join(lines).replace("u2 ", "u2\t") + "\n")
    return folder


def _table_digests(ds_path: Path) -> dict[str, str]:
    """sha256 of each data table as recorded in the manifest (the summary names the source, so it differs)."""
    files = json.loads((ds_path / "manifest.json").read_text())["files"]
    return {name: files[name]["sha256"] for name in TABLES}


def test_split_column_and_text_layout_give_identical_datasets(tmp_path: Path) -> None:
    csv = tmp_path / "csv"
    csv.mkdir()
    # Spellings and case vary in real files: " Test", "valid".
    spelled = [(u, i, {"test": " Test", "val": "valid"}.get(s, s)) for u, i, s in ROWS]
    pl.DataFrame(spelled, schema=["uid", "item_id", "fold"], orient="row").write_csv(csv / "interactions.csv")
    text = _text_layout(tmp_path / "txt")
    assert detect_format(text) == "generic"
    a = prepare(PrepareConfig(source=csv, split="given", user_col="uid", split_col="fold"), tmp_path / "a")
    b = prepare(PrepareConfig(source=text, split="given"), tmp_path / "b")
    assert _table_digests(a) == _table_digests(b)
    ds = Dataset.load(b)
    assert ds.manifest["variant"] == "text (uid item item ...)"
    named = ds.split().join(ds.users(), on="user").join(ds.items(), on="item")
    assert sorted(zip(named["user_id"], named["item_id"], named["split"])) == sorted(ROWS)


def test_per_split_parquet_tables(tmp_path: Path) -> None:
    folder = tmp_path / "parquet"
    folder.mkdir()
    frame = pl.DataFrame(ROWS, schema=["user_id", "item_id", "split"], orient="row")
    for split in ("train", "val", "test"):
        frame.filter(pl.col("split") == split).drop("split").write_parquet(folder / f"{split}.parquet")
    out = prepare(PrepareConfig(source=folder, split="given"), tmp_path / "ds")
    text = prepare(PrepareConfig(source=_text_layout(tmp_path / "txt"), split="given"), tmp_path / "ds_txt")
    assert _table_digests(out) == _table_digests(text)
    assert Dataset.load(out).manifest["variant"] == "parquet per-split files"


def test_given_text_split_with_carved_validation(tmp_path: Path) -> None:
    text = _text_layout(tmp_path / "txt")
    (text / "valid.txt").unlink()  # train.txt + test.txt only, as most LightGCN-family releases ship
    ds = Dataset.load(prepare(PrepareConfig(source=text, split="given", val_from_train=3), tmp_path / "ds"))
    val = ds.split().filter(pl.col("split") == "val").join(ds.users(), on="user")
    assert list(val["user_id"]) == ["u1"]  # the one user with >= 3 training pairs


def test_other_splits_pool_a_split_column(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    pl.DataFrame(ROWS, schema=["user_id", "item_id", "split"], orient="row").write_csv(path)
    ds = Dataset.load(prepare(PrepareConfig(source=path, split="random", min_rating=None), tmp_path / "ds"))
    assert len(ds.split()) == len(ROWS) and any("pooled and re-split" in n for n in ds.manifest["notes"])


def test_bad_split_values_and_layouts(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pl.DataFrame([("u", "a", "train"), ("u", "b", "holdout")], schema=["user_id", "item_id", "split"],
                 orient="row").write_csv(path)
    with pytest.raises(DataError, match=r"bad.csv: column 'split' must hold train, val or test .* 'holdout'"):
        prepare(PrepareConfig(source=path, split="given"), tmp_path / "ds")
    commas = tmp_path / "commas"
    commas.mkdir()
    for name in ("train", "test"):
        (commas / f"{name}.txt").write_text("u1,a\nu2,b\n")
    with pytest.raises(DataError, match=r"train.txt: lines must be 'uid item item \.\.\.' .* hold commas"):
        prepare(PrepareConfig(source=commas, split="given"), tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
