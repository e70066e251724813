"""IdVocabulary: external ids <-> contiguous indices, one policy for unknown ids."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec_local.errors import DataError
from llmrec_local.ids import IdVocabulary


def test_index_compares_ids_as_text() -> None:
    vocab = IdVocabulary("item", ["10", "2", "abc"])
    assert vocab.index([2, "10", "abc"]).tolist() == [1, 0, 2]
    assert 10 in vocab and "10" in vocab and "11" not in vocab and len(vocab) == 3


def test_unknown_ids_error_names_the_first_the_count_and_the_source() -> None:
    vocab = IdVocabulary("user", ["u1", "u2"])
    message = r"imports.csv: user id 'x' is not in the dataset's vocabulary \(2 unknown of 3"
    with pytest.raises(DataError, match=message):
        vocab.index(["u1", "x", "y"], where="imports.csv")


def test_drop_policy_leaves_unknown_ids_out() -> None:
    vocab = IdVocabulary("user", ["u1", "u2"])
    assert vocab.index(["u2", "zz", "u1"], unknown="drop").tolist() == [1, 0]
    assert vocab.unknown(["u2", "zz", "zz"]) == ["zz", "zz"]


def test_duplicate_ids_and_out_of_range_indices_are_refused() -> None:
    with pytest.raises(DataError, match=r"lists id 'a' twice"):
        IdVocabulary("item", ["a", "b", "a"])
    vocab = IdVocabulary("item", ["a", "b"])
    vocab.check_indices(np.array([0, 1]))
    with pytest.raises(DataError, match=r"cands.parquet: item index 2 is outside \[0, 2\)"):
        vocab.check_indices(np.array([0, 2]), where="cands.parquet")
