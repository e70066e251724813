"""Free text as a side input: item_text / user_text from CSV, parquet and JSON files mapped through the dataset's
id vocabulary, with the alignment checks (matched ids, examples of unmatched ones, coverage) in the manifest."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.embeddings import load_embedding
from llmrec_local.config import from_mapping
from llmrec_local.embed.config import EmbedConfig, TextTable
from llmrec_local.embed.sources import text_lengths
from llmrec_local.embed.stage import embed
from llmrec_local.errors import ConfigError, DataError

DESCRIPTIONS = {"m0": "A slapstick comedy about two clumsy bakers.", "m1": "A romantic comedy set in Paris.",
                "m2": "A documentary about the first world war.", "m3": "Pirates fight aliens in deep space."}


def _config(path: Path, **table: object) -> EmbedConfig:
    return EmbedConfig(sources=("item_text",), device="cpu", batch_size=16,
                       item_text_file=TextTable(path=path, **table))  # type: ignore[arg-type]


def test_item_text_file_with_unmatched_ids_is_reported(dataset: Path, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "descriptions.csv"
    rows = [*DESCRIPTIONS.items(), ("x99", "A film of another catalogue."), ("x100", "Another one.")]
    pl.DataFrame(rows, schema={"movie": pl.String, "description": pl.String}, orient="row").write_csv(file)
    with caplog.at_level(logging.WARNING):
        path = embed(_config(file, id_column="movie", text_column="description"), dataset, tmp_path / "e",
                     progress=False)["item_text"]
    assert "4 of 6 items got a text" in caplog.text and "x99" in caplog.text
    inputs = read_manifest(path)["inputs"]
    assert inputs["rows"] == 6 and inputs["matched_ids"] == 4 and inputs["unmatched_ids"] == 2
    assert inputs["unmatched_examples"] == ["x99", "x100"]
    assert inputs["entities"] == 6 and inputs["entities_with_text"] == 4
    assert inputs["coverage"] == pytest.approx(4 / 6, abs=1e-4)
    assert inputs["text_lengths"]["texts"] == 4
    assert inputs["text_lengths"]["max"] == max(len(t) for t in DESCRIPTIONS.values())
    table = load_embedding(path, 6, entity="item")
    # items m4 and m5 are not in the file: zero rows, mask False; the texts are the file's, not the titles
    np.testing.assert_array_equal(table.mask, [True, True, True, True, False, False])
    assert read_manifest(path)["counts"]["encoded"] == 4


def test_too_few_matched_ids_is_an_error_with_the_fix(dataset: Path, tmp_path: Path) -> None:
    file = tmp_path / "by_index.csv"
    # indices instead of the dataset's external ids (m0, m1, ...): nothing matches
    pl.DataFrame({"id": [0, 1, 2, 3], "text": list(DESCRIPTIONS.values())}).write_csv(file)
    with pytest.raises(DataError, match=r"only 0 of the dataset's 6 items got a text.*look like \['m0', 'm1', "
                                        r"'m2'\].*id_column"):
        embed(_config(file), dataset, tmp_path / "e", progress=False)
    # no id matched at all is an error whatever min_coverage says
    with pytest.raises(DataError, match="only 0 of"):
        embed(_config(file, min_coverage=0.0), dataset, tmp_path / "e", progress=False)


def test_json_and_parquet_tables_and_the_user_text_source(dataset: Path, tmp_path: Path) -> None:
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"id": k, "text": v} for k, v in DESCRIPTIONS.items()]))
    users = tmp_path / "users.parquet"
    pl.DataFrame({"user_id": ["u0", "u1", "u2", "u3"],
                  "profile": ["Likes comedies.", "Watches war documentaries.", "", "Space opera fan."]}
                 ).write_parquet(users)
    config = EmbedConfig(sources=("item_text", "user_text"), device="cpu", item_text_file=TextTable(items),
                         user_text_file=TextTable(users, id_column="user_id", text_column="profile"))
    paths = embed(config, dataset, tmp_path / "e", progress=False)
    assert read_manifest(paths["item_text"])["inputs"]["matched_ids"] == 4
    profiles = load_embedding(paths["user_text"], 4, entity="user")
    np.testing.assert_array_equal(profiles.mask, [True, True, False, True])  # the empty text is no input
    assert read_manifest(paths["user_text"])["inputs"]["empty_texts"] == 1


def test_table_checks(dataset: Path, tmp_path: Path) -> None:
    file = tmp_path / "dup.csv"
    pl.DataFrame({"id": ["m0", "m0"], "text": ["one text", "another text"]}).write_csv(file)
    with pytest.raises(DataError, match="'m0' is listed twice with different texts"):
        embed(_config(file), dataset, tmp_path / "e", progress=False)
    with pytest.raises(DataError, match="no column 'movieId'.*id_column"):
        embed(_config(file, id_column="movieId"), dataset, tmp_path / "e", progress=False)
    with pytest.raises(DataError, match="does not exist"):
        embed(_config(tmp_path / "missing.csv"), dataset, tmp_path / "e", progress=False)
    with pytest.raises(ConfigError, match="user_text_file is not set"):
        from_mapping(EmbedConfig, {"sources": ["user_text"]}, "embed")
    with pytest.raises(ConfigError, match="add \"item_text\" to sources"):
        from_mapping(EmbedConfig, {"sources": ["user_profiles"], "item_text_file": {"path": "x.csv"}}, "embed")


def test_text_lengths() -> None:
    assert text_lengths([None, None]) == {"texts": 0}
    stats = text_lengths(["a" * n for n in range(1, 11)] + [None])
    assert stats["texts"] == 10 and stats["min"] == 1 and stats["max"] == 10 and stats["mean"] == 5.5
    assert stats["p10"] <= stats["p50"] <= stats["p90"]
