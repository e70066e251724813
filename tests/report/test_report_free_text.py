"""Free text in the report: text lengths (a distribution), never value counts of nearly distinct texts; the
alignment of free-text files with the dataset's ids."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from llmrec_local.artifacts.augmentation import records_path
from llmrec_local.report.stage import render_markdown
from llmrec_local.run.stage import _value_counts


def test_imported_descriptions_are_described_by_their_lengths(tmp_path: Path) -> None:
    job = tmp_path / "item_attributes"
    job.mkdir()
    descriptions = [f"A long description number {i} of a film, written elsewhere by a model." for i in range(20)]
    pl.DataFrame({"item": list(range(20)), "director": ["Jane Doe"] * 15 + ["Rick Roe"] * 5,
                  "description": descriptions}).write_parquet(records_path(job))
    dist = _value_counts(job)
    assert dist["director"] == {"Jane Doe": 15, "Rick Roe": 5}
    lengths = dist["description"]["text_lengths"]
    assert lengths["texts"] == 20 and lengths["min"] == min(map(len, descriptions))

    md = render_markdown({"augment": {"item_attributes": {"model": {"alias": "qwen2-7b"}, "distributions": dist}}})
    assert "item_attributes: description (free text)" in md and "most frequent description" not in md
    assert "most frequent director" in md


def test_side_texts_table() -> None:
    md = render_markdown({"side_texts": {"item_text": {
        "file": "items.csv", "rows": 9742, "matched_ids": 6298, "unmatched_ids": 3444,
        "unmatched_examples": ["5", "7"], "entities": 6298, "entities_with_text": 6298, "coverage": 1.0,
        "text_lengths": {"texts": 6298, "min": 12, "p10": 40, "p50": 70, "p90": 160, "max": 900, "mean": 88.1}}}})
    assert "Text side inputs: length in characters" in md and "| item_text | 6298 | 12 | 40 | 70 |" in md
    assert "Free-text files: alignment" in md and "5, 7" in md and "6298 / 6298 (100.0%)" in md
