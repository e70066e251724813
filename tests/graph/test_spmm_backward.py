"""The transposed-backward sparse product equals autograd through a dense matrix, for both normalisations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrec_local.graph.adjacency import build_graph


@pytest.mark.parametrize("norm", ["symmetric", "row"])
def test_gradients_match_dense(norm: str) -> None:
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
