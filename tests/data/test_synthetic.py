"""Synthetic generic layout -> prepare -> Dataset: the contract other stages rely on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare


def test_dataset_api_matches_the_contract(prepared_generic: Path, synthetic_generic: Path) -> None:
    ds = Dataset.load(prepared_generic)
    assert (ds.n_users, ds.n_items) == (60, 80)
    items, users = ds.items(), ds.users()
    assert items.columns[:6] == ["item", "item_id", "title", "year", "genres", "image_path"]
    assert items["item"].to_list() == list(range(80))
    assert items.schema["genres"] == pl.List(pl.String) and items.schema["year"] == pl.Int32
    assert all(Path(p).is_file() for p in items["image_path"])  # posters resolved to absolute paths
    assert users["user"].to_list() == list(range(60))
    truth = json.loads((synthetic_generic / "truth.json").read_text())
    assert "age" not in users.columns and set(users["user_id"]) == set(truth["users"])
    assert ds.genre_vocabulary() == sorted(truth["genres"])

    arrays = ds.arrays()
    assert arrays.train.dtype == np.int64 and arrays.train.shape[1] == 2
    all_pairs = np.concatenate([arrays.train, arrays.val, arrays.test])
    assert len(all_pairs) == len(ds.interactions()) == len({tuple(p) for p in all_pairs.tolist()})
    # Every user trains, and validation/test pairs are disjoint from train.
    assert set(arrays.train[:, 0]) == set(range(60))
    train = {tuple(p) for p in arrays.train.tolist()}
    assert not train & {tuple(p) for p in np.concatenate([arrays.val, arrays.test]).tolist()}

    history = ds.train_history()
    assert history.columns == ["user", "item", "timestamp"] and len(history) == len(arrays.train)
    assert history.group_by("user").agg(pl.col("timestamp").is_sorted().alias("ok"))["ok"].all()


def test_positives_follow_the_planted_preferences(prepared_generic: Path, synthetic_generic: Path) -> None:
    """Ratings >= 4 are mostly preferred-genre items: the known answer the model tests build on."""
    ds = Dataset.load(prepared_generic)
    truth = json.loads((synthetic_generic / "truth.json").read_text())
    joined = ds.interactions().join(ds.users(), on="user").join(ds.items(), on="item")
    preferred = [g in truth["users"][u]["preferred_genres"] for u, g in
                 zip(joined["user_id"], joined["genres"].list.first())]
    assert np.mean(preferred) > 0.85


def test_manifest_and_summary(prepared_generic: Path) -> None:
    manifest = read_manifest(prepared_generic)
    counts = manifest["counts"]
    assert counts["raw"] == {"users": 60, "items": 80, "interactions": 900, "catalog_items": 80}
    assert counts["final"]["interactions"] == counts["after_kcore"]["interactions"]
    assert set(manifest["inputs"]) == {"interactions", "items", "users"}
    assert all(len(v["sha256"]) == 64 for v in manifest["inputs"].values())
    summary = (prepared_generic / "summary.md").read_text()
    assert "| raw (before filtering) | 60 | 80 rated of 80 | 900 |" in summary and "sparsity" in summary


def test_same_config_is_reused_and_seed_changes_split(synthetic_generic: Path, tmp_path: Path) -> None:
    config = PrepareConfig(source=synthetic_generic, seed=1)
    out = prepare(config, tmp_path / "ds")
    stamp = (out / "_COMPLETE").read_text()
    assert prepare(config, out) == out and (out / "_COMPLETE").read_text() == stamp
    again = prepare(PrepareConfig(source=synthetic_generic, seed=1), tmp_path / "ds_again")
    assert Dataset.load(again).split().equals(Dataset.load(out).split())  # deterministic
    other = prepare(PrepareConfig(source=synthetic_generic, seed=2), tmp_path / "ds_other")
    assert not Dataset.load(other).split().equals(Dataset.load(out).split())


def test_planted_preferences_beat_popularity(prepared_generic: Path) -> None:
    """Known answer: item-kNN on the training pairs recovers the planted genres, popularity cannot (Recall@10)."""
    arrays = Dataset.load(prepared_generic).arrays()
    seen = np.zeros((arrays.n_users, arrays.n_items))
    seen[arrays.train[:, 0], arrays.train[:, 1]] = 1.0
    popularity = seen.sum(0)
    cosine = (seen.T @ seen) / (np.sqrt(np.outer(popularity, popularity)) + 1e-9)
    np.fill_diagonal(cosine, 0.0)

    def recall_at_10(scores: np.ndarray) -> float:
        scores = np.where(seen > 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1)[:, :10]
        hits = [len(set(arrays.test[arrays.test[:, 0] == u, 1]) & set(top[u])) /
                min(10, int((arrays.test[:, 0] == u).sum())) for u in np.unique(arrays.test[:, 0])]
        return float(np.mean(hits))

    knn, pop = recall_at_10(seen @ cosine), recall_at_10(np.tile(popularity, (arrays.n_users, 1)))
    assert knn > 2 * pop, (knn, pop)
