import numpy as np
import pytest
import torch

from llmrec_local.graph import build_graph, joint_adjacency, two_hop_block

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


@pytest.mark.parametrize("norm", ["symmetric", "row"])
def test_gradients_match_dense(norm: str) -> None:
    """The transposed-backward sparse product equals autograd through a dense matrix, for both normalisations."""
    rng = np.random.default_rng(0)
    train = np.stack([rng.integers(0, 7, 40), rng.integers(0, 9, 40)], axis=1)
    g = build_graph(train, 7, 9, norm=norm)
    assert torch.equal(g.user_item_t.to_dense(), g.user_item.to_dense().T)
    assert torch.equal(g.item_user_t.to_dense(), g.item_user.to_dense().T)
    xi = torch.randn(9, 4, dtype=torch.float32, requires_grad=True)
    xu = torch.randn(7, 4, dtype=torch.float32, requires_grad=True)
    w1, w2 = torch.randn(7, 4), torch.randn(9, 4)
    ((g.users_from_items(xi) * w1).sum() + (g.items_from_users(xu) * w2).sum()).backward()
    xi_d, xu_d = xi.detach().clone().requires_grad_(), xu.detach().clone().requires_grad_()
    ((g.user_item.to_dense() @ xi_d * w1).sum() + (g.item_user.to_dense() @ xu_d * w2).sum()).backward()
    torch.testing.assert_close(xi.grad, xi_d.grad)
    torch.testing.assert_close(xu.grad, xu_d.grad)
