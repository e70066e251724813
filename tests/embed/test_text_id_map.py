"""Free text keyed by another id: a text table whose ids a separate map file translates into the dataset's
(``TextTable.id_map``), with the alignment counted through the map and a map that cannot decide an entity's text
refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrec_local.artifacts.base import read_manifest
from llmrec_local.artifacts.embeddings import load_embedding
from llmrec_local.config import config_hash, from_mapping, hash_dict
from llmrec_local.embed.config import EmbedConfig, IdMap, TextTable
from llmrec_local.embed.stage import embed
from llmrec_local.errors import ConfigError, DataError

# the dataset's items are m0..m5; the text table is keyed by an IMDb-like id, the map says which is which
TEXTS = {"tt010": "A slapstick comedy about two clumsy bakers.", "tt011": "A romantic comedy set in Paris.",
         "tt012": "A documentary about the first world war.", "tt013": "Pirates fight aliens in deep space."}
LINKS = {"tt010": "m0", "tt011": "m1", "tt012": "m2", "tt013": "m3", "tt099": "m9"}


def _config(texts: Path, id_map: IdMap | None, **table: object) -> EmbedConfig:
    return EmbedConfig(sources=("item_text",), device="cpu", batch_size=16,
                       item_text_file=TextTable(path=texts, id_map=id_map, **table))  # type: ignore[arg-type]


def _write_links(path: Path, links: dict[str, str]) -> Path:
    pl.DataFrame({"imdbId": list(links), "movieId": list(links.values())}).write_csv(path)
    return path


def test_text_through_an_id_map_equals_the_table_rewritten_with_dataset_ids(dataset: Path, tmp_path: Path) -> None:
    texts = tmp_path / "descriptions.csv"
    # tt012 twice (same text: harmless), tt500 not in the map, tt099 mapped to an item the dataset does not have
    rows = [*TEXTS.items(), ("tt012", TEXTS["tt012"]), ("tt500", "Unknown to the map."),
            ("tt099", "An item of another catalogue.")]
    pl.DataFrame(rows, schema={"imdb": pl.String, "blurb": pl.String}, orient="row").write_csv(texts)
    links = _write_links(tmp_path / "links.csv", LINKS)
    mapped = embed(_config(texts, IdMap(links, "imdbId", "movieId"), id_column="imdb", text_column="blurb"),
                   dataset, tmp_path / "mapped", progress=False)["item_text"]

    rewritten = tmp_path / "rewritten.csv"
    pl.DataFrame({"id": [LINKS[k] for k in TEXTS], "text": list(TEXTS.values())}).write_csv(rewritten)
    direct = embed(_config(rewritten, None), dataset, tmp_path / "direct", progress=False)["item_text"]

    a, b = load_embedding(mapped, 6, entity="item"), load_embedding(direct, 6, entity="item")
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.mask, [True, True, True, True, False, False])

    inputs = read_manifest(mapped)["inputs"]
    assert inputs["ids"] == 6 and inputs["matched_ids"] == 4 and inputs["unmatched_ids"] == 2
    assert inputs["unmatched_examples"] == ["tt500", "tt099"]
    assert inputs["entities_with_text"] == 4 and inputs["coverage"] == pytest.approx(4 / 6, abs=1e-4)
    assert inputs["text_lengths"] == read_manifest(direct)["inputs"]["text_lengths"]
    record = inputs["id_map"]
    assert record["from_column"] == "imdbId" and record["to_column"] == "movieId" and record["keys"] == 5
    assert record["not_in_map"] == 1 and record["not_in_map_examples"] == ["tt500"]
    assert record["mapped_outside_dataset"] == 1 and record["mapped_outside_examples"] == ["tt099 -> m9"]
    assert "id_map" not in read_manifest(direct)["inputs"]


def test_numeric_ids_in_json_and_parquet_are_compared_as_text(dataset: Path, tmp_path: Path) -> None:
    # a release keyed by row number (integers in JSON), a parquet map from row number to the dataset's id
    texts = tmp_path / "rows.json"
    texts.write_text(json.dumps([{"row": i, "text": t} for i, t in enumerate(TEXTS.values())]))
    links = tmp_path / "rows_to_items.parquet"
    pl.DataFrame({"row": [3, 2, 1, 0], "item": ["m3", "m2", "m1", "m0"]}).write_parquet(links)
    path = embed(_config(texts, IdMap(links, "row", "item"), id_column="row"), dataset, tmp_path / "e",
                 progress=False)["item_text"]
    np.testing.assert_array_equal(load_embedding(path, 6, entity="item").mask, [True] * 4 + [False] * 2)
    assert read_manifest(path)["inputs"]["matched_ids"] == 4


def test_csv_ids_are_read_as_written(dataset: Path, tmp_path: Path) -> None:
    # MovieLens' links.csv writes imdbId with leading zeros: read as integers they would no longer match the text
    texts = tmp_path / "plots.csv"
    texts.write_text("imdb,plot\n" + "".join(f"00{i}7,{t}\n" for i, t in enumerate(TEXTS.values())))
    links = tmp_path / "links.csv"
    links.write_text("movieId,imdbId\n" + "".join(f"m{i},00{i}7\n" for i in range(4)))
    path = embed(_config(texts, IdMap(links, "imdbId", "movieId"), id_column="imdb", text_column="plot"), dataset,
                 tmp_path / "e", progress=False)["item_text"]
    assert read_manifest(path)["inputs"]["matched_ids"] == 4


def test_a_map_that_cannot_decide_an_entity_text_is_an_error(dataset: Path, tmp_path: Path) -> None:
    texts = tmp_path / "texts.csv"
    pl.DataFrame({"imdb": list(TEXTS), "text": list(TEXTS.values())}).write_csv(texts)
    conflicting_key = tmp_path / "dup_key.csv"
    pl.DataFrame({"imdbId": ["tt010", "tt011", "tt010"], "movieId": ["m0", "m1", "m4"]}).write_csv(conflicting_key)
    with pytest.raises(DataError, match=r"imdbId 'tt010' is listed twice, mapped to 'm0' and to 'm4'; keep one row "
                                        r"per imdbId"):
        embed(_config(texts, IdMap(conflicting_key, "imdbId", "movieId"), id_column="imdb"), dataset,
              tmp_path / "e", progress=False)
    conflicting_target = _write_links(tmp_path / "dup_target.csv", {**LINKS, "tt013": "m0"})
    with pytest.raises(DataError, match=r"ids 'tt010' and 'tt013' of the text table both map to item id 'm0' with "
                                        r"different texts; keep one of them in the id_map"):
        embed(_config(texts, IdMap(conflicting_target, "imdbId", "movieId"), id_column="imdb"), dataset,
              tmp_path / "e", progress=False)
    # the map's ids in the wrong column: nothing reaches the dataset, and the message shows the forms on both sides
    wrong = tmp_path / "swapped.csv"
    pl.DataFrame({"imdbId": list(LINKS.values()), "movieId": list(LINKS)}).write_csv(wrong)
    with pytest.raises(DataError, match=r"only 0 of the dataset's 6 items got a text.*not imdbId values of the "
                                        r"id_map.*look like \['m0', 'm1', 'm2'\]"):
        embed(_config(texts, IdMap(wrong, "imdbId", "movieId"), id_column="imdb"), dataset, tmp_path / "e",
              progress=False)
    with pytest.raises(DataError, match=r"no column 'imdb_id'.*set from_column"):
        embed(_config(texts, IdMap(wrong, "imdb_id", "movieId"), id_column="imdb"), dataset, tmp_path / "e",
              progress=False)


def test_id_map_settings_and_hashes(tmp_path: Path) -> None:
    base = {"sources": ["item_text"], "item_text_file": {"path": "items.csv", "id_column": "imdb"}}
    plain = from_mapping(EmbedConfig, base, "embed")
    # absent = the configs of before the setting: not hashed, so no existing artifact changes identity
    assert "id_map" not in hash_dict(plain)["item_text_file"]
    mapped = from_mapping(EmbedConfig, {**base, "item_text_file": {
        **base["item_text_file"], "id_map": {"path": "links.csv", "from_column": "imdbId", "to_column": "movieId"}}},
        "embed")
    assert mapped.item_text_file is not None and mapped.item_text_file.id_map == IdMap(Path("links.csv"), "imdbId",
                                                                                         "movieId")
    assert config_hash(mapped) != config_hash(plain)
    with pytest.raises(ConfigError, match="from_column and to_column are both 'id'"):
        from_mapping(EmbedConfig, {**base, "item_text_file": {
            "path": "x.csv", "id_map": {"path": "m.csv", "from_column": "id", "to_column": "id"}}}, "embed")
    with pytest.raises(ConfigError, match="required key 'to_column'"):
        from_mapping(EmbedConfig, {**base, "item_text_file": {
            "path": "x.csv", "id_map": {"path": "m.csv", "from_column": "imdbId"}}}, "embed")
