"""Bad input: each case is a DataError naming the file, the column, an example value and a fix, and leaves no
artifact (complete or partial) at the output path."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.errors import DataError
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare


@pytest.fixture
def raw(synthetic_generic: Path, tmp_path: Path) -> Path:
    """A private copy of the synthetic generic folder that a test may break."""
    return Path(shutil.copytree(synthetic_generic, tmp_path / "raw"))


def _fails(source: Path, tmp_path: Path, pattern: str, **config: object) -> str:
    out = tmp_path / "out" / "dataset"
    with pytest.raises(DataError, match=pattern) as info:
        prepare(PrepareConfig(source=source, **config), out)
    assert not out.exists()
    assert not (out.parent.exists() and any(out.parent.iterdir())), "a partial artifact was left behind"
    return str(info.value)


def _rewrite(path: Path, old: str, new: str, count: int = 1) -> None:
    path.write_text(path.read_text().replace(old, new, count))


def test_missing_source_and_files(raw: Path, tmp_path: Path) -> None:
    _fails(tmp_path / "nowhere", tmp_path, r"nowhere: dataset path does not exist")
    (raw / "interactions.csv").unlink()
    _fails(raw, tmp_path, r"cannot tell the dataset format.*interactions.csv")
    _fails(raw, tmp_path, r"no interactions table 'interactions'.*interactions_file", format="generic")


def test_missing_llmrec_file(synthetic_llmrec: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(synthetic_llmrec, tmp_path / "llmrec"))
    (folder / "test.json").unlink()
    _fails(folder, tmp_path, r"test.json: file not found .*val.json may be \{\}", split="given")


def test_missing_column(raw: Path, tmp_path: Path) -> None:
    _rewrite(raw / "interactions.csv", "item_id", "movie")
    msg = _fails(raw, tmp_path, r"interactions.csv: column 'item_id' is missing")
    assert "'movie'" in msg and "--item-col" in msg


def test_wrong_type(raw: Path, tmp_path: Path) -> None:
    lines = (raw / "interactions.csv").read_text().splitlines()
    user, item, _, ts = lines[5].split(",")
    lines[5] = f"{user},{item},five,{ts}"
    (raw / "interactions.csv").write_text("\n".join(lines) + "\n")
    _fails(raw, tmp_path, r"interactions.csv: column 'rating' must hold Float64 values, but 'five' is not one.*"
                          r"ratings must be numbers")


def test_wrong_type_in_items(raw: Path, tmp_path: Path) -> None:
    lines = (raw / "items.csv").read_text().splitlines()
    fields = lines[3].split(",")
    year_at = lines[0].split(",").index("year") - len(lines[0].split(",")) + len(fields)  # titles hold commas
    fields[year_at] = "nineteen"
    lines[3] = ",".join(fields)
    (raw / "items.csv").write_text("\n".join(lines) + "\n")
    _fails(raw, tmp_path, r"items.csv: column 'year' must hold Int32 values, but 'nineteen' is not one.*whole numbers")


def test_duplicate_item_ids(raw: Path, tmp_path: Path) -> None:
    lines = (raw / "items.csv").read_text().splitlines()
    (raw / "items.csv").write_text("\n".join(lines + [lines[4]]) + "\n")
    item_id = lines[4].split(",")[0]
    _fails(raw, tmp_path, rf"items.csv: column 'item_id' has duplicate id '{item_id}'.*remove the duplicate rows")


def test_interactions_pointing_at_unknown_items(raw: Path, tmp_path: Path) -> None:
    with open(raw / "interactions.csv", "a") as f:
        f.write("u0001,i9999,5.0,1500000000\n")
    _fails(raw, tmp_path, r"interactions.csv: column 'item_id' refers to item 'i9999', which is not in .*items.csv.*"
                          r"add the missing items")


def test_unknown_users_and_empty_users_file(raw: Path, tmp_path: Path) -> None:
    with open(raw / "interactions.csv", "a") as f:
        f.write("u7777,i0001,5.0,1500000000\n")
    _fails(raw, tmp_path, r"column 'user_id' refers to user 'u7777', which is not in .*users.csv")
    (raw / "users.csv").write_text("user_id,member_since\n")
    _fails(raw, tmp_path, r"users.csv: the users table has no rows; fill it or remove the file")


def test_nothing_left_after_filtering(raw: Path, tmp_path: Path) -> None:
    _fails(raw, tmp_path, r"no interactions left after filtering \(min_rating=6.0.*e.g. user 'u0000'.*lower min_rating",
           min_rating=6.0)
    _fails(raw, tmp_path, r"no interactions left after filtering.*user_min=500", user_min=500)


def test_empty_user_id_cell(raw: Path, tmp_path: Path) -> None:
    _rewrite(raw / "interactions.csv", "\nu0000,", "\n,")
    _fails(raw, tmp_path, r"interactions.csv: column 'user_id' is empty in row 1")


def test_unsafe_pickle_is_refused_before_running(synthetic_llmrec: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(synthetic_llmrec, tmp_path / "llmrec"))
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    (folder / "train_mat").write_bytes(pickle.dumps(Exploit()))
    msg = _fails(folder, tmp_path, r"train_mat: refused to unpickle global (posix|os|nt)\.system", split="given")
    assert "nothing was executed" in msg and "save_npz" in msg
    assert not marker.exists()


def test_llmrec_json_with_wrong_type(synthetic_llmrec: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(synthetic_llmrec, tmp_path / "llmrec"))
    train = json.loads((folder / "train.json").read_text())
    train["2"] = [1, "abc"]
    (folder / "train.json").write_text(json.dumps(train))
    _fails(folder, tmp_path, r"train.json: user '2' must map to a list of integer item ids, but holds 'abc'",
           split="given")


def test_llmrec_item_outside_features(synthetic_llmrec: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(synthetic_llmrec, tmp_path / "llmrec"))
    test = json.loads((folder / "test.json").read_text())
    test["0"] = [80]
    (folder / "test.json").write_text(json.dumps(test))
    _fails(folder, tmp_path, r"test.json: user '0' lists item 80, outside the 80 items \(rows of text_feat.npy\)",
           split="given")


def test_given_split_leakage(tmp_path: Path) -> None:
    folder = generate_synthetic(tmp_path / "llmrec", layout="llmrec", n_users=10, n_items=20, seed=1)
    train = json.loads((folder / "train.json").read_text())
    test = json.loads((folder / "test.json").read_text())
    test["0"] = test["0"] + [train["0"][0]]
    (folder / "test.json").write_text(json.dumps(test))
    _fails(folder, tmp_path, rf"pair \(user, item\) \('0', '{train['0'][0]}'\) is in test and also in train.*"
                             r"on_leak='drop'", split="given")
    out = prepare(PrepareConfig(source=folder, split="given", on_leak="drop"), tmp_path / "dropped")
    assert json.loads((out / "manifest.json").read_text())["counts"]["leakage"]["leak_train_overlap"] == 1


def test_given_split_needs_a_given_source(raw: Path, tmp_path: Path) -> None:
    _fails(raw, tmp_path, r"split 'given' needs a source with its own split", split="given")
