"""Validation carved from a given split's training pairs (`val_from_train`), and the settings around it."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.config import config_hash, from_mapping
from llmrec_local.data.synthetic import generate_synthetic
from llmrec_local.errors import ConfigError, DataError
from llmrec_local.prepare.__main__ import build_parser, config_from_args
from llmrec_local.prepare.config import PrepareConfig
from llmrec_local.prepare.stage import prepare


def _pairs(ds: Dataset, split: str) -> set[tuple[int, int]]:
    return set(ds.split().filter(pl.col("split") == split).select("user", "item").iter_rows())


def _carved(source: Path, out: Path, value: float, seed: int = 0, **config: object) -> Dataset:
    return Dataset.load(prepare(PrepareConfig(source=source, split="given", val_from_train=value, seed=seed,
                                              **config), out))


def test_val_equal_to_test_is_refused_without_a_choice(release_val_is_test: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"is in both val and test .*--val-from-train 5.*on_leak='drop'"):
        prepare(PrepareConfig(source=release_val_is_test, split="given"), tmp_path / "ds")
    assert not (tmp_path / "ds").exists()
    # on_leak='drop' empties validation: allowed here, but noted (the trainer refuses it; tests/train).
    ds = Dataset.load(prepare(PrepareConfig(source=release_val_is_test, split="given", on_leak="drop"),
                              tmp_path / "dropped"))
    assert not _pairs(ds, "val") and ds.manifest["validation"] == {"origin": "source", "pairs": 0, "users": 0}
    assert any("no validation pairs" in note for note in ds.manifest["notes"])


def test_carved_validation_replaces_the_source_validation(release_val_is_test: Path, tmp_path: Path) -> None:
    source = Dataset.load(prepare(PrepareConfig(source=release_val_is_test, split="given", on_leak="drop"),
                                  tmp_path / "plain"))
    ds = _carved(release_val_is_test, tmp_path / "ds", 5)
    train, val, test = (_pairs(ds, s) for s in ("train", "val", "test"))
    # Validation is drawn from the training pairs only; the test set is the release's, untouched.
    assert val and val.isdisjoint(test) and val | train == _pairs(source, "train") and test == _pairs(source, "test")
    record = ds.manifest["validation"]
    assert record["origin"] == "val_from_train" and record["mode"] == "min_history" and record["seed"] == 0
    assert record["pairs"] == len(val) and record["source_val_pairs_discarded"] == len(test)
    assert "validation: carved from train (val_from_train=5, min_history, seed 0)" in (tmp_path / "ds" /
                                                                                        "summary.md").read_text()


def test_min_history_moves_one_pair_of_each_user_with_enough(release_val_is_test: Path, tmp_path: Path) -> None:
    source = Dataset.load(prepare(PrepareConfig(source=release_val_is_test, split="given", on_leak="drop"),
                                  tmp_path / "plain"))
    history = source.split().filter(pl.col("split") == "train").group_by("user").len()
    n = 6  # the fixture's users have 5 or 6 training pairs
    ds = _carved(release_val_is_test, tmp_path / "ds", n)
    per_user = dict(ds.split().filter(pl.col("split") == "val").group_by("user").len().iter_rows())
    expected = {u: 1 for u, k in history.iter_rows() if k >= n}
    assert per_user == expected and 0 < len(expected) < len(history)  # the fixture has users on both sides


def test_ratio_moves_a_share_of_each_user(release_val_is_test: Path, tmp_path: Path) -> None:
    source = Dataset.load(prepare(PrepareConfig(source=release_val_is_test, split="given", on_leak="drop"),
                                  tmp_path / "plain"))
    history = dict(source.split().filter(pl.col("split") == "train").group_by("user").len().iter_rows())
    ds = _carved(release_val_is_test, tmp_path / "ds", 0.25)
    per_user = dict(ds.split().filter(pl.col("split") == "val").group_by("user").len().iter_rows())
    assert per_user == {u: min(max(round(k * 0.25), 1), k - 1) for u, k in history.items() if k >= 2}
    assert ds.manifest["validation"]["mode"] == "ratio"


def test_carved_validation_is_reproducible_by_seed(release_val_is_test: Path, tmp_path: Path) -> None:
    first = _pairs(_carved(release_val_is_test, tmp_path / "a", 0.2, seed=1), "val")
    again = _pairs(_carved(release_val_is_test, tmp_path / "b", 0.2, seed=1), "val")
    other = _pairs(_carved(release_val_is_test, tmp_path / "c", 0.2, seed=2), "val")
    assert first == again and first != other and len(first) == len(other)


def test_test_pairs_cannot_leak_into_carved_validation(tmp_path: Path) -> None:
    """A release whose test pairs also sit in train (dropped from test by on_leak='drop'): whatever the seed, no
    validation pair is a test pair of the release, and no user loses all training pairs."""
    folder = generate_synthetic(tmp_path / "leaky", layout="llmrec", n_users=20, n_items=30,
                                interactions_per_user=6, seed=2)
    train = json.loads((folder / "train.json").read_text())
    test = json.loads((folder / "test.json").read_text())
    test = {u: items + train[u][:2] for u, items in test.items()}  # two training pairs of each user leak into test
    (folder / "test.json").write_text(json.dumps(test))
    released_test = {(u, str(i)) for u, items in test.items() for i in items}
    for seed in range(5):
        ds = _carved(folder, tmp_path / f"ds{seed}", 0.5, seed=seed, on_leak="drop")
        val = ds.split().filter(pl.col("split") == "val").join(ds.users(), on="user").join(ds.items(), on="item")
        assert len(val) and released_test.isdisjoint(zip(val["user_id"], val["item_id"]))
        users = ds.split().filter(pl.col("split") == "train")["user"].unique()
        assert set(users) == set(ds.split()["user"].unique())
        assert ds.manifest["counts"]["leakage"]["leak_train_overlap"] > 0


@pytest.mark.parametrize("bad, message", [
    ({"split": "given", "val_from_train": 1}, "val_from_train must be 0 .*integer N >= 2"),
    ({"split": "given", "val_from_train": 2.5}, "val_from_train must be 0"),
    ({"split": "given", "val_from_train": -0.1}, "val_from_train must be 0"),
    ({"split": "random", "val_from_train": 0.1}, "applies to split 'given' only"),
    ({"split": "given", "val_ratio": 0.2}, "does not use val_ratio=0.2.*set val_from_train"),
    ({"split": "given", "test_ratio": 0.1}, "does not use test_ratio=0.1"),
])
def test_settings_are_checked(bad: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping(PrepareConfig, {"source": "x", **bad}, "prepare")


def test_cli_refuses_val_ratio_with_a_given_split() -> None:
    """`--split given --val-ratio 0.1` (the default value, so the config alone cannot tell) is not ignored."""
    args = build_parser().parse_args(["src", "--out", "o", "--split", "given", "--val-ratio", "0.1"])
    with pytest.raises(ConfigError, match=r"--val-ratio does not apply to --split given.*--val-from-train"):
        config_from_args(args)
    args = build_parser().parse_args(["src", "--out", "o", "--split", "given", "--val-from-train", "5"])
    assert config_from_args(args).val_from_train == 5.0


def test_new_settings_leave_the_config_hash_alone() -> None:
    base = PrepareConfig(source="data/x", split="given")
    assert config_hash(PrepareConfig(source="data/x", split="given", val_from_train=0.0, split_col="split")) == \
        config_hash(base) != config_hash(PrepareConfig(source="data/x", split="given", val_from_train=5))
