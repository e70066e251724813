"""LLMRec model: the faithful forward pass against a direct dense transcription of the documented equations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llmrec_local.models import TripleBatch, build_model

U, I = 6, 8


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    train = np.array([[u, i] for u in range(U) for i in range(I) if rng.random() < 0.35] + [[0, 7]])
    train = train[train[:, 1] != 5]  # item 5 has no training edge (cold item: softmax(0) path)
    feats = {
        "item_image": rng.standard_normal((I, 5)).astype(np.float32),
        "item_text": rng.standard_normal((I, 7)).astype(np.float32),
        "item_attributes": {"director": rng.standard_normal((I, 6)).astype(np.float32),
                            "country": rng.standard_normal((I, 6)).astype(np.float32)},
        "user_profiles": rng.standard_normal((U, 9)).astype(np.float32),
    }
    return train, feats


def dense_reference(model, train, feats):
    """Models.py:152-197 as documented in docs/llmrec-original.md §2.2-2.5, written with dense matrices."""
    r = np.zeros((U, I))
    r[train[:, 0], train[:, 1]] = 1
    a_ui = torch.tensor(r / np.sqrt(r.sum(1, keepdims=True) + 1e-8), dtype=torch.float32)
    a_iu = torch.tensor(r.T / np.sqrt(r.T.sum(1, keepdims=True) + 1e-8), dtype=torch.float32)
    n = lambda x: F.normalize(x, dim=1)  # noqa: E731
    lin = lambda g, x: torch.tensor(x) @ model.proj[g].weight.T + model.proj[g].bias  # noqa: E731
    img_u = a_ui @ lin("image", feats["item_image"]); img_i = a_iu @ img_u  # noqa: E702
    txt_u = a_ui @ lin("text", feats["item_text"]); txt_i = a_iu @ txt_u  # noqa: E702
    uk = [a_ui @ lin("attr", x) for x in feats["item_attributes"].values()]
    ik = [a_iu @ x for x in uk]
    p = lin("profile", feats["user_profiles"])
    item_prof = a_iu @ p
    user_prof = a_ui @ item_prof
    e_u0, e_i0 = model.user, model.item
    e_u1 = a_ui @ e_i0
    e_i1 = a_iu @ e_u1
    e_u2 = torch.softmax(a_ui @ e_i1, dim=1)
    e_i2 = torch.softmax(a_iu @ e_u2, dim=1)
    e_u = (e_u0 + e_u1 + e_u2) / 3
    e_i = (e_i0 + e_i1 + e_i2) / 3
    h_u = e_u + 0.02 * n(img_u) + 0.02 * n(txt_u) + 2.8 * n(user_prof) + 0.005 * sum(n(x) for x in uk)
    h_i = e_i + 0.02 * n(img_i) + 0.02 * n(txt_i) + 2.8 * n(item_prof) + 0.005 * sum(n(x) for x in ik)
    return h_u, h_i, {"img_u": img_u, "img_i": img_i, "txt_u": txt_u, "txt_i": txt_i, "uk": uk, "ik": ik,
                      "user_prof": user_prof}


def test_faithful_forward_equals_documented_equations(data):
    train, feats = data
    torch.manual_seed(0)
    model = build_model("llmrec", n_users=U, n_items=I, train=train, variant="faithful", **feats)
    h_u, h_i = model.embeddings()
    ref_u, ref_i, _ = dense_reference(model, train, feats)
    torch.testing.assert_close(h_u, ref_u.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_i, ref_i.detach(), atol=1e-5, rtol=1e-5)
    # the cold item: e_i = E_i^0/3 + (0 + 1/d)/3 ... plus fused terms that are all zero
    torch.testing.assert_close(h_i[5], (model.item[5] + 1.0 / 64) .detach() / 3, atol=1e-6, rtol=1e-6)


def test_faithful_loss_equals_documented_loss(data):
    train, feats = data
    torch.manual_seed(0)
    model = build_model("llmrec", n_users=U, n_items=I, train=train, variant="faithful", **feats)
    batch = TripleBatch(torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 4, 7]),
                        torch.tensor([5, 6, 0, 1, 2]), n_observed=4)
    total, parts = model.loss(batch)
    h_u, h_i, br = dense_reference(model, train, feats)
    u, p, q = batch.users, batch.pos, batch.neg

    def pbpr(a, b, c):  # keep the hardest int(0.29 N): ascending log-sigmoid, head
        s = F.logsigmoid((a * b).sum(1) - (a * c).sum(1))
        return -torch.sort(s).values[: max(int(0.29 * len(s)), 1)].mean()

    bpr = pbpr(h_u[u], h_i[p], h_i[q])
    reg = 1e-5 * sum(1 / (2 * t.pow(2).sum() + 1e-8) for t in (h_u[u], h_i[p], h_i[q])) / 5
    mm = pbpr(br["img_u"][u], br["img_i"][p], br["img_i"][q]) + pbpr(br["txt_u"][u], br["txt_i"][p], br["txt_i"][q])
    aug = sum(pbpr(br["user_prof"][u], k[p], k[q]) for k in br["ik"])
    featreg = 1e-5 * 0.5 * sum(br[k].pow(2).sum() for k in ("img_i", "txt_i", "img_u", "txt_u")) / I
    expected = bpr + reg + featreg + 0.012 * aug + 1e-4 * mm
    torch.testing.assert_close(parts["bpr"], bpr.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts["featreg"], featreg.detach(), atol=1e-7, rtol=1e-4)
    torch.testing.assert_close(total.detach(), expected.detach(), atol=1e-5, rtol=1e-5)
    total.backward()
    assert model.proj["attr"].weight.grad is not None and model.proj["attr"].weight.grad.abs().sum() > 0


def test_feature_regulariser_gradient_matches_the_explicit_norm(data):
    """featreg is evaluated through summed Gram matrices with a hand-written gradient (2 W G); autograd through
    the explicit ||img_u||^2 + ||img_i||^2 + ... must give the same gradient."""
    train, feats = data
    torch.manual_seed(0)
    model = build_model("llmrec", n_users=U, n_items=I, train=train, variant="faithful", **feats)
    _, _, br = dense_reference(model, train, feats)
    explicit = sum(br[k].pow(2).sum() for k in ("img_i", "txt_i", "img_u", "txt_u"))
    fast = model._feat_norm2("image") + model._feat_norm2("text")
    torch.testing.assert_close(fast, explicit, atol=1e-5, rtol=1e-5)
    params = [model.proj[g].weight for g in ("image", "text")] + [model.proj[g].bias for g in ("image", "text")]
    for a, b in zip(torch.autograd.grad(fast, params), torch.autograd.grad(explicit, params)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_fixed_id_branch_is_lightgcn(data):
    train, _ = data
    torch.manual_seed(0)
    model = build_model("llmrec", n_users=U, n_items=I, train=train, variant="fixed")
    gcn = build_model("lightgcn", n_users=U, n_items=I, train=train, n_layers=2)
    with torch.no_grad():
        gcn.user.copy_(model.user)
        gcn.item.copy_(model.item)
    for a, b in zip(model.embeddings(), gcn.embeddings()):
        torch.testing.assert_close(a, b.detach())


def test_mae_never_mutates_inputs_and_matches_a_masked_copy(data):
    train, feats = data
    frozen = {k: (v.copy() if isinstance(v, np.ndarray) else {f: x.copy() for f, x in v.items()})
              for k, v in feats.items()}
    torch.manual_seed(0)
    model = build_model("llmrec", n_users=U, n_items=I, train=train, variant="fixed", mask_rate=0.5,
                        mae_weight=1.0, **feats)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    with torch.no_grad():
        model.mask_token["attr"].normal_()
    g = torch.Generator().manual_seed(1)
    batch = TripleBatch(torch.arange(U), torch.arange(U), torch.arange(U) + 1, n_observed=U)
    total, parts = model.loss(batch, generator=g)
    assert parts["mae"] > 0
    total.backward()
    assert model.decoder["attr"][0].weight.grad.abs().sum() > 0
    assert model.mask_token["attr"].grad.abs().sum() > 0
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), f"buffer {k} was modified"
    for k, v in frozen.items():
        if isinstance(v, dict):
            for f, x in v.items():
                np.testing.assert_array_equal(feats[k][f], x)
        else:
            np.testing.assert_array_equal(feats[k], v)
    # the two-hop code of masked items equals propagating an explicitly masked copy of the features
    rows = torch.tensor([1, 3, 4])
    token = model.mask_token["attr"]
    lin = model.proj["attr"]
    x = torch.tensor(feats["item_attributes"]["director"])
    projected = x @ lin.weight.T + lin.bias
    masked = projected.clone()
    masked[rows] = token
    a_ui, a_iu = model.graph.user_item.to_dense(), model.graph.item_user.to_dense()
    naive = (a_iu @ (a_ui @ masked))[rows]
    src, warm = model._warm_rows("i", rows)
    director = model.project_attributes("i", src)[:, model.attr_names.index("attr:director")]
    code = model._masked_code("attr:director", rows, token, model._two_hop_block("i", rows), warm, director)
    torch.testing.assert_close(code, naive, atol=1e-5, rtol=1e-5)


def test_llmrec_trains_without_any_side_input(data):
    train, _ = data
    torch.manual_seed(0)
    for variant in ("faithful", "fixed"):
        model = build_model("llmrec", n_users=U, n_items=I, train=train, variant=variant)
        opt = torch.optim.AdamW(model.parameters(), lr=0.05)
        batch = TripleBatch(torch.tensor(train[:, 0]), torch.tensor(train[:, 1]),
                            torch.tensor((train[:, 1] + 3) % I), n_observed=len(train))
        first = model.loss(batch)[0].item()
        for _ in range(30):
            loss, _ = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < first


def test_variant_graph_mismatch_is_an_error(data):
    from llmrec_local.graph import build_graph
    from llmrec_local.models import LLMRec

    train, _ = data
    with pytest.raises(ValueError, match="row"):
        LLMRec(build_graph(train, U, I, "symmetric"), variant="faithful")


def test_full_table_fusion_equals_the_gathered_rows_path_with_cold_items():
    """embeddings() projects the warm rows of contiguous blocks as views of the warm-node feature tables; the batch
    path gathers them by index."""
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 50
    train = np.stack([rng.integers(0, n_users, 120), rng.integers(0, 30, 120)], 1)  # items 30..49 are cold
    model = build_model(
        "llmrec", n_users=n_users, n_items=n_items, train=train, device=torch.device("cpu"), variant="faithful",
        item_text=rng.normal(size=(n_items, 16)).astype(np.float32),
        user_profiles=rng.normal(size=(n_users, 12)).astype(np.float32),
        item_attributes={f: rng.normal(size=(n_items, 8)).astype(np.float32) for f in ("a", "b")},
    )
    model.eval()
    with torch.no_grad():
        hu, hi = model.embeddings(chunk=7)
        eu, ei = model.id_embeddings()
        users, items = torch.arange(n_users), torch.arange(n_items)
        torch.testing.assert_close(hu, model._fuse(eu, "u", users)[0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(hi, model._fuse(ei, "i", items)[0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("variant", ["faithful", "fixed"])
def test_id_embedding_rows_equal_the_full_tables_rows_and_gradients(data, variant):
    """The step's rows of the layer mean (summed on the rows, one shared scatter backward) are the full tables' rows
    bit for bit, and give the full path's gradients, with repeated rows as in the static step."""
    train, _ = data
    model = build_model("llmrec", n_users=U, n_items=I, train=train, variant=variant, device=torch.device("cpu"))
    users, items = torch.tensor([4, 0, 4, 2]), torch.tensor([5, 7, 1, 7, 3])
    weight_u, weight_i = torch.randn(len(users), model.user.shape[1]), torch.randn(len(items), model.item.shape[1])
    grads = []
    for rows_path in (False, True):
        model.zero_grad()
        if rows_path:
            eu, ei = model.id_embedding_rows(users, items)
        else:
            full_u, full_i = model.id_embeddings()
            eu, ei = full_u[users], full_i[items]
            reference = (eu.detach(), ei.detach())
        ((eu * weight_u).sum() + (ei * weight_i).sum()).backward()
        grads.append((model.user.grad.clone(), model.item.grad.clone()))
    assert torch.equal(eu.detach(), reference[0]) and torch.equal(ei.detach(), reference[1])
    for full, rows in zip(*grads):
        torch.testing.assert_close(rows, full, rtol=1e-6, atol=1e-7)


def test_weighted_unit_sum_equals_normalize_and_its_gradient():
    """The fused branch sum (``_WeightedUnitSum``) is ``sum_t w_t F.normalize(x_t)``, forward and backward, including a
    zero branch (a cold row: normalize's eps clamp) and a tiny one; gradcheck in float64 away from those (finite
    differences need a step far below the norm)."""
    from llmrec_local.models.llmrec import _WeightedUnitSum

    torch.manual_seed(0)
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    x[1, 2] = 0.0
    x[3, 0] *= 1e-8
    w = torch.tensor([0.02, 0.02, 0.005, 2.8], dtype=torch.float64)
    g = torch.randn(5, 3, dtype=torch.float64)
    ref_x, new_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = (F.normalize(ref_x, dim=2) * w[:, None]).sum(1)
    new = _WeightedUnitSum.apply(new_x, w)
    torch.testing.assert_close(new, ref, rtol=1e-12, atol=1e-12)
    ref.backward(g)
    new.backward(g)
    torch.testing.assert_close(new_x.grad, ref_x.grad, rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(lambda v: _WeightedUnitSum.apply(v, w), (x[[0, 2, 4]].clone().requires_grad_(),))


@pytest.mark.parametrize(("same", "start", "stop"), [(2, 2, 5), (2, 2, 2), (0, 1, 5)])
def test_branch_margins_equal_the_plain_expression_and_its_gradient(same, start, stop):
    """``_BranchMargins``: the margins of the plain expression bit for bit (pruning sees the same values), and
    autograd's gradients of it, with and without the profile-vs-attribute columns."""
    from llmrec_local.models.llmrec import _BranchMargins

    torch.manual_seed(0)
    n, t, d = 7, 6, 5
    tu, ti = torch.randn(n, t, d), torch.randn(2 * n, t, d)
    g_same, g_cross = torch.randn(n, same), torch.randn(n, stop - start)
    ref_u, ref_i, new_u, new_i = (x.clone().requires_grad_() for x in (tu, ti, tu, ti))
    diff = ref_i[:n] - ref_i[n:]
    ref = ((ref_u * diff).sum(-1)[:, :same], (ref_u[:, -1:] * diff).sum(-1)[:, start:stop])
    new = _BranchMargins.apply(new_u, new_i, same, start, stop)
    assert all(torch.equal(a, b) for a, b in zip(new, ref))
    torch.autograd.backward(ref, (g_same, g_cross))
    torch.autograd.backward(new, (g_same, g_cross))
    torch.testing.assert_close(new_u.grad, ref_u.grad)
    torch.testing.assert_close(new_i.grad, ref_i.grad)
