"""The multi-seed command as a door onto the pipeline runner: LLMRec with a free-text side input and its shuffled
twin over two seeds on a tiny dataset (real MiniLM, few epochs), with the paired summary and the report."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from llmrec_local.artifacts.base import COMPLETE_MARKER, read_manifest
from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.errors import ConfigError
from llmrec_local.run import multiseed


@pytest.fixture
def item_text(dataset_path: Path, tmp_path: Path) -> Path:
    """Free item text for every item of the tiny dataset plus one id it does not know."""
    ids = Dataset.load(dataset_path).vocabulary("item").ids
    file = tmp_path / "items.csv"
    texts = [f"Film number {i}, a story about {('love', 'war', 'space', 'money')[n % 4]}." for n, i in enumerate(ids)]
    pl.DataFrame({"movieId": [*ids, "not-an-item"], "blurb": [*texts, "stray"]}).write_csv(file)
    return file


def test_llmrec_with_item_text_real_vs_shuffled_over_seeds(dataset_path: Path, item_text: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    argv = ["--data", str(dataset_path), "--out", str(out), "--models", "llmrec-fixed", "--side", "item_text",
            "--shuffle", "item_text", "--item-text", str(item_text), "--baseline", "llmrec-fixed-shuffled",
            "--seeds", "0", "1", "epochs=2", "batch_size=64", "model.dim=8", "embed.device=cpu",
            "embed.item_text_file.id_column=movieId", "embed.item_text_file.text_column=blurb"]
    assert multiseed.main(argv) == 0
    printed = capsys.readouterr().out
    assert "llmrec-fixed " in printed and "diff_recall@20" in printed

    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline"] == "llmrec-fixed-shuffled"
    real = summary["systems"]["llmrec-fixed"]
    assert real["seeds"] == 2 and real["recall@20"]["vs_baseline_over_seeds"]["n"] == 2

    embedded = read_manifest(out / "embed" / "item_text")["inputs"]
    assert embedded["unmatched_ids"] == 1 and embedded["unmatched_examples"] == ["not-an-item"]
    assert embedded["coverage"] == 1.0

    real0, shuffled0, shuffled1 = (read_manifest(out / "runs" / name) for name in
                                   ("llmrec-fixed-seed0", "llmrec-fixed-shuffled-seed0",
                                    "llmrec-fixed-shuffled-seed1"))
    assert "shuffle:item_text" not in real0["side_inputs"]
    drawn0, drawn1 = shuffled0["side_inputs"]["shuffle:item_text"], shuffled1["side_inputs"]["shuffle:item_text"]
    assert drawn0["fixed_points"] == 0 and drawn0["entities"] == Dataset.load(dataset_path).n_items
    assert drawn0["permutation"] != drawn1["permutation"]  # each seed draws its own derangement
    assert real0["config_hash"] != shuffled0["config_hash"]

    report = (out / "report" / "report.md").read_text()
    assert "item_text (shuffled)" in report and "Free-text files" in report

    # rerun: every run is complete, nothing is trained again
    before = (out / "runs" / "llmrec-fixed-seed0" / COMPLETE_MARKER).stat().st_mtime_ns
    assert multiseed.main(argv) == 0
    assert (out / "runs" / "llmrec-fixed-seed0" / COMPLETE_MARKER).stat().st_mtime_ns == before


def test_study_checks(tmp_path: Path) -> None:
    def study(*extra: str):
        return multiseed.build_study(multiseed.parse_args(["--data", str(tmp_path), "--out", str(tmp_path), *extra]))

    with pytest.raises(ConfigError, match="add --side item_text"):
        study("--models", "llmrec", "--item-text", "x.csv", "--baseline", "llmrec")
    with pytest.raises(ConfigError, match="only side inputs of the runs can be shuffled"):
        study("--models", "llmrec", "--shuffle", "item_text", "--baseline", "llmrec")
    with pytest.raises(ConfigError, match="--augment DIR"):
        study("--models", "llmrec", "--side", "pairs", "--baseline", "llmrec")
    with pytest.raises(ConfigError, match="baseline 'mf' is not one of"):
        study("--models", "llmrec", "--side", "item_text")
    built = study("--models", "mf", "llmrec", "--side", "item_text", "--shuffle", "item_text")
    assert [(r.name, r.side, r.shuffle) for r in built.runs] == [
        ("mf", (), ()), ("llmrec", ("item_text",), ()), ("llmrec-shuffled", ("item_text",), ("item_text",))]
    assert built.prepare is None and built.embed is not None and built.embed.sources == ("item_text",)
