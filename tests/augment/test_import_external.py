"""Import of external augmentations: LLMRec's release pickles and tables, into our artifact formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.artifacts.embeddings import load_embedding
from llmrec_local.augment import imports
from llmrec_local.errors import DataError


@pytest.fixture()
def release(tmp_path: Path, dataset: Dataset) -> Path:
    """LLMRec-style pickles keyed by the dataset's external ids (as the LLMRec loader writes them)."""
    folder = tmp_path / "release"
    folder.mkdir()
    uids = [int(u) for u in range(dataset.n_users)]
    users = dataset.users()["user_id"].to_list()
    items = dataset.items()["item_id"].to_list()
    rng = np.random.default_rng(0)
    dump = lambda name, obj: pickle.dump(obj, open(folder / name, "wb"))  # noqa: E731
    dump("augmented_sample_dict", {u: {0: items[1], 1: items[2]} for u in users})
    dump("augmented_user_init_embedding", {u: rng.normal(size=16) for u in users})
    dump("augmented_atttribute_embedding_dict",
         {f: {i: list(rng.normal(size=16)) for i in items} for f in ("director", "country")})
    dump("augmented_attribute_dict", {i: {0: "director", 1: "U.S.", 2: "english"} for i in items})
    dump("augmented_user_profiling_dict", {u: "{'age': '25-34', 'gender': 'Male'}" for u in users})
    assert len(uids) == len(users)
    return folder


def test_llmrec_release_becomes_our_artifacts(release: Path, dataset: Dataset, tmp_path: Path) -> None:
    out = tmp_path / "out"
    written = imports.import_llmrec_release(release, dataset, out)
    assert set(written) == {"pairs", "attributes", "profiles", "user_profiles", "item_attributes:director",
                            "item_attributes:country"}
    pairs = pl.read_parquet(written["pairs"] / "records.parquet")
    assert pairs.height == dataset.n_users and set(pairs["pos_item"]) == {1} and set(pairs["neg_item"]) == {2}
    attrs = pl.read_parquet(written["attributes"] / "records.parquet")
    assert set(attrs["director"]) == {"unknown"} and set(attrs["country"]) == {"United States"}
    assert set(attrs["language"]) == {"English"}
    profiles = pl.read_parquet(written["profiles"] / "records.parquet")
    assert profiles["profile_text"][0].startswith("{'age'") and profiles["age"][0] == "unknown"
    table = load_embedding(written["user_profiles"], dataset.n_users, "user")
    assert table.vectors.shape == (dataset.n_users, 16) and table.mask.all()
    director = load_embedding(out / "embed" / "item_attributes" / "director", dataset.n_items, "item")
    assert director.vectors.shape == (dataset.n_items, 16)
    assert read_manifest(written["item_attributes:country"])["source"] == "item_attributes:country"


def test_pickle_with_code_is_refused(dataset: Dataset, tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    path = tmp_path / "augmented_sample_dict"
    pickle.dump({0: Evil()}, open(path, "wb"))
    with pytest.raises(DataError, match="refused to unpickle global builtins.print"):
        imports.import_pairs(path, dataset, tmp_path / "out")


def test_tables_with_external_ids_and_bad_ids(dataset: Dataset, tmp_path: Path) -> None:
    users = dataset.users()["user_id"].to_list()[:3]
    items = dataset.items()["item_id"].to_list()
    csv = tmp_path / "pairs.csv"
    pl.DataFrame({"user_id": users, "pos_item_id": items[:3], "neg_item_id": items[3:6]}).write_csv(csv)
    path = imports.import_pairs(csv, dataset, tmp_path / "out")
    assert pl.read_parquet(path / "records.parquet")["pos_item"].to_list() == [0, 1, 2]
    profiles = tmp_path / "profiles.parquet"
    pl.DataFrame({"user": [0, 1], "age": ["25-34", "forty"], "liked_genres": ["Drama|Comedy", None],
                  "country": ["USA", "u.k."]}).write_parquet(profiles)
    rec = pl.read_parquet(imports.import_profiles(profiles, dataset, tmp_path / "out") / "records.parquet")
    assert rec["age"].to_list() == ["25-34", "unknown"] and rec["liked_genres"][0].to_list() == ["Drama", "Comedy"]
    assert rec["country"].to_list() == ["United States", "United Kingdom"]
    assert rec["profile_text"][0].startswith("Age: 25-34. Gender: unknown. Liked genres: Drama, Comedy.")
    bad = tmp_path / "bad.csv"
    pl.DataFrame({"item_id": ["no-such-item"], "director": ["x"], "country": ["y"], "language": ["z"]}).write_csv(bad)
    with pytest.raises(DataError, match="'no-such-item' is not in the dataset's vocabulary"):
        imports.import_attributes(bad, dataset, tmp_path / "out2")
