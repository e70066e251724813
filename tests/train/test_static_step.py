"""The static training step (fixed shapes: padded batches, ``static_loss``; llmrec_local.train.compiled): the same
loss, gradients and parameters as the eager step, padding that changes nothing, and one whole graph under
``torch.compile(fullgraph=True)``.

The graph has cold nodes (users 27-29 and items 32-39 have no training edge) and LLM pairs for every other user only,
so batches have padding rows, and cold items among their LLM and noise triples. Tolerances as in test_compiled.py
(testkit.graphs ``TOL``, ``rtol=1e-5, atol=1e-6``; parameters after several AdamW steps ``PARAM_TOL``): the static
loss sums in another order than the eager one (per batch row instead of per distinct node, a scatter-add instead of
the CSR kernel).
"""

import os

import numpy as np
import pytest
import torch
from testkit.graphs import I, PARAM_TOL, TOL, U, random_side, random_train, seeded_model

from llmrec_local.graph import StaticAdjacency, build_graph
from llmrec_local.models.losses import (
    keep_count,
    keep_count_tensor,
    pruned_score_loss,
    pruned_score_loss_masked,
    pruned_score_loss_split,
    pruned_score_loss_split_masked,
)
from llmrec_local.train import TripleSampler, make_optimizer
from llmrec_local.train.compiled import TrainStep


CASES = {
    "mf": ("mf", {}),
    "lightgcn": ("lightgcn", {}),
    "llmrec-faithful": ("llmrec", {"variant": "faithful"}),
    "llmrec-fixed": ("llmrec", {"variant": "fixed"}),
    "llmrec-fixed-hardest-all": ("llmrec", {"variant": "fixed", "prune_keep": "hardest", "prune_scope": "all"}),
}


def _train() -> np.ndarray:
    t = random_train()
    return t[(t[:, 0] < 27) & (t[:, 1] < 32)]


def _sampler(device: str = "cpu") -> TripleSampler:
    rng = np.random.default_rng(1)
    aug = np.stack([np.arange(U), rng.integers(0, I, U), rng.integers(0, I, U)], 1)[::2]  # every other user
    return TripleSampler(_train(), U, I, torch.Generator(device=device).manual_seed(5), aug)


def _step(case: str, static: bool, compile: str = "off", device: str = "cpu", **overrides: object) -> TrainStep:
    name, kwargs = CASES[case]
    extra = random_side() if name == "llmrec" else {}
    model = seeded_model(name, _train(), **{**kwargs, **overrides}, **extra).to(device)
    opt = make_optimizer(model, 0.01, model.default_weight_decay)
    return TrainStep(model, opt, _sampler(device), batch_size=16, aug_sample_rate=0.5, noise_rate=0.1,
                     compile=compile, static=static)


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().cpu() for k, p in model.named_parameters() if p.grad is not None}


def _check_same(eager: TrainStep, other: TrainStep, steps: int = 3) -> None:
    for _ in range(steps):
        le, pe = eager()
        lo, po = other()
        torch.testing.assert_close(lo, le, **TOL)
        assert pe.keys() == po.keys()
        for k in pe:
            torch.testing.assert_close(po[k], pe[k], **TOL, msg=f"loss part {k}")
        ge, go = _grads(eager.model), _grads(other.model)
        assert ge.keys() == go.keys() and len(ge) >= 2
        for k in ge:
            torch.testing.assert_close(go[k].cpu(), ge[k].cpu(), **TOL, msg=f"gradient of {k}")
    for (k, a), b in zip(eager.model.named_parameters(), other.model.parameters()):
        torch.testing.assert_close(b.detach().cpu(), a.detach().cpu(), **PARAM_TOL,
                                   msg=f"parameter {k} after {steps} steps")


def test_keep_count_tensor_is_the_python_rule():
    n = torch.arange(0, 20000)  # elementwise: every count at once
    for drop in (0.0, 0.1, 0.2, 0.29, 0.5, 0.71, 0.9, 0.99):
        want = torch.tensor([keep_count(k, drop) for k in range(len(n))])
        assert torch.equal(keep_count_tensor(n, drop), want), drop


@pytest.mark.parametrize("keep", ["hardest", "easiest"])
@pytest.mark.parametrize("drop", [0.0, 0.2, 0.71])
def test_masked_pruned_losses_are_those_of_the_valid_rows(keep, drop):
    """Values and gradients equal the variable-size functions on ``s[valid]`` (ties included: the stable order of the
    valid rows is kept); padding rows get exactly zero gradient."""
    g = torch.Generator().manual_seed(0)
    s = -torch.rand(40, 3, generator=g)
    s[5:9] = s[4]  # ties
    valid = torch.ones(40, dtype=torch.bool)
    valid[[12, 13, 20, 21, 22, 30]] = False  # padding among the extra rows (n_observed = 10)
    for masked, plain in (
        (lambda x: pruned_score_loss_masked(x, valid, drop, keep), lambda x: pruned_score_loss(x, drop, keep)),
        (lambda x: pruned_score_loss_split_masked(x, valid, 10, drop, keep),
         lambda x: pruned_score_loss_split(x, 10, drop, keep)),
    ):
        a, b = s.clone().requires_grad_(), s[valid].clone().requires_grad_()
        la, lb = masked(a), plain(b)
        torch.testing.assert_close(la, lb, rtol=1e-6, atol=1e-7)
        la.sum().backward(), lb.sum().backward()
        torch.testing.assert_close(a.grad[valid], b.grad, rtol=1e-6, atol=1e-7)
        assert torch.equal(a.grad[~valid], torch.zeros_like(a.grad[~valid]))
    # every extra row padding: the split loss is the mean of the observed rows
    pad = valid.clone()
    pad[10:] = False
    torch.testing.assert_close(pruned_score_loss_split_masked(s, pad, 10, drop, keep), -s[:10].mean(0))


def test_padded_sample_is_the_sample():
    """Same draws from the generator: ``compact()`` is exactly the eager batch, and the streams stay in step; every
    padded batch has the same size, with padding only in the LLM block."""
    eager, padded = _sampler(), _sampler()
    n_padding = 0
    for _ in range(5):
        b = eager.sample(16, 0.5, 0.1)
        p = padded.sample_padded(16, 0.5, 0.1)
        assert len(p) == 16 + eager.aug_slots(16, 0.5) + 1 == 25
        c = p.compact()
        assert c.n_observed == b.n_observed == 16
        for f in ("users", "pos", "neg"):
            assert torch.equal(getattr(c, f), getattr(b, f))
        assert p.valid[:16].all() and p.valid[-1]  # observed and noise rows
        n_padding += int((~p.valid).sum())
    assert n_padding > 0
    assert torch.equal(eager.gen.get_state(), padded.gen.get_state())


def test_static_adjacency_is_the_sparse_product():
    g = build_graph(_train(), U, I, "row")
    s = StaticAdjacency(g)
    x_i = torch.randn(I, 5, requires_grad=True)
    x_u = torch.randn(U, 5, requires_grad=True)
    for fast, ref, x in ((s.users_from_items, g.users_from_items, x_i), (s.items_from_users, g.items_from_users, x_u)):
        w = torch.randn(fast(x).shape)
        (ga,) = torch.autograd.grad((fast(x) * w).sum(), x)
        (gb,) = torch.autograd.grad((ref(x) * w).sum(), x)
        torch.testing.assert_close(fast(x), ref(x), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(ga, gb, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_static_step_equals_eager(case):
    """The static loss run eagerly (no compile) against the eager step: same losses, parts, gradients, parameters."""
    _check_same(_step(case, static=False), _step(case, static=True))


def test_padding_rows_change_nothing():
    """What the padding rows hold does not reach the loss or any gradient."""
    step = _step("llmrec-faithful", static=True)
    batch = step.sample()
    assert not batch.valid.all()
    other = type(batch)(*(torch.where(batch.valid, t, torch.full_like(t, i)) for t, i in (
        (batch.users, U - 1), (batch.pos, 3), (batch.neg, I - 1))), batch.valid, batch.n_observed)
    results = []
    for b in (batch, other):
        step.model.zero_grad(set_to_none=True)
        loss, _ = step.loss_fn(b)
        loss.backward()
        results.append((loss.detach(), _grads(step.model)))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=0)
    for k, g in results[0][1].items():
        torch.testing.assert_close(results[1][1][k], g, rtol=1e-7, atol=1e-9, msg=k)


def test_which_step_runs():
    """reduce-overhead runs the static step where the model has one; the MAE has none (its masked set has a random
    size), so there reduce-overhead keeps the eager loss's graphs and asking for the static step is an error."""
    assert _step("llmrec-faithful", static=None, compile="reduce-overhead").static
    assert not _step("llmrec-faithful", static=None, compile="default").static
    kw = {"mask_rate": 0.3, "mae_weight": 0.1}
    assert not _step("llmrec-fixed", static=None, compile="reduce-overhead", **kw).static
    with pytest.raises(ValueError, match="no static loss"):
        _step("llmrec-fixed", static=True, **kw)


@pytest.mark.parametrize("name", ["sgl", "simgcl"])
def test_contrastive_models_keep_their_own_loss(name):
    """SGL and SimGCL inherit LightGCN's static_loss but add contrastive terms in their own loss: reduce-overhead
    must not swap that loss for LightGCN's static one."""
    model = seeded_model(name, _train())
    step = TrainStep(model, make_optimizer(model, 0.01, model.default_weight_decay), _sampler(), batch_size=16,
                     compile="reduce-overhead", static=None)
    assert not model.has_static_loss and not step.static
    assert seeded_model("lightgcn", _train()).has_static_loss


@pytest.mark.slow
def test_static_loss_is_one_graph_and_compiles_whole():
    """``torch._dynamo.explain``: the faithful static loss is one graph, 0 breaks; and compiled with
    ``fullgraph=True`` (AOTAutograd's forward and backward graphs, run by the ``aot_eager`` backend: the whole
    capture, without Inductor's C++ build, which takes minutes on 2 CPU cores) it trains as the eager step does."""
    torch._dynamo.reset()
    comp = _step("llmrec-faithful", static=True)
    explained = torch._dynamo.explain(comp.model.static_loss)(comp.sample())
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    comp = _step("llmrec-faithful", static=True)
    comp.loss_fn = torch.compile(comp.model.static_loss, fullgraph=True, dynamic=False, backend="aot_eager")
    _check_same(_step("llmrec-faithful", static=False), comp, steps=2)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["mf", "lightgcn", "llmrec-faithful", "llmrec-fixed"])
def test_static_step_compiled_by_inductor_equals_eager(case):
    """``train.compile=reduce-overhead`` on the CPU: the static loss through Inductor (fullgraph; several minutes of
    C++ builds per case on 2 cores, hence opt-in)."""
    if os.environ.get("LLMREC_ALL_COMPILE_TESTS") != "1":
        pytest.skip("set LLMREC_ALL_COMPILE_TESTS=1 to compile the static step with Inductor (minutes on CPU)")
    torch._dynamo.reset()
    comp = _step(case, static=None, compile="reduce-overhead")
    assert comp.static
    _check_same(_step(case, static=False), comp, steps=2)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", ["llmrec-faithful", "llmrec-fixed"])
def test_static_step_as_cuda_graph_equals_eager_on_cuda(case):
    """reduce-overhead on CUDA: the static loss and its backward replayed as CUDA graphs, against the eager step on
    CUDA (padded batches; the third call replays a recorded graph)."""
    torch._dynamo.reset()
    comp = _step(case, static=None, compile="reduce-overhead", device="cuda")
    assert comp.static
    _check_same(_step(case, static=False, device="cuda"), comp, steps=4)
