"""LLMRec release layout: JSON splits, train_mat (restricted unpickling + agreement), features, item_attribute.csv."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse

from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.data.loaders import detect_format
from llmrec_local.data.loaders.llmrec import load_llmrec
from llmrec_local.errors import DataError
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare


def write_release(folder: Path, *, netflix: bool = True, train_mat: bool = True) -> Path:
    """7 items (rows of text_feat), items 5 and 6 without any interaction; users 0..3, user 3 only has empty lists."""
    folder.mkdir(parents=True)
    train = {"0": [0, 1, 2], "1": [1, 3], "2": [0, 4], "3": []}
    (folder / "train.json").write_text(json.dumps(train))
    (folder / "val.json").write_text(json.dumps({"0": [3], "1": [], "2": [], "3": []}))
    (folder / "test.json").write_text(json.dumps({"0": [4], "1": [0], "2": [2], "3": []}))
    if train_mat:
        rows = [int(u) for u, its in train.items() for _ in its]
        cols = [i for its in train.values() for i in its]
        mat = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(4, 7))
        (folder / "train_mat").write_bytes(pickle.dumps(mat))
    np.save(folder / "text_feat.npy", np.arange(7 * 3, dtype=np.float32).reshape(7, 3))
    np.save(folder / "image_feat.npy", -np.arange(7 * 2, dtype=np.float32).reshape(7, 2))
    if netflix:
        lines = ['0,2003,Dinosaur Planet', '1,2004,"Isle of Man TT 2004 Review"', '2,1997,Character',
                 '3,NaN,"Paula Abdul\'s Get Up & Dance, Part 2"', '4,1991,Sick, Sick, Sick',
                 '5,2004,The Rise and Fall of ECW', '6,1999,"Crash, Burn ""and"" Roll"']
    else:
        lines = ["0,Toy Story (1995),Animation|Comedy", "1,\"American President, The (1995)\",Comedy|Drama",
                 "2,Sick, Sick, Sick (1991),Drama", "3,Heat (1995),Action", "4,Babylon 5,Sci-Fi",
                 "5,Nixon (1995),Drama", "6,Casino (1995),Crime"]
    (folder / "item_attribute.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_netflix_layout(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "netflix")
    assert detect_format(folder) == "llmrec"
    raw = load_llmrec(folder)
    assert raw.variant == "netflix" and any("train_mat agrees" in n for n in raw.notes)
    items = {r["item_id"]: r for r in raw.items.to_dicts()}
    assert items["4"]["title"] == "Sick, Sick, Sick" and items["4"]["year"] == 1991
    assert items["3"]["title"] == "Paula Abdul's Get Up & Dance, Part 2" and items["3"]["year"] is None
    assert items["6"]["title"] == 'Crash, Burn "and" Roll'
    assert items["1"]["title"] == "Isle of Man TT 2004 Review"

    out = prepare(PrepareConfig(source=folder, split="given"), tmp_path / "ds")
    ds = Dataset.load(out)
    # n_items comes from text_feat.npy: items 5 and 6 exist without interactions; user 3 (empty lists) does not.
    assert (ds.n_users, ds.n_items) == (3, 7)
    arrays = ds.arrays()
    assert sorted(map(tuple, arrays.train.tolist())) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 3), (2, 0), (2, 4)]
    assert arrays.val.tolist() == [[0, 3]] and sorted(map(tuple, arrays.test.tolist())) == [(0, 4), (1, 0), (2, 2)]
    np.testing.assert_array_equal(np.load(ds.feature_path("text_feat")), np.load(folder / "text_feat.npy"))
    assert ds.manifest["features"] == {"text_feat": [7, 3], "image_feat": [7, 2]}
    assert ds.interactions()["rating"].null_count() == len(ds.interactions())


def test_movielens_attribute_layout(tmp_path: Path) -> None:
    raw = load_llmrec(write_release(tmp_path / "ml", netflix=False))
    assert raw.variant == "movielens"
    items = {r["item_id"]: r for r in raw.items.to_dicts()}
    assert items["2"]["title"] == "Sick, Sick, Sick" and items["2"]["year"] == 1991
    assert items["2"]["genres"] == ["Drama"]
    assert items["1"]["title"] == "American President, The" and items["1"]["genres"] == ["Comedy", "Drama"]
    assert items["4"]["title"] == "Babylon 5" and items["4"]["year"] is None


def test_feature_rows_follow_the_items_after_filtering(tmp_path: Path) -> None:
    """With only interacted items kept, features/ rows are re-gathered so row i still belongs to item i."""
    folder = write_release(tmp_path / "netflix")
    out = prepare(PrepareConfig(source=folder, split="given", item_catalog="interacted"), tmp_path / "ds")
    ds = Dataset.load(out)
    assert ds.n_items == 5
    original = np.load(folder / "text_feat.npy")
    rows = ds.items()["item_id"].cast(pl.Int64).to_numpy()
    np.testing.assert_array_equal(np.load(ds.feature_path("text_feat")), original[rows])


def test_random_resplit_pools_the_given_files(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "netflix")
    ds = Dataset.load(prepare(PrepareConfig(source=folder, split="random", test_ratio=0.3), tmp_path / "ds"))
    assert len(ds.split()) == 11 and any("re-split" in n for n in ds.manifest["notes"])


def test_train_mat_disagreement_is_reported(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "netflix")
    mat = scipy.sparse.csr_matrix((np.ones(2), ([0, 1], [0, 5])), shape=(4, 7))
    (folder / "train_mat").write_bytes(pickle.dumps(mat))
    with pytest.raises(DataError, match=r"train_mat does not agree with train.json: 1 pair\(s\) only in train_mat, "
                                        r"6 only in train.json \(e.g. \(user, item\) \(1, 5\)\).*delete train_mat"):
        load_llmrec(folder)


def test_without_train_mat_or_features(tmp_path: Path) -> None:
    folder = write_release(tmp_path / "plain", train_mat=False)
    (folder / "text_feat.npy").unlink()
    (folder / "image_feat.npy").unlink()
    raw = load_llmrec(folder)
    assert len(raw.items) == 7 and raw.features == {}  # n_items from the largest id in item_attribute.csv
    assert any("no train_mat" in n for n in raw.notes)


def test_synthetic_llmrec_layout_round_trips(synthetic_llmrec: Path, tmp_path: Path) -> None:
    ds = Dataset.load(prepare(PrepareConfig(source=synthetic_llmrec, split="given"), tmp_path / "ds"))
    train = json.loads((synthetic_llmrec / "train.json").read_text())
    assert len(ds.arrays().train) == sum(len(v) for v in train.values())
    assert ds.n_items == np.load(synthetic_llmrec / "text_feat.npy").shape[0] == 80
    assert ds.items()["title"].str.contains(", The").any() and len(ds.genre_vocabulary()) == 6
