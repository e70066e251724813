import math

import numpy as np
import pytest
import torch

from llmrec_local.evaluate.metrics import metrics_from_hits, paper_ndcg
from llmrec_local.evaluate.ranking import PairIndex, rank_and_score
from llmrec_local.evaluate.significance import paired_arrays, paired_tests


def test_hand_computed_case():
    # user 0: ranks 0 and 2 are hits, 3 held-out items; user 1: no hit (still counted)
    hits = torch.tensor([[True, False, True, False], [False, False, False, False]])
    m = metrics_from_hits(hits, torch.tensor([3, 1]), ks=(2, 4))
    assert m["recall@2"].tolist() == pytest.approx([1 / 3, 0.0])
    assert m["recall@4"].tolist() == pytest.approx([2 / 3, 0.0])
    assert m["precision@4"].tolist() == pytest.approx([0.5, 0.0])
    assert m["hit@2"].tolist() == [1.0, 0.0]
    idcg4 = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # min(3, 4) = 3 ideal hits
    assert m["ndcg@4"][0].item() == pytest.approx((1 + 1 / math.log2(4)) / idcg4)
    assert m["ndcg@2"][0].item() == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert m["ndcg@4"][1].item() == 0.0
    # the original's variant: ideal DCG from the 2 retrieved hits only -> larger
    assert paper_ndcg(hits, 4)[0].item() == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert paper_ndcg(hits, 4)[1].item() == 0.0


def naive(scores, train, truth, ks):
    out = {f"{m}@{k}": [] for m in ("recall", "ndcg", "precision", "hit") for k in ks}
    users = []
    for u in range(scores.shape[0]):
        t = {i for uu, i in truth if uu == u}
        if not t:
            continue
        users.append(u)
        s = scores[u].copy()
        for uu, i in train:
            if uu == u:
                s[i] = -np.inf
        order = np.argsort(-s, kind="stable")
        for k in ks:
            top = order[:k]
            h = [1.0 if i in t else 0.0 for i in top]
            out[f"recall@{k}"].append(sum(h) / len(t))
            out[f"precision@{k}"].append(sum(h) / k)
            out[f"hit@{k}"].append(float(sum(h) > 0))
            dcg = sum(x / math.log2(r + 2) for r, x in enumerate(h))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(t), k)))
            out[f"ndcg@{k}"].append(dcg / idcg)
    return users, out


def test_full_ranking_equals_a_naive_per_user_loop():
    rng = np.random.default_rng(0)
    U, I, d = 40, 60, 8
    ue, ie = rng.standard_normal((U, d)), rng.standard_normal((I, d))
    pairs = np.unique(np.stack([rng.integers(0, U, 600), rng.integers(0, I, 600)], 1), axis=0)
    rng.shuffle(pairs)
    train, truth = pairs[:450], pairs[450:]
    users, per_user = rank_and_score(
        torch.tensor(ue), torch.tensor(ie), PairIndex.build(truth, U, I), [PairIndex.build(train, U, I)],
        ks=(5, 10, 20), chunk=7,
    )
    ref_users, ref = naive(ue @ ie.T, train, truth, (5, 10, 20))
    assert users.tolist() == ref_users  # every user with a held-out item is counted, hits or not
    for name, values in ref.items():
        np.testing.assert_allclose(per_user[name].numpy(), values, atol=1e-12, err_msg=name)


def test_excluded_items_never_ranked():
    ue = torch.ones(1, 1)
    ie = torch.tensor([[5.0], [4.0], [3.0], [2.0]])
    truth = PairIndex.build(np.array([[0, 2]]), 1, 4)
    users, m = rank_and_score(ue, ie, truth, [PairIndex.build(np.array([[0, 0], [0, 1]]), 1, 4)], ks=(1, 2))
    assert m["recall@1"].tolist() == [1.0]  # items 0 and 1 masked, so item 2 is first


def test_paired_tests():
    a = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.65, 0.75])
    r = paired_arrays(a, a - np.array([0.1, 0.12, 0.09, 0.11, 0.1, 0.13, 0.08]))
    assert r["mean_diff"] == pytest.approx(0.1043, abs=1e-3)
    assert r["t_p"] < 1e-4 and r["wilcoxon_p"] < 0.05
    same = paired_arrays(a, a)
    assert same["t_p"] is None and same["wilcoxon_p"] is None
    with pytest.raises(ValueError, match="different user sets"):
        paired_tests({"user": np.array([0, 1]), "m": a[:2]}, {"user": np.array([0, 2]), "m": a[:2]}, "m")
