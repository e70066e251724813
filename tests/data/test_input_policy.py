"""The input policy of the dataset library (issue 13, item 3): one case per bad or unusual input.

Each case asserts the exact outcome: a DataError naming the file, the bad value and the fix (and no artifact left
behind), or a documented handling that is counted in the manifest/summary. Encodings: strict UTF-8 (BOM allowed),
latin-1 only for the releases that are latin-1, ``encoding`` otherwise. Ratings: blank/NaN/Inf is an error or a
counted drop; the latest interaction of a pair is the one the threshold judges. Timestamps: milliseconds (and finer)
are detected, mixed units and mixed forms are refused. Bounds: empty tables, ids far beyond the data, crafted
pickles and non-finite features are refused before they cost memory or a training run.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse

from llmrec_local.config import from_mapping
from llmrec_local.data.loaders import load_source
from llmrec_local.data.tables import read_table
from llmrec_local.errors import ConfigError, DataError
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import Prepared, build, format_summary, prepare

HEADER = "user_id,item_id,rating,timestamp"
T0 = 1_500_000_000


def _rows(n_users: int = 4, n_items: int = 6) -> list[str]:
    """A small complete rating table: every user rates every item 5.0, one second apart."""
    return [f"u{u},i{i},5.0,{T0 + u * n_items + i}" for u in range(n_users) for i in range(n_items)]


def _write(folder: Path, lines: list[str], *, name: str = "interactions.csv", encoding: str = "utf-8",
           header: str | None = HEADER) -> Path:
    """`folder/name` with `header` and `lines` in `encoding`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(([header] if header is not None else []) + lines) + "\n"
    (folder / name).write_bytes(text.encode(encoding))
    return folder


def _fails(source: Path, tmp_path: Path, pattern: str, **config: object) -> str:
    """Run prepare expecting a DataError matching `pattern`; nothing may be left at the output path."""
    out = tmp_path / "out" / "dataset"
    with pytest.raises(DataError, match=pattern) as info:
        prepare(PrepareConfig(source=source, **config), out)
    assert not out.exists()
    return str(info.value)


def _built(source: Path, **config: object) -> Prepared:
    """The dataset tables for `source` (loaded and built in memory, nothing written)."""
    cfg = PrepareConfig(source=source, **config)
    return build(load_source(cfg), cfg)


def _positives(prepared: Prepared) -> set[tuple[str, str]]:
    """(user_id, item_id) of every interaction of a prepared dataset."""
    users = dict(zip(prepared.users["user"], prepared.users["user_id"]))
    items = dict(zip(prepared.items["item"], prepared.items["item_id"]))
    return {(users[u], items[i]) for u, i in prepared.interactions.select("user", "item").iter_rows()}


# --- encodings -------------------------------------------------------------------------------------------------


def test_latin1_generic_file_is_refused_with_the_offset_and_the_fix(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + ["josé,i0,5.0,1", "josè,i1,5.0,2"], encoding="latin-1")
    msg = _fails(src, tmp_path, r"interactions.csv: byte b'\\xe9' at offset \d+ \(line 26\) is not valid UTF-8")
    assert "--encoding latin-1" in msg


def test_latin1_generic_file_reads_with_encoding_latin1_and_keeps_users_apart(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + ["josé,i0,5.0,1", "josè,i1,5.0,2"], encoding="latin-1")
    users = set(_built(src, encoding="latin-1").users["user_id"])
    assert {"josé", "josè"} <= users and len(users) == 6


def test_utf8_accents_are_distinct_users(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + ["josé,i0,5.0,1", "josè,i1,5.0,2"])
    assert {"josé", "josè"} <= set(_built(src).users["user_id"])


def test_mixed_encodings_point_at_the_first_non_utf8_line(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    _write(src, _rows() + ["josé,i0,5.0,1"])
    with open(src / "interactions.csv", "ab") as f:
        f.write("josè,i1,5.0,2\n".encode("latin-1"))
    _fails(src, tmp_path, r"byte b'\\xe8' at offset \d+ \(line 27\) is not valid UTF-8")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows(), encoding="utf-8-sig")
    assert _built(src).counts["raw"]["interactions"] == 24


def test_explicit_codec_is_strict(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    _write(src, _rows())
    with open(src / "interactions.csv", "ab") as f:
        f.write(b"u\x81,i1,5.0,2\n")  # 0x81 is undefined in cp1252
    _fails(src, tmp_path, r"byte b'\\x81' at offset \d+ \(line 26\) is not valid cp1252", encoding="cp1252")


def test_unknown_codec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"encoding 'klingon' is not a known codec.*'latin-1'"):
        from_mapping(PrepareConfig, {"source": "x", "encoding": "klingon"}, "prepare")


def _ml1m(folder: Path, title: bytes) -> Path:
    """A tiny ml-1m release folder whose first movie has `title` (raw bytes)."""
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("\n".join(
        f"{u}::{i}::5::{T0 + 10 * u + i}" for u in range(1, 5) for i in range(1, 6)) + "\n")
    movies = [b"1::" + title + b" (1995)::Comedy"] + [f"{i}::Movie {i} (1990)::Drama".encode() for i in range(2, 6)]
    (folder / "movies.dat").write_bytes(b"\n".join(movies) + b"\n")
    (folder / "users.dat").write_text("\n".join(f"{u}::M::25::4::12345" for u in range(1, 5)) + "\n")
    return folder


def test_movielens_dat_release_falls_back_to_latin1(tmp_path: Path) -> None:
    src = _ml1m(tmp_path / "ml-1m", "Café".encode("latin-1"))
    titles = _built(src).items["title"].to_list()
    assert "Café" in titles


def test_movielens_csv_release_must_be_utf8(tmp_path: Path) -> None:
    src = tmp_path / "ml-latest-small"
    _write(src, [f"{u},{i},5.0,{T0 + i}" for u in range(1, 4) for i in range(1, 5)], name="ratings.csv",
           header="userId,movieId,rating,timestamp")
    _write(src, ["1,Café (1995),Comedy"] + [f"{i},Movie {i} (1990),Drama" for i in range(2, 5)], name="movies.csv",
           header="movieId,title,genres", encoding="latin-1")
    msg = _fails(src, tmp_path, r"movies.csv: byte b'\\xe9' at offset \d+ \(line 2\) is not valid UTF-8")
    assert "--encoding latin-1" in msg


@pytest.fixture
def llmrec(synthetic_llmrec: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic LLMRec release folder that a test may break."""
    return Path(shutil.copytree(synthetic_llmrec, tmp_path / "llmrec"))


def test_netflix_item_attributes_fall_back_to_latin1(llmrec: Path) -> None:
    lines = (llmrec / "item_attribute.csv").read_text().splitlines()
    lines[0] = "0,2001,Amélie"  # Netflix layout: id,year,title
    lines[1:] = [f"{k},19{50 + k % 50},Title {k}" for k in range(1, len(lines))]
    (llmrec / "item_attribute.csv").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    prepared = _built(llmrec, split="given")
    assert prepared.items.filter(pl.col("item_id") == "0")["title"][0] == "Amélie"


def test_llmrec_json_that_is_not_utf8_is_a_data_error(llmrec: Path, tmp_path: Path) -> None:
    train = json.loads((llmrec / "train.json").read_text())
    train["josé"] = [1]
    (llmrec / "train.json").write_bytes(json.dumps(train, ensure_ascii=False).encode("latin-1"))
    _fails(llmrec, tmp_path, r"train.json: byte b'\\xe9' at offset \d+ \(line 1\) is not valid UTF-8.*--encoding",
           split="given")


def test_user_table_reader_refuses_latin1(tmp_path: Path) -> None:
    path = tmp_path / "candidates.csv"
    path.write_bytes("user_id,rank,item_id\njosé,0,i1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"candidates.csv: byte b'\\xe9' at offset 24 \(line 2\) is not valid UTF-8; "
                                        r"re-save the file as UTF-8"):
        read_table(path)


def test_user_table_reader_accepts_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_bytes("user_id,pos_item_id\nu1,i1\n".encode("utf-8-sig"))
    assert read_table(path).columns == ["user_id", "pos_item_id"]


def test_user_table_reader_names_a_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "candidates.parquet"
    pl.DataFrame({"user": [0, 1], "rank": [0, 0], "item": [3, 4]}).write_parquet(path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"candidates.parquet: cannot read this table .*complete, valid parquet file"):
        read_table(path)


# --- ratings ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "shown"), [("NaN", "nan"), ("", "None"), ("inf", "inf")])
def test_bad_rating_is_an_error_by_default(tmp_path: Path, cell: str, shown: str) -> None:
    src = _write(tmp_path / "raw", _rows() + [f"u0,i9,{cell},{T0}"])
    msg = _fails(src, tmp_path, rf"interactions.csv: 1 interaction\(s\) have a blank, NaN or infinite rating, e.g. "
                                rf"data row 25 \(user 'u0', item 'i9', rating {shown}\)")
    assert "--on-bad-rating drop" in msg


def test_bad_ratings_dropped_on_request_are_counted(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + [f"u0,i9,NaN,{T0}", f"u1,i9,,{T0}", f"u2,i9,4.0,{T0}"])
    out = prepare(PrepareConfig(source=src, on_bad_rating="drop"), tmp_path / "ds")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["bad_ratings_dropped"] == 2
    assert manifest["counts"]["raw"]["interactions"] == 27
    assert manifest["counts"]["after_dedup"]["interactions"] == 25
    assert "| blank/NaN ratings dropped | | | -2 |" in format_summary(manifest)
    assert any("2 interaction(s) with a blank, NaN or infinite rating dropped" in n for n in manifest["notes"])


def test_non_numeric_rating_names_the_value(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + [f"u0,i9,five,{T0}"])
    _fails(src, tmp_path, r"column 'rating' must hold Float64 values, but 'five' is not one \(1 bad value\(s\)\); "
                          r"ratings must be numbers", on_bad_rating="drop")


def test_rating_column_blank_everywhere_is_refused(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", [f"u{u},i{i},,{T0}" for u in range(3) for i in range(4)])
    _fails(src, tmp_path, r"column 'rating' is empty in every row; fill in the ratings, or remove the column")


def test_null_rating_in_parquet_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    pl.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "y"],
                  "rating": [5.0, None, 4.0, float("nan")]}).write_parquet(src / "interactions.parquet")
    _fails(src, tmp_path, r"interactions.parquet: 2 interaction\(s\) have a blank, NaN or infinite rating, e.g. data "
                          r"row 2 \(user 'a', item 'y', rating None\)")


def test_movielens_dat_blank_rating_follows_the_same_rule(tmp_path: Path) -> None:
    src = _ml1m(tmp_path / "ml-1m", b"Movie 1")
    (src / "ratings.dat").write_text((src / "ratings.dat").read_text().replace("1::1::5::", "1::1::::"))
    _fails(src, tmp_path, r"ratings.dat: 1 interaction\(s\) have a blank, NaN or infinite rating, e.g. data row 1 "
                          r"\(user '1', item '1', rating None\)")


def test_a_later_low_rerating_replaces_an_earlier_positive(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + [f"u0,i9,5.0,{T0}", f"u0,i9,1.0,{T0 + 100}",
                                              f"u1,i8,1.0,{T0}", f"u1,i8,5.0,{T0 + 100}"])
    prepared = _built(src)
    assert ("u0", "i9") not in _positives(prepared)
    assert ("u1", "i8") in _positives(prepared)
    assert prepared.counts["after_dedup"]["interactions"] == 26
    assert prepared.counts["after_threshold"]["interactions"] == 25


def test_rerating_order_follows_timestamps_not_file_order(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + [f"u0,i9,1.0,{T0 + 100}", f"u0,i9,5.0,{T0}"])
    assert ("u0", "i9") not in _positives(_built(src))


def test_rerating_with_equal_timestamps_keeps_the_last_row(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + [f"u0,i9,5.0,{T0}", f"u0,i9,2.0,{T0}"])
    assert ("u0", "i9") not in _positives(_built(src))


# --- timestamps ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scale", "unit"), [(1_000, "milliseconds"), (1_000_000, "microseconds")])
def test_fine_grained_timestamps_are_converted_and_noted(tmp_path: Path, scale: int, unit: str) -> None:
    lines = [f"u{u},i{i},5.0,{(T0 + 60 * (u * 6 + i)) * scale}" for u in range(4) for i in range(6)]
    prepared = _built(_write(tmp_path / "raw", lines))
    assert int(prepared.interactions["timestamp"].min()) == T0
    assert int(prepared.interactions["timestamp"].max()) == T0 + 60 * 23
    assert any(n.startswith(f"timestamps are in {unit}") and f"divided by {scale:,}" in n for n in prepared.notes)


def test_timestamps_mixing_seconds_and_milliseconds_are_refused(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + [f"u0,i9,5.0,{T0 * 1000}"])
    _fails(src, tmp_path, rf"the timestamps mix units: {T0} reads as unix seconds but {T0 * 1000} only as "
                          r"milliseconds; write every timestamp in one unit")


def test_timestamps_mixing_numbers_and_dates_say_so(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows() + ["u0,i9,5.0,2020-01-02"])
    _fails(src, tmp_path, rf"column 'timestamp' mixes unix timestamps \(e.g. '{T0}', 24 row\(s\)\) and dates "
                          r"\(e.g. '2020-01-02', 1 row\(s\)\); write every value in one form")


def test_timestamp_that_is_neither_number_nor_date(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", [f"u{u},i{i},5.0,2020-01-0{i + 1}" for u in range(3) for i in range(4)]
                 + ["u0,i9,5.0,yesterday"])
    _fails(src, tmp_path, r"column 'timestamp' must hold unix seconds or dates, but 'yesterday' is neither")


# --- empty tables, missing columns ----------------------------------------------------------------------------


def test_header_only_csv(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", [])
    _fails(src, tmp_path, r"interactions.csv: the interactions table has no rows \(a header without data")


def test_zero_row_parquet(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String}).write_parquet(src / "interactions.parquet")
    _fails(src, tmp_path, r"interactions.parquet: the interactions table has no rows")


def test_zero_byte_csv(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    (src / "interactions.csv").write_bytes(b"")
    _fails(src, tmp_path, r"interactions.csv: cannot read this table \(empty CSV\); check it is valid CSV/TSV/parquet")


def test_header_only_items_file(tmp_path: Path) -> None:
    src = _write(tmp_path / "raw", _rows())
    _write(src, [], name="items.csv", header="item_id,title")
    _fails(src, tmp_path, r"items.csv: the items table has no rows; fill it or remove the file")


def test_missing_user_column_in_parquet(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    pl.DataFrame({"uid": ["a"], "item_id": ["x"]}).write_parquet(src / "interactions.parquet")
    _fails(src, tmp_path, r"interactions.parquet: column 'user_id' is missing \(columns present: \['uid', "
                          r"'item_id'\]\); name the columns with --user-col")


def test_llmrec_release_with_only_empty_lists(llmrec: Path, tmp_path: Path) -> None:
    (llmrec / "train_mat").unlink()
    for split in ("train", "val", "test"):
        (llmrec / f"{split}.json").write_text(json.dumps({"0": [], "1": []}))
    _fails(llmrec, tmp_path, r"train.json: the interactions table has no rows", split="given")


# --- bounds: ids, pickles, features ----------------------------------------------------------------------------


def _without_features(folder: Path) -> None:
    for name in ("text_feat.npy", "image_feat.npy", "train_mat"):
        (folder / name).unlink()


def test_stray_huge_item_id_is_refused_before_allocation(llmrec: Path, tmp_path: Path) -> None:
    _without_features(llmrec)
    train = json.loads((llmrec / "train.json").read_text())
    train["3"] = train["3"] + [10**9]
    (llmrec / "train.json").write_text(json.dumps(train))
    msg = _fails(llmrec, tmp_path, r"train.json: user '3' lists item 1000000000, far beyond the data \(80 other "
                                   r"distinct item ids, the largest of them 79\)", split="given")
    assert "would make 1,000,000,001 items" in msg and "fix or remove this id" in msg


def test_stray_huge_id_in_item_attributes_is_refused(llmrec: Path, tmp_path: Path) -> None:
    _without_features(llmrec)
    with open(llmrec / "item_attribute.csv", "a") as f:
        f.write("999999999,A Stray Film (2001),Drama\n")
    _fails(llmrec, tmp_path, r"item_attribute.csv: item 999999999, far beyond the data", split="given")


def test_huge_id_with_feature_matrices_is_outside_the_items(llmrec: Path, tmp_path: Path) -> None:
    train = json.loads((llmrec / "train.json").read_text())
    train["3"] = train["3"] + [10**9]
    (llmrec / "train.json").write_text(json.dumps(train))
    _fails(llmrec, tmp_path, r"user '3' lists item 1000000000, outside the 80 items \(rows of text_feat.npy\)",
           split="given")


def test_train_mat_with_a_huge_shape_is_refused_before_conversion(llmrec: Path, tmp_path: Path) -> None:
    matrix = scipy.sparse.coo_matrix(([1.0], ([0], [1])), shape=(10**9, 80))
    (llmrec / "train_mat").write_bytes(pickle.dumps(matrix))
    _fails(llmrec, tmp_path, r"train_mat: matrix shape \(1000000000, 80\) exceeds the \(\d+, 80\) \(users, items\)",
           split="given")


def test_crafted_pickle_of_an_empty_sparse_object(llmrec: Path, tmp_path: Path) -> None:
    hollow = scipy.sparse.csr_matrix.__new__(scipy.sparse.csr_matrix)
    (llmrec / "train_mat").write_bytes(pickle.dumps(hollow, protocol=2))
    _fails(llmrec, tmp_path, r"train_mat: holds a csr_matrix without a valid shape \(AttributeError", split="given")


def test_crafted_pickle_with_inconsistent_indices(llmrec: Path, tmp_path: Path) -> None:
    matrix = scipy.sparse.csr_matrix(np.eye(3, 80))
    matrix.indices[0] = 500  # beyond the 80 columns: scipy would index out of bounds later
    (llmrec / "train_mat").write_bytes(pickle.dumps(matrix))
    _fails(llmrec, tmp_path, r"train_mat: holds a csr_matrix whose contents are inconsistent \(ValueError.*"
                             r"save_npz", split="given")


@pytest.mark.parametrize(("name", "value", "shown"), [("text_feat", np.nan, "nan"), ("image_feat", np.inf, "inf")])
def test_non_finite_features_name_the_row(llmrec: Path, tmp_path: Path, name: str, value: float, shown: str) -> None:
    features = np.load(llmrec / f"{name}.npy")
    features[17, 3] = value
    np.save(llmrec / f"{name}.npy", features)
    _fails(llmrec, tmp_path, rf"{name}.npy: row 17 \(item 17\) holds {shown} \(1 non-finite value\(s\) in that row\); "
                             r"feature matrices must be finite", split="given")
