"""The one masked top-K (`masked_top_k`): exclusion, the tie rule (equal scores: lower item index first), short rows,
and agreement with an exact sort on scores full of ties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrec_local.evaluate.ranking import PairIndex, masked_top_k


def _exact(scores: np.ndarray, k: int) -> np.ndarray:
    """Reference: every row fully sorted by (-score, item)."""
    items = np.arange(scores.shape[1])
    return np.stack([np.lexsort((items, -row))[:k] for row in scores])


def test_orders_by_score_and_masks_exclusions() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1]])
    values, items = masked_top_k(scores, 2, [(torch.tensor([0, 1]), torch.tensor([1, 0]))])
    assert items.tolist() == [[3, 2], [1, 2]]
    assert values.flatten().tolist() == pytest.approx([0.7, 0.5, 0.3, 0.2])
    assert scores[0, 1] == float("-inf"), "exclusions are written into the score matrix"


def test_ties_inside_the_top_k_go_to_the_lower_index() -> None:
    scores = torch.tensor([[1.0, 3.0, 2.0, 3.0, 3.0, 0.0]])
    assert masked_top_k(scores, 4)[1].tolist() == [[1, 3, 4, 2]]


def test_a_tie_at_the_kth_score_keeps_the_lower_indices() -> None:
    scores = torch.tensor([[5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    assert masked_top_k(scores, 3)[1].tolist() == [[0, 1, 2]]
    reversed_scores = torch.tensor([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0]])
    assert masked_top_k(reversed_scores, 3)[1].tolist() == [[7, 0, 1]]


def test_short_rows_end_in_masked_items_flagged_minus_inf() -> None:
    scores = torch.ones(1, 4)
    values, items = masked_top_k(scores, 3, [(torch.tensor([0, 0]), torch.tensor([1, 2]))])
    assert items.tolist() == [[0, 3, 1]]
    assert torch.isfinite(values).tolist() == [[True, True, False]]


def test_k_is_capped_at_the_number_of_items() -> None:
    values, items = masked_top_k(torch.tensor([[0.0, 2.0, 2.0]]), 10)
    assert items.tolist() == [[1, 2, 0]] and values.shape == (1, 3)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_matches_an_exact_sort_on_scores_full_of_ties(k: int) -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(64, 40)).astype(np.float32)  # many equal values in every row
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[0] = -np.inf  # a row with nothing left
    expected = _exact(scores, k)
    values, items = masked_top_k(torch.from_numpy(scores.copy()), k)
    assert np.array_equal(items.numpy(), expected)
    assert np.array_equal(values.numpy(), np.take_along_axis(scores, expected, axis=1))


def test_evaluation_ranking_uses_the_same_rule() -> None:
    """rank_and_score's hits come from masked_top_k: with all scores equal, the lowest unmasked indices win."""
    from llmrec_local.evaluate.ranking import rank_and_score

    user, item = torch.ones(1, 2), torch.ones(60, 2)
    truth = PairIndex.build(np.array([[0, 2], [0, 55]]), 1, 60)
    train = PairIndex.build(np.array([[0, 0]]), 1, 60)
    _, per_user = rank_and_score(user, item, truth, [train], ks=(10, 50))
    # ranking 1, 2, 3, ...: item 2 is at rank 1 (a hit at 10), item 55 at rank 54 (outside the top 50)
    assert per_user["recall@10"].tolist() == [0.5] and per_user["recall@50"].tolist() == [0.5]
