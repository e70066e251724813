import numpy as np
import pytest
import torch

from llmrec_local.graph import build_graph, joint_adjacency, sample_mask, two_hop_block

TRAIN = np.array([[0, 0], [0, 1], [1, 1], [2, 0], [2, 2], [2, 1], [0, 1]])  # (0, 1) duplicated
U, I = 4, 3  # user 3 has no edge


def dense_r() -> np.ndarray:
    r = np.zeros((U, I))
    r[TRAIN[:, 0], TRAIN[:, 1]] = 1.0
    return r


def test_symmetric_blocks_match_dense_formula():
    g = build_graph(TRAIN, U, I, "symmetric")
    r = dense_r()
    du, di = r.sum(1), r.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.nan_to_num(r / np.sqrt(np.outer(du, di)), posinf=0.0)
    np.testing.assert_allclose(g.user_item.to_dense().numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(g.item_user.to_dense().numpy(), expected.T, rtol=1e-6)
    assert g.user_degree.tolist() == [2, 1, 3, 0]


def test_row_norm_is_the_original_csr_norm():
    g = build_graph(TRAIN, U, I, "row")
    r = dense_r()
    np.testing.assert_allclose(g.user_item.to_dense().numpy(), r / np.sqrt(r.sum(1, keepdims=True) + 1e-8), rtol=1e-6)
    np.testing.assert_allclose(g.item_user.to_dense().numpy(), r.T / np.sqrt(r.T.sum(1, keepdims=True) + 1e-8),
                               rtol=1e-6)


def test_joint_adjacency_equals_block_propagation():
    g = build_graph(TRAIN, U, I, "symmetric")
    a = joint_adjacency(TRAIN, U, I)
    x = torch.randn(U + I, 5)
    joint = torch.sparse.mm(a, x)
    np.testing.assert_allclose(joint[:U].numpy(), torch.sparse.mm(g.user_item, x[U:]).numpy(), atol=1e-6)
    np.testing.assert_allclose(joint[U:].numpy(), torch.sparse.mm(g.item_user, x[:U]).numpy(), atol=1e-6)


@pytest.mark.parametrize("norm", ["row", "symmetric"])
def test_two_hop_block_is_the_block_of_the_sparse_product(norm: str):
    g = build_graph(TRAIN, U, I, norm)
    items = torch.tensor([0, 2])
    users = torch.tensor([1, 2, 3])  # user 3 has no edge: an empty row
    s_item = (g.item_user.to_dense() @ g.user_item.to_dense())[items][:, items]
    s_user = (g.user_item.to_dense() @ g.item_user.to_dense())[users][:, users]
    np.testing.assert_allclose(two_hop_block(g.item_user, g.user_item_t, items).numpy(), s_item.numpy(), atol=1e-6)
    np.testing.assert_allclose(two_hop_block(g.user_item, g.item_user_t, users).numpy(), s_user.numpy(), atol=1e-6)


def test_out_of_range_pairs_are_rejected():
    from llmrec_local.errors import DataError

    with pytest.raises(DataError, match="item index"):
        build_graph(np.array([[0, 5]]), 2, 3)


def test_sample_mask_rate_and_training_flag():
    g = torch.Generator().manual_seed(0)
    assert not sample_mask(100, 0.5, generator=g, training=False).any()
    m = sample_mask(20000, 0.3, generator=g)
    assert 0.28 < m.float().mean() < 0.32
    with pytest.raises(ValueError):
        sample_mask(10, 1.5, generator=g)
