"""The embeddings kind: write_embedding + load_embedding round trip (rows scattered by id), and alignment errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmrec_local.artifacts.base import ArtifactWriter
from llmrec_local.artifacts.embeddings import STAGE, load_embedding, write_embedding
from llmrec_local.errors import ArtifactError


def _write(path: Path, ids: list[int], mask: np.ndarray | None = None, entity: str = "item") -> Path:
    vectors = np.arange(2 * len(ids), dtype=np.float64).reshape(len(ids), 2)
    with ArtifactWriter(path, stage=STAGE, config_hash="h") as w:
        write_embedding(w.dir, w.manifest, entity, np.array(ids), vectors, mask)
        w.manifest.update(source="item_text", entity=entity, dim=2)
    return path


def test_round_trip(tmp_path: Path) -> None:
    table = load_embedding(_write(tmp_path / "e", [2, 0], np.array([True, False])), 3, entity="item")
    assert table.vectors.dtype == np.float32
    assert table.vectors.tolist() == [[2, 3], [0, 0], [0, 1]]  # row of id 2 first in the file
    assert table.mask.tolist() == [False, False, True]
    no_mask = load_embedding(_write(tmp_path / "f", [0, 1]), 2)
    assert no_mask.mask.all() and not (tmp_path / "f" / "mask.npy").exists()


def test_foreign_embeddings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="holds user embeddings, expected item"):
        load_embedding(_write(tmp_path / "u", [0], entity="user"), 3, entity="item")
    with pytest.raises(ArtifactError, match="outside this dataset's"):
        load_embedding(_write(tmp_path / "big", [0, 5]), 3)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_embedding(tmp_path / "missing", 3)
