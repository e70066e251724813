"""What text is embedded: rendering, attribute modes, profiles, posters, and input checks."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.embed.sources import (
    attribute_inputs,
    image_inputs,
    item_text_inputs,
    profile_inputs,
    render_item_text,
)
from llmrec_local.errors import DataError


def test_render_item_text() -> None:
    row = {"title": "Toy Story", "year": 1995, "genres": ["Adventure", "Animation"], "tags": "pixar"}
    assert render_item_text(row, ["title", "year", "genres", "tags"]) == (
        "Toy Story (1995). Genres: Adventure, Animation. Tags: pixar")
    assert render_item_text(row, ["title", "genres"]) == "Toy Story. Genres: Adventure, Animation"
    assert render_item_text({"title": None, "year": 2001, "genres": []}, ["title", "year", "genres"]) == "Year: 2001"
    assert render_item_text({"title": " ", "year": None, "genres": []}, ["title", "year", "genres"]) is None


def test_item_text_inputs(dataset: Path) -> None:
    src = item_text_inputs(Dataset.load(dataset).items(), ["title", "year", "genres", "tags", "plot"])
    assert src.source == "item_text" and src.entity == "item" and src.ids.tolist() == list(range(6))
    assert src.inputs[0] == "Laugh Out Loud (1999). Genres: Comedy. Tags: hilarious"
    assert src.inputs[5] is None
    assert src.details["skipped_fields"] == ["plot"]
    with pytest.raises(DataError, match="none of the item text fields"):
        item_text_inputs(Dataset.load(dataset).items(), ["plot"])


def test_attribute_inputs_per_field_and_concat(augment: Path) -> None:
    per_field = attribute_inputs(augment, 6, mode="per_field")
    assert [s.source for s in per_field] == [
        "item_attributes:director", "item_attributes:country", "item_attributes:language"]  # cache_key skipped
    director = per_field[0]
    assert director.folder == "item_attributes/director"
    assert director.inputs == ["Jane Doe", "Jane Doe", "unknown", "Rick Roe", None, None]
    assert per_field[1].inputs[3] is None  # null country
    missing_unknown = attribute_inputs(augment, 6, mode="per_field", fields=["director"], unknown_as_missing=True)
    assert missing_unknown[0].inputs[2] is None
    (concat,) = attribute_inputs(augment, 6, mode="concat")
    assert concat.source == "item_attributes" and concat.folder == "item_attributes/_concat"
    assert concat.inputs[3] == "director: Rick Roe. language: French"
    with pytest.raises(DataError, match="'budget' is not a text column"):
        attribute_inputs(augment, 6, mode="per_field", fields=["budget"])


def test_records_must_match_the_dataset(augment: Path) -> None:
    with pytest.raises(DataError, match="outside this dataset's"):
        attribute_inputs(augment, 3, mode="per_field")
    file = augment / "user_profiles" / "records.parquet"
    pl.DataFrame({"user": [0, 0], "profile_text": ["a", "b"]}).write_parquet(file)
    with pytest.raises(DataError, match="appears more than once"):
        profile_inputs(augment, 4)
    with pytest.raises(DataError, match="has not been run"):
        profile_inputs(augment.parent / "nowhere", 4)


def test_profile_inputs(augment: Path) -> None:
    src = profile_inputs(augment, 4)
    assert src.entity == "user" and src.ids.tolist() == [0, 1, 2, 3]
    assert src.inputs[0].startswith("age: 25-34") and src.inputs[2] is None and src.inputs[3] is None


def test_image_inputs(dataset: Path, tmp_path: Path) -> None:
    items = Dataset.load(dataset).items()
    src = image_inputs(items, dataset)
    assert src.inputs[0] == dataset / "posters/0.png" and src.inputs[5] is None
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "m1.jpg").write_bytes(b"x")
    (folder / "notes.txt").write_text("not an image")
    by_id = image_inputs(items, dataset, folder)
    assert by_id.inputs == [None, folder / "m1.jpg", None, None, None, None]
    with pytest.raises(DataError, match="image folder"):
        image_inputs(items, dataset, tmp_path / "nope")
