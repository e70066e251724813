"""The candidates stage: top-K unseen items (training items masked), ties, imports by index or external id, the
entry function's sources, and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.candidates import load_candidates, write_candidates
from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.candidates.config import CandidatesConfig
from llmrec_local.candidates.stage import candidates, from_file, from_run, top_k_unseen
from llmrec_local.errors import ArtifactError, ConfigError, DataError


def test_top_k_masks_train_items_and_orders_by_score() -> None:
    user = np.array([[1.0], [1.0]], dtype=np.float32)
    item = np.array([[5.0], [4.0], [3.0], [2.0], [1.0]], dtype=np.float32)
    train = np.array([[0, 0], [0, 2], [1, 4]])
    items, valid = top_k_unseen(user, item, train, k=3)
    assert items.tolist() == [[1, 3, 4], [0, 1, 2]] and valid.all()


def test_ties_go_to_lower_index_and_short_rows_are_flagged() -> None:
    user = np.ones((1, 2), dtype=np.float32)
    item = np.ones((4, 2), dtype=np.float32)
    items, valid = top_k_unseen(user, item, np.array([[0, 1], [0, 2]]), k=3, chunk=1)
    assert items[0, :2].tolist() == [0, 3] and valid.tolist() == [[True, True, False]]


def test_from_run_and_artifact(dataset: Dataset, base_run: Path, tmp_path: Path) -> None:
    frame, inputs = from_run(base_run, dataset, 5)
    assert frame.group_by("user").len()["len"].to_list() == [5] * dataset.n_users
    train = {tuple(r) for r in dataset.arrays().train.tolist()}
    assert not any((u, i) in train for u, i in zip(frame["user"], frame["item"]))
    path = write_candidates(frame, tmp_path / "candidates", k=5, source="base_run", masked_train=True, inputs=inputs)
    loaded, fingerprint = load_candidates(path)
    assert loaded.equals(frame.sort(["user", "rank"])) and len(fingerprint) == 16


def test_from_run_rejects_other_dataset(dataset: Dataset, tmp_path: Path) -> None:
    from testkit.fakes import write_run

    with pytest.raises(ArtifactError, match="another dataset"):
        from_run(write_run(tmp_path / "r", dataset.n_users + 1, dataset.n_items), dataset, 5)


def test_import_tables_and_arrays(dataset: Dataset, tmp_path: Path) -> None:
    ids = dataset.items()["item_id"].to_list()
    users = dataset.users()["user_id"].to_list()
    csv = tmp_path / "c.csv"
    pl.DataFrame({"user_id": [users[0]] * 3, "rank": [3, 1, 2], "item_id": ids[:3]}).write_csv(csv)
    frame, _ = from_file(csv, dataset, 10)
    assert frame.to_dicts() == [{"user": 0, "rank": 0, "item": 1}, {"user": 0, "rank": 1, "item": 2},
                                {"user": 0, "rank": 2, "item": 0}]
    npy = tmp_path / "c.npy"
    np.save(npy, np.tile(np.arange(12), (dataset.n_users, 1)))
    frame, _ = from_file(npy, dataset, 10)
    assert frame.height == dataset.n_users * 10 and frame["rank"].max() == 9
    np.save(npy, np.full((dataset.n_users, 3), dataset.n_items))
    with pytest.raises(DataError, match="outside"):
        from_file(npy, dataset, 10)
    torch_file = tmp_path / "candidate_indices"
    import torch

    torch.save(torch.arange(dataset.n_users * 4).reshape(-1, 4) % dataset.n_items, torch_file)
    assert from_file(torch_file, dataset, 10)[0].height == dataset.n_users * 4


def test_import_by_external_ids_goes_through_the_vocabulary(dataset: Dataset, tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    pl.DataFrame({"user_id": ["no-such-user"], "rank": [0], "item_id": [dataset.items()["item_id"][0]]}).write_csv(csv)
    with pytest.raises(DataError, match="'no-such-user' is not in the dataset's vocabulary"):
        from_file(csv, dataset, 10)


def test_chunking_does_not_change_the_result(dataset: Dataset, base_run: Path) -> None:
    from safetensors.numpy import load_file

    tensors = load_file(str(base_run / "embeddings.safetensors"))
    train = dataset.arrays().train
    whole = top_k_unseen(tensors["user"], tensors["item"], train, 7)
    chunked = top_k_unseen(tensors["user"], tensors["item"], train, 7, chunk=5)
    assert all(np.array_equal(a, b) for a, b in zip(whole, chunked))


def test_stage_entry_from_a_base_run_or_imported(dataset_path: Path, base_run: Path, tmp_path: Path) -> None:
    config = CandidatesConfig(k=4)
    built = candidates(config, dataset_path, tmp_path / "a", base_run=base_run)
    manifest = read_manifest(built)
    assert manifest["k"] == 4 and manifest["source"] == "base_run" and manifest["masked_train"] is True
    # a complete candidates artifact is used as it is; a file is imported into `out`
    assert candidates(config, dataset_path, tmp_path / "b", imported=built) == built
    assert not (tmp_path / "b").exists()
    frame, _ = load_candidates(built)
    frame.write_parquet(tmp_path / "c.parquet")
    imported = candidates(config, dataset_path, tmp_path / "c", imported=tmp_path / "c.parquet")
    assert read_manifest(imported)["source"] == "import" and load_candidates(imported)[0].equals(frame)
    for sources in ({}, {"base_run": base_run, "imported": built}):
        with pytest.raises(ConfigError, match="exactly one source"):
            candidates(config, dataset_path, tmp_path / "d", **sources)


def test_command_line(dataset_path: Path, base_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    from llmrec_local.candidates.__main__ import main

    recipe = tmp_path / "r.toml"
    recipe.write_text("[candidates]\nk = 6\nepochs = 3\n")
    assert main(["--data", str(dataset_path), "--base-run", str(base_run), "--out", str(tmp_path / "c"),
                 "--recipe", str(recipe), "--set", "k=3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["k"] == 3 and printed["rows"] == 3 * Dataset.load(dataset_path).n_users
    with pytest.raises(ConfigError, match="recipe.seeds"):
        main(["--data", str(dataset_path), "--base-run", str(base_run), "--out", str(tmp_path / "d"),
              "--set", "seed=1"])
