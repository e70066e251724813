import math

import pytest
import torch
import torch.nn.functional as F

from llmrec_local.models.losses import (
    bpr_loss,
    bpr_scores,
    inverse_reg_original,
    prune_keep_index,
    pruned_score_loss,
    pruned_score_loss_split,
    sce_loss,
)


def triples(margins):
    """1-d embeddings with u=1, pos=margin, neg=0, so the BPR margin of triple n is margins[n]."""
    m = torch.tensor(margins, dtype=torch.float32)[:, None]
    return torch.ones_like(m), m, torch.zeros_like(m)


def test_prune_keeps_exactly_the_documented_triples():
    losses = torch.tensor([0.5, 2.0, 0.1, 1.0, 3.0])
    # drop 0.6 of 5 -> keep int(0.4 * 5) = 2
    assert sorted(prune_keep_index(losses, 0.6, "hardest").tolist()) == [1, 4]
    assert sorted(prune_keep_index(losses, 0.6, "easiest").tolist()) == [0, 2]
    # the original's default: drop 0.71 of 100 -> keep int(0.29 * 100) = 29 hardest
    big = torch.arange(100, dtype=torch.float32)
    assert sorted(prune_keep_index(big, 0.71, "hardest").tolist()) == list(range(71, 100))


def test_pruned_bpr_value_matches_hand_computation():
    u, p, n = triples([2.0, -1.0, 0.5, -3.0])  # losses: -logsig(margin)
    s = F.logsigmoid(torch.tensor([2.0, -1.0, 0.5, -3.0]))
    # keep int(0.5 * 4) = 2: hardest = margins -3 and -1; easiest = 2 and 0.5
    scores = bpr_scores(u, p, n)
    assert pruned_score_loss(scores, 0.5, "hardest").item() == pytest.approx(-(s[1] + s[3]).item() / 2, rel=1e-6)
    assert pruned_score_loss(scores, 0.5, "easiest").item() == pytest.approx(-(s[0] + s[2]).item() / 2, rel=1e-6)
    assert pruned_score_loss(scores, 0.0, "hardest").item() == pytest.approx(bpr_loss(u, p, n).item())


def test_prune_rejects_bad_arguments():
    with pytest.raises(ValueError):
        prune_keep_index(torch.ones(3), 1.0, "hardest")
    with pytest.raises(ValueError):
        prune_keep_index(torch.ones(3), 0.5, "median")


def test_sce_loss_hand_cases():
    x = torch.tensor([[1.0, 0.0]])
    assert sce_loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    assert sce_loss(x, torch.tensor([[0.0, 3.0]])).item() == pytest.approx(1.0)
    assert sce_loss(x, -x, gamma=2.0).item() == pytest.approx(4.0)
    assert sce_loss(x, -x, gamma=3.0).item() == pytest.approx(8.0)


def test_inverse_reg_is_the_original_formula():
    u, p, n = torch.full((2, 3), 1.0), torch.full((2, 3), 2.0), torch.zeros(2, 3)
    expected = (1 / (2 * 6.0 + 1e-8) + 1 / (2 * 24.0 + 1e-8) + 1 / 1e-8) / 4
    assert inverse_reg_original(u, p, n, batch_size=4).item() == pytest.approx(expected, rel=1e-6)
    assert not math.isnan(expected)


def test_split_pruning_keeps_every_observed_triple():
    margins = [-3.0, -2.0, 4.0, -5.0, 1.0, 2.0]  # 2 observed, then 4 extra triples
    u, p, n = triples(margins)
    s = F.logsigmoid(torch.tensor(margins))
    # extra losses: margins -5 (largest), 1, 2, 4 (smallest); drop 0.5 -> keep 2 easiest extra: margins 4 and 2
    expected = -(s[0] + s[1] + s[2] + s[5]) / 4
    got = pruned_score_loss_split(bpr_scores(u, p, n), 2, 0.5, "easiest")
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert pruned_score_loss_split(bpr_scores(u, p, n), 6, 0.5, "easiest").item() == pytest.approx(
        bpr_loss(u, p, n).item())


def test_score_loss_prunes_each_column_on_its_own():
    g = torch.Generator().manual_seed(0)
    u, p, n = (torch.randn(50, 3, 4, generator=g) for _ in range(3))
    s = F.logsigmoid((u * p).sum(-1) - (u * n).sum(-1))  # (50, 3): three independent terms
    for keep in ("hardest", "easiest"):
        got = pruned_score_loss(s, 0.71, keep)
        assert got.shape == (3,)
        for t in range(3):
            column = bpr_scores(u[:, t], p[:, t], n[:, t])
            assert got[t].item() == pytest.approx(pruned_score_loss(column, 0.71, keep).item())
        split = pruned_score_loss_split(s, 30, 0.5, keep)
        for t in range(3):
            expected = pruned_score_loss_split(bpr_scores(u[:, t], p[:, t], n[:, t]), 30, 0.5, keep)
            assert split[t].item() == pytest.approx(expected.item())
