"""The embedded default dataset (bundled MovieLens ml-latest-small) prepares with the documented counts."""

from __future__ import annotations

from pathlib import Path

from llmrec_local.artifacts.dataset import Dataset
from llmrec_local.prepare.bundled import BUNDLED_RAW, bundled_dataset


def test_bundled_ml_latest_small(tmp_path: Path) -> None:
    assert (BUNDLED_RAW / "README.txt").is_file(), "the licence must travel with the data"
    path = bundled_dataset(tmp_path)
    assert path == tmp_path / "dataset"
    ds = Dataset.load(path)
    raw = ds.manifest["counts"]["raw"]
    assert (raw["users"], raw["interactions"]) == (610, 100_836)
    assert (ds.n_users, ds.n_items) == (609, 6298)
    split = ds.split()["split"].value_counts().sort("split")
    assert dict(zip(split["split"], split["count"])) == {"test": 9709, "train": 33996, "val": 4875}
    assert bundled_dataset(tmp_path) == path  # second call reuses the complete artifact
