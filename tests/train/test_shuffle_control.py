"""The shuffle control: a seeded derangement of a side input across the entities that have one (no entity keeps
its own row when more than one exists), reproducible, recorded in the side description (manifest, config hash)."""

from __future__ import annotations

import numpy as np
import pytest

from llmrec_local.errors import DataError
from llmrec_local.seeding import derangement
from llmrec_local.train.side import SideInputs, resolve_side


@pytest.mark.parametrize("n", [2, 3, 10, 257])
def test_derangement_has_no_fixed_point_and_is_reproducible(n: int) -> None:
    for seed in range(20):
        perm = derangement(n, seed)
        assert sorted(perm.tolist()) == list(range(n))  # a permutation
        assert not np.any(perm == np.arange(n))  # nobody keeps its own
        np.testing.assert_array_equal(perm, derangement(n, seed))  # seeded
    assert len({tuple(derangement(10, s)) for s in range(20)}) > 1  # the seed matters


def test_derangement_of_fewer_than_two() -> None:
    assert derangement(0, 0).tolist() == [] and derangement(1, 0).tolist() == [0]


def _distinct_rows(n: int, dim: int = 4) -> np.ndarray:
    return np.arange(1, n * dim + 1, dtype=np.float32).reshape(n, dim)


def test_shuffled_item_text_moves_every_present_row() -> None:
    text = _distinct_rows(8)
    text[[2, 5]] = 0  # two items without text
    real = resolve_side(SideInputs(item_text=text), None, 3, 8)
    shuffled = resolve_side(SideInputs(item_text=text, shuffle={"item_text": 7}), None, 3, 8)
    present = np.flatnonzero(text.any(axis=1))
    out = shuffled.item_text
    assert out is not None
    # rows without text stay empty; every item with text gets another item's text, and all texts are still used
    assert not out[[2, 5]].any()
    for i in present:
        assert not np.array_equal(out[i], text[i])
    assert sorted(map(tuple, out[present])) == sorted(map(tuple, text[present]))
    desc = shuffled.description["shuffle:item_text"]
    assert desc["seed"] == 7 and desc["entities"] == 6 and desc["fixed_points"] == 0
    # the description (part of the run's config hash) differs from the real run's
    assert "shuffle:item_text" not in real.description
    again = resolve_side(SideInputs(item_text=text, shuffle={"item_text": 7}), None, 3, 8)
    np.testing.assert_array_equal(again.item_text, out)
    other = resolve_side(SideInputs(item_text=text, shuffle={"item_text": 8}), None, 3, 8)
    assert other.description["shuffle:item_text"]["permutation"] != desc["permutation"]


def test_attributes_move_together_and_profiles_and_pairs_are_deranged() -> None:
    director, country = _distinct_rows(5), -_distinct_rows(5)
    profiles = _distinct_rows(4, 3)
    pairs = np.array([[0, 1, 2], [0, 3, 4], [1, 2, 0], [3, 4, 1]], dtype=np.int64)
    side = SideInputs(item_attributes={"director": director, "country": country}, user_profiles=profiles,
                      pairs=pairs, shuffle={"item_attributes": 1, "user_profiles": 2, "pairs": 3})
    out = resolve_side(side, None, 4, 5)
    # one permutation for every field: row i's director and country come from the same item
    source = [int(np.flatnonzero((director == row).all(axis=1))[0]) for row in out.item_attributes["director"]]
    np.testing.assert_array_equal(out.item_attributes["country"], country[source])
    assert all(s != i for i, s in enumerate(source))
    assert out.user_profiles is not None and not np.any((out.user_profiles == profiles).all(axis=1))
    assert out.pairs is not None
    # items of the pairs are kept, users are deranged among those with pairs (0, 1, 3)
    np.testing.assert_array_equal(out.pairs[:, 1:], pairs[:, 1:])
    mapping = dict(zip(pairs[:, 0].tolist(), out.pairs[:, 0].tolist()))
    assert sorted(mapping.values()) == [0, 1, 3] and all(k != v for k, v in mapping.items())


def test_shuffle_needs_the_input() -> None:
    with pytest.raises(DataError, match="no item_text side input"):
        resolve_side(SideInputs(shuffle={"item_text": 0}), None, 2, 2)
    with pytest.raises(ValueError, match="not one of"):
        SideInputs(shuffle={"titles": 0})
