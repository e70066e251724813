"""SGL-ED: the InfoNCE against a hand computation, the edge-dropout views against a dense renormalisation, the loss
(parts, gradients, determinism by generator) and CPU/CUDA parity. Training on planted data: tests/train/test_train.py.
"""

import math

import numpy as np
import pytest
import torch
from testkit.graphs import I, U, fixed_batch, random_train, seeded_model

from llmrec_local.graph import GraphEdges, build_graph, drop_edges
from llmrec_local.models.losses import info_nce


def test_info_nce_equals_hand_computed_value():
    """Views z' = (e1, e2), z'' = (e1, e1 + e2), tau = 0.5: cosines 1 and 1/sqrt2 (row 0), 0 and 1/sqrt2 (row 1), so
    L = (log(1 + e^(sqrt2 - 2)) + log(1 + e^-sqrt2)) / 2 = 0.33008 (the positive counts in the denominator)."""
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[3.0, 0.0], [2.0, 2.0]])  # lengths differ: only the directions count
    expected = (math.log(1 + math.exp(math.sqrt(2) - 2)) + math.log(1 + math.exp(-math.sqrt(2)))) / 2
    assert expected == pytest.approx(0.330085, abs=1e-6)
    assert float(info_nce(z1, z2, 0.5)) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(z1, z2, 0.0)


def test_edge_dropout_drops_the_expected_fraction_and_renormalises_the_view():
    train = random_train(p=0.5)
    edges = GraphEdges.from_graph(build_graph(train, U, I))
    view = drop_edges(edges, 0.1, generator=torch.Generator().manual_seed(3))
    kept = view.user_item.to_dense() > 0
    n = len(edges)
    assert n == len(np.unique(train, axis=0)) and n > 500
    # Binomial(n, 0.9): within 4 standard deviations
    assert abs(int(kept.sum()) / n - 0.9) < 4 * math.sqrt(0.09 / n)
    r = torch.zeros(U, I)
    r[train[:, 0], train[:, 1]] = 1
    assert bool((r[kept] == 1).all())  # a subset of the training edges
    rk = kept.float()
    du, di = rk.sum(1), rk.sum(0)
    dense = rk * (du[:, None] * di[None, :]).clamp(min=1).rsqrt()  # D'^-1/2 (M ⊙ R) D'^-1/2, kept degrees
    torch.testing.assert_close(view.user_item.to_dense(), dense)
    torch.testing.assert_close(view.item_user.to_dense(), dense.T)
    x = torch.randn(I, 5, requires_grad=True)
    view.users_from_items(x).sum().backward()  # the view's transposed-backward product works
    torch.testing.assert_close(x.grad, dense.T @ torch.ones(U, 5))


def test_edge_dropout_is_reproducible_from_the_generator_and_off_when_not_training():
    edges = GraphEdges.from_graph(build_graph(random_train(), U, I))
    a = drop_edges(edges, 0.2, generator=torch.Generator().manual_seed(7))
    b = drop_edges(edges, 0.2, generator=torch.Generator().manual_seed(7))
    c = drop_edges(edges, 0.2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.user_item.to_dense(), b.user_item.to_dense())
    assert not torch.equal(a.user_item.to_dense(), c.user_item.to_dense())
    full = drop_edges(edges, 0.2, generator=None, training=False)
    torch.testing.assert_close(full.user_item.to_dense(), build_graph(random_train(), U, I).user_item.to_dense())


def test_loss_is_bpr_plus_weighted_ssl_and_gradients_flow():
    train = random_train()
    model = seeded_model("sgl", train)
    batch = fixed_batch()
    total, parts = model.loss(batch, generator=torch.Generator().manual_seed(0))
    assert set(parts) == {"bpr", "reg", "ssl"} and float(parts["ssl"]) > 0
    torch.testing.assert_close(total.detach(), parts["bpr"] + parts["reg"] + parts["ssl"])
    total.backward()
    assert model.user.grad is not None and model.item.grad is not None
    assert float(model.user.grad[batch.users].abs().sum()) > 0 and bool(torch.isfinite(model.item.grad).all())
    # the SSL term alone moves the tables: its gradient is the difference from a lambda = 0 model's
    plain = seeded_model("sgl", train, cl_weight=0.0)
    plain_total, plain_parts = plain.loss(batch, generator=torch.Generator().manual_seed(0))
    assert set(plain_parts) == {"bpr", "reg"}
    plain_total.backward()
    torch.testing.assert_close(plain_parts["bpr"], parts["bpr"])
    assert float((model.user.grad - plain.user.grad).abs().max()) > 1e-6


def test_loss_is_deterministic_for_a_fixed_generator():
    model = seeded_model("sgl", random_train())
    batch = fixed_batch()
    a = model.loss(batch, generator=torch.Generator().manual_seed(5))[1]["ssl"]
    b = model.loss(batch, generator=torch.Generator().manual_seed(5))[1]["ssl"]
    c = model.loss(batch, generator=torch.Generator().manual_seed(6))[1]["ssl"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    # not training: both views are the full graph (no randomness at all)
    assert torch.equal(model.loss(batch, training=False)[0], model.loss(batch, training=False)[0])


def test_constructor_checks_its_ranges():
    with pytest.raises(ValueError, match="edge_drop_rate"):
        seeded_model("sgl", random_train(), edge_drop_rate=1.0)
    with pytest.raises(ValueError, match="cl_temp"):
        seeded_model("sgl", random_train(), cl_temp=0.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_loss_and_gradients_match_cpu_on_cuda():
    """Edge dropout draws from a device generator, so the CPU and CUDA views differ; with training=False (full
    graph in both views) and with rho = 0 the loss, its parts and the gradients agree to float32 rounding, and a
    training-mode CUDA loss is finite and reproducible from its generator."""
    train = random_train()
    cpu, gpu = seeded_model("sgl", train), seeded_model("sgl", train).to("cuda")
    for rho, training in ((0.0, True), (0.1, False)):
        cpu.edge_drop_rate = gpu.edge_drop_rate = rho
        results = []
        for model, dev in ((cpu, "cpu"), (gpu, "cuda")):
            model.zero_grad(set_to_none=True)
            total, parts = model.loss(fixed_batch(dev), generator=torch.Generator(device=dev).manual_seed(0),
                                      training=training)
            total.backward()
            results.append((total.detach().cpu(), {k: v.cpu() for k, v in parts.items()},
                            model.user.grad.cpu(), model.item.grad.cpu()))
        (t0, p0, gu0, gi0), (t1, p1, gu1, gi1) = results
        torch.testing.assert_close(t1, t0, rtol=1e-4, atol=1e-6)
        for key in p0:
            torch.testing.assert_close(p1[key], p0[key], rtol=1e-4, atol=1e-6, msg=key)
        torch.testing.assert_close(gu1, gu0, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gi1, gi0, rtol=1e-4, atol=1e-6)
    gpu.edge_drop_rate = 0.1
    runs = [gpu.loss(fixed_batch("cuda"), generator=torch.Generator(device="cuda").manual_seed(4))[0] for _ in range(2)]
    assert bool(torch.isfinite(runs[0])) and torch.equal(runs[0], runs[1])
